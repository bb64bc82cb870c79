"""Frozen descriptions of privacy mechanisms (the `DpEvent` pattern).

An event says *what* ran (its noise and sensitivity parameters), never what it
computed. The accountant interprets events as Rényi-DP curves; the ledger stores
their canonical JSON so an auditor can recompute every total bit for bit.

Every event records the neighbouring relation its analysis assumes.  Sensitivity
claims (and therefore noise multipliers) are relative to that relation, and the
gate refuses an event whose relation differs from the policy's.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping

__all__ = [
    "NeighbouringRelation",
    "DpEvent",
    "GaussianEvent",
    "DiscreteGaussianEvent",
    "LaplaceEvent",
    "ExponentialMechanismEvent",
    "PureDpEvent",
    "ZCdpEvent",
    "PoissonSubsampledGaussianEvent",
    "GNMaxEvent",
    "ApproximationEvent",
    "ComposedEvent",
    "SelfComposedEvent",
    "event_from_dict",
    "event_from_json",
    "canonical_json",
    "MAX_NESTING",
    "MAX_LEAVES",
]


class NeighbouringRelation(str, enum.Enum):
    """Which pairs of datasets count as neighbours."""

    ADD_OR_REMOVE_ONE = "add_or_remove_one"
    REPLACE_ONE = "replace_one"


ADD_OR_REMOVE = NeighbouringRelation.ADD_OR_REMOVE_ONE


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, floats as shortest round-trip repr, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _positive_float(cls_name: str, name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{cls_name}.{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{cls_name}.{name} must be finite, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{cls_name}.{name} must be {bound}, got {value!r}")
    return value


def _positive_int(cls_name: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{cls_name}.{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{cls_name}.{name} must be >= 1, got {value!r}")
    return value


def _relation(cls_name: str, value: Any) -> NeighbouringRelation:
    try:
        return NeighbouringRelation(value)
    except ValueError:
        allowed = ", ".join(r.value for r in NeighbouringRelation)
        raise ValueError(f"{cls_name}.relation must be one of {allowed}, got {value!r}") from None


_REGISTRY: dict[str, type["DpEvent"]] = {}

#: How deeply composed / self-composed events may nest.  Every interpretation of an
#: event (its RDP curve, its JSON, its leaves) recurses through the nesting, so an
#: unbounded depth would let one accepted event make every later read of the ledger
#: fail with RecursionError.  Real compositions are one or two levels deep.
MAX_NESTING = 16
#: How many atomic events one composed event may hold (a bound on the work of reading it).
MAX_LEAVES = 10_000


def _nesting(event: "DpEvent") -> int:
    return getattr(event, "_depth", 0)


@dataclass(frozen=True)
class DpEvent:
    """Base class: a frozen, hashable, JSON-canonical description of a mechanism."""

    kind: ClassVar[str] = ""
    # Parameter names that are floats / ints, validated and normalised on construction.
    _floats: ClassVar[tuple[str, ...]] = ()
    _ints: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in self._floats:
            object.__setattr__(self, f, _positive_float(name, f, getattr(self, f)))
        for f in self._ints:
            object.__setattr__(self, f, _positive_int(name, f, getattr(self, f)))
        if "relation" in {f.name for f in fields(self)}:
            object.__setattr__(self, "relation", _relation(name, getattr(self, "relation")))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, NeighbouringRelation):
                value = value.value
            out[f.name] = value
        return out

    def to_json(self) -> str:
        return canonical_json(self.to_dict())

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> "DpEvent":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown field(s) for event type {cls.kind!r}: {sorted(unknown)}")
        missing = {f.name for f in fields(cls) if f.name != "relation"} - set(data)
        if missing:
            raise ValueError(f"missing field(s) for event type {cls.kind!r}: {sorted(missing)}")
        return cls(**dict(data))

    def leaves(self) -> tuple[tuple["DpEvent", int], ...]:
        """The atomic events with their multiplicities (composition flattened)."""
        return ((self, 1),)


@dataclass(frozen=True)
class GaussianEvent(DpEvent):
    """Gaussian noise with std = noise_multiplier × L2 sensitivity: ρ = 1/(2z²)."""

    kind: ClassVar[str] = "gaussian"
    _floats: ClassVar[tuple[str, ...]] = ("noise_multiplier",)
    noise_multiplier: float
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class DiscreteGaussianEvent(DpEvent):
    """Discrete Gaussian N_Z(0, σ²) per cell of an integer query: ρ = Δ₂²/(2σ²)."""

    kind: ClassVar[str] = "discrete_gaussian"
    _floats: ClassVar[tuple[str, ...]] = ("sigma", "l2_sensitivity")
    sigma: float
    l2_sensitivity: float
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class LaplaceEvent(DpEvent):
    """Laplace noise with scale = `scale` × L1 sensitivity (Mironov 2017, Prop. 6)."""

    kind: ClassVar[str] = "laplace"
    _floats: ClassVar[tuple[str, ...]] = ("scale",)
    scale: float
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class ExponentialMechanismEvent(DpEvent):
    """An ε-DP exponential mechanism, charged as ε-bounded range: ε²/8-zCDP."""

    kind: ClassVar[str] = "exponential_mechanism"
    _floats: ClassVar[tuple[str, ...]] = ("epsilon",)
    epsilon: float
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class PureDpEvent(DpEvent):
    """Any ε-DP mechanism; charged with the tight randomized-response RDP curve."""

    kind: ClassVar[str] = "pure_dp"
    _floats: ClassVar[tuple[str, ...]] = ("epsilon",)
    epsilon: float
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class ZCdpEvent(DpEvent):
    """A ρ-zCDP mechanism."""

    kind: ClassVar[str] = "zcdp"
    _floats: ClassVar[tuple[str, ...]] = ("rho",)
    rho: float
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class PoissonSubsampledGaussianEvent(DpEvent):
    """`steps` rounds of DP-SGD: Poisson sampling at `sampling_rate`, Gaussian noise.

    Only valid under add/remove-one (Mironov, Talwar, Zhang 2019); a fixed-size or
    shuffled batch is a different mechanism and must not be described by this event.
    """

    kind: ClassVar[str] = "poisson_subsampled_gaussian"
    _floats: ClassVar[tuple[str, ...]] = ("sampling_rate", "noise_multiplier")
    _ints: ClassVar[tuple[str, ...]] = ("steps",)
    sampling_rate: float
    noise_multiplier: float
    steps: int
    relation: NeighbouringRelation = ADD_OR_REMOVE

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.sampling_rate > 1:
            raise ValueError(
                f"PoissonSubsampledGaussianEvent.sampling_rate must be in (0, 1], got {self.sampling_rate!r}"
            )
        if self.relation is not NeighbouringRelation.ADD_OR_REMOVE_ONE:
            raise ValueError(
                "PoissonSubsampledGaussianEvent is analysed under add_or_remove_one only; "
                "Poisson subsampling has no valid analysis here under replace_one"
            )


@dataclass(frozen=True)
class GNMaxEvent(DpEvent):
    """PATE GNMax, data-independent bound: `queries` vote histograms noised with
    N(0, noise_multiplier²); one record moves two vote counts (Δ₂ = √2), so each
    query is 1/σ²-zCDP (Papernot et al. 2018, Prop. 8)."""

    kind: ClassVar[str] = "gnmax"
    _floats: ClassVar[tuple[str, ...]] = ("noise_multiplier",)
    _ints: ClassVar[tuple[str, ...]] = ("queries",)
    noise_multiplier: float
    queries: int
    relation: NeighbouringRelation = ADD_OR_REMOVE


@dataclass(frozen=True)
class ApproximationEvent(DpEvent):
    """The δ of approximate DP: "this mechanism is δ-close to one the other events describe".

    Composed with other events (``ComposedEvent((DiscreteGaussianEvent(...),
    ApproximationEvent(δ)))``) it states: for every ordered pair of neighbours
    (x, x') there is a distribution P̃ within total-variation distance δ of the
    mechanism's output on x whose Rényi divergence from the output on x' is bounded by
    the curve of the other events, at every order (a one-sided form of Bun & Steinke's
    δ-approximate zCDP, 2016, Def. 8).  Alone it is a mechanism δ-close to a perfectly
    private one.  It adds 0 to the RDP curve; its δ adds up exactly (`math.fsum`) across
    composition and is paid from the policy's `delta_reserve` (proofs/filter.md).
    """

    kind: ClassVar[str] = "approximation"
    _floats: ClassVar[tuple[str, ...]] = ("delta",)
    delta: float
    relation: NeighbouringRelation = ADD_OR_REMOVE

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.delta < 1:
            raise ValueError(f"ApproximationEvent.delta must satisfy 0 < delta < 1, got {self.delta!r}")


@dataclass(frozen=True)
class ComposedEvent(DpEvent):
    """Several events run on the same data (possibly adaptively chosen)."""

    kind: ClassVar[str] = "composed"
    events: tuple[DpEvent, ...]

    def __post_init__(self) -> None:
        events = tuple(self.events)
        if not events:
            raise ValueError("ComposedEvent.events must not be empty")
        for e in events:
            if not isinstance(e, DpEvent):
                raise TypeError(f"ComposedEvent.events must hold DpEvents, got {type(e).__name__}")
        relations = {e.relation for e in events}
        if len(relations) > 1:
            raise ValueError(
                "ComposedEvent mixes neighbouring relations "
                f"{sorted(r.value for r in relations)}; compose events of one relation"
            )
        _check_size(self, events)
        object.__setattr__(self, "events", events)

    @property
    def relation(self) -> NeighbouringRelation:  # type: ignore[override]
        return self.events[0].relation

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "events": [e.to_dict() for e in self.events]}

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> "DpEvent":
        if set(data) != {"events"}:
            raise ValueError("composed event needs exactly the field 'events'")
        return cls(tuple(event_from_dict(e) for e in data["events"]))

    def leaves(self) -> tuple[tuple[DpEvent, int], ...]:
        return tuple(leaf for e in self.events for leaf in e.leaves())


@dataclass(frozen=True)
class SelfComposedEvent(DpEvent):
    """The same event run `count` times."""

    kind: ClassVar[str] = "self_composed"
    _ints: ClassVar[tuple[str, ...]] = ("count",)
    event: DpEvent
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.event, DpEvent):
            raise TypeError(f"SelfComposedEvent.event must be a DpEvent, got {type(self.event).__name__}")
        super().__post_init__()
        _check_size(self, (self.event,))

    @property
    def relation(self) -> NeighbouringRelation:  # type: ignore[override]
        return self.event.relation

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "event": self.event.to_dict(), "count": self.count}

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any]) -> "DpEvent":
        if set(data) != {"event", "count"}:
            raise ValueError("self_composed event needs exactly the fields 'event' and 'count'")
        return cls(event_from_dict(data["event"]), data["count"])

    def leaves(self) -> tuple[tuple[DpEvent, int], ...]:
        return tuple((e, m * self.count) for e, m in self.event.leaves())


def _check_size(event: DpEvent, children: tuple[DpEvent, ...]) -> None:
    """Refuse nesting deeper than MAX_NESTING or more than MAX_LEAVES atomic events."""
    depth = 1 + max(_nesting(c) for c in children)
    if depth > MAX_NESTING:
        raise ValueError(f"events nest {depth} levels deep; at most {MAX_NESTING} are accepted "
                         "(flatten the composition)")
    leaves = sum(getattr(c, "_leaf_count", 1) for c in children)
    if leaves > MAX_LEAVES:
        raise ValueError(f"a composed event may hold at most {MAX_LEAVES} atomic events, got {leaves} "
                         "(use SelfComposedEvent for repeats)")
    object.__setattr__(event, "_depth", depth)
    object.__setattr__(event, "_leaf_count", leaves)


def _json_depth(data: Any, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (never recursing), stopping past `limit`."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(node, Mapping):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def event_from_dict(data: Mapping[str, Any]) -> DpEvent:
    """Inverse of `DpEvent.to_dict`; rejects unknown types and fields."""
    if not isinstance(data, Mapping):
        raise TypeError(f"an event must be a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if kind not in _REGISTRY:
        raise ValueError(f"unknown event type {kind!r}; known: {sorted(_REGISTRY)}")
    body = {k: v for k, v in data.items() if k != "type"}
    return _REGISTRY[kind]._from_fields(body)


def event_from_json(text: str) -> DpEvent:
    """Parse an event from JSON (canonical or not)."""
    if not isinstance(text, str):
        raise TypeError(f"an event's JSON must be a string, got {type(text).__name__}")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"event JSON does not parse: {type(exc).__name__}") from None
    # Each event level is two JSON levels (an object and its list of events).
    if _json_depth(data, 2 * MAX_NESTING + 2) > 2 * MAX_NESTING + 2:
        raise ValueError(f"event JSON nests deeper than {MAX_NESTING} composed events")
    return event_from_dict(data)
