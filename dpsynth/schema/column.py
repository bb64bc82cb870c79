"""One column of the public schema: its kind and the public facts that fix its codes.

Every column maps to a contiguous range of integer codes (what the marginal
generators work on):

    [0, k)          the values: categories in declared order, or numeric bins
    k               "other" (only when ``out_of_range="other"``)
    last            missing (only when ``nullable``)

Categories, bounds and bin edges are *public*: declared by the user, or learned
through the gate by `PrivateTable.learn_schema` (never read from the data here).
A column whose facts are not known yet is *incomplete*: it can be held by a
private table (to learn them) but not encoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .errors import SchemaError

__all__ = ["Column", "KINDS", "DISCRETE_KINDS", "BINNED_KINDS", "OUT_OF_RANGE"]

DISCRETE_KINDS = frozenset({"categorical", "ordinal", "boolean"})
BINNED_KINDS = frozenset({"numeric", "integer", "datetime"})
KINDS = DISCRETE_KINDS | BINNED_KINDS
OUT_OF_RANGE = ("error", "clip", "other")
BOOLEAN_CATEGORIES = (False, True)
DATETIME_FORMATS = ("date", "datetime")
MAX_DECIMALS = 12
# An integer column declared with public bounds and no bins gets one code per whole number
# when it has at most this many (a count column keeps its zeros); a wider one needs bins.
MAX_VALUE_CODES = 64
VALUES = "values"  # bins = "values": one code per whole number of an integer column
# bins = "counts": for a wide integer column that is mostly small (counts, days, amounts):
# one code for each of the first COUNT_SINGLETONS whole numbers from `lower`, then bins
# that double in width up to `upper`, so the mass near the bottom stays where it is.
COUNTS = "counts"
COUNT_SINGLETONS = 4


def count_edges(first: int, last: int) -> tuple[float, ...]:
    """Edges (half-way between whole numbers) of bins = "counts" over [first, last]:
    {first}, {first+1}, …, {first+3}, then widths 4, 8, 16, … — from the public bounds alone."""
    offsets, width = list(range(COUNT_SINGLETONS + 1)), COUNT_SINGLETONS
    while offsets[-1] <= last - first:
        offsets.append(offsets[-1] + width)
        width *= 2
    span = last - first + 1
    offsets = [o for o in offsets if o < span] + [span]
    return tuple(first + o - 0.5 for o in offsets)
# bins = "days" | "weeks" | "months" | "years" for a datetime column: calendar (ISO 8601) bins
# between its public bounds — pandas period starts (weeks start on Monday).
CALENDAR_BINS = {"days": "D", "weeks": "W-MON", "months": "MS", "years": "YS"}
MAX_CALENDAR_BINS = 100_000


def calendar_edges(lower: pd.Timestamp, upper: pd.Timestamp, unit: str) -> tuple[pd.Timestamp, ...]:
    """`lower`, every start of a calendar `unit` strictly between the bounds, `upper`: public
    edges computed from the public bounds alone (the last bin may be a part of a unit)."""
    starts = pd.date_range(lower, upper, freq=CALENDAR_BINS[unit])
    inner = [t for t in starts if lower < t < upper]
    return (lower, *inner, upper)


def _timestamp(value: Any, where: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise SchemaError(f"{where}: not a date/time") from None
    if ts is pd.NaT:
        raise SchemaError(f"{where}: not a date/time")
    if ts.tzinfo is not None:  # one clock for every value: UTC, naive
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SchemaError(f"{where}: must be a number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise SchemaError(f"{where}: must be finite")
    return x


def seconds(ts: pd.Timestamp) -> float:
    """A timestamp as seconds since the epoch (the axis datetime bins live on)."""
    return ts.value / 1e9


@dataclass(frozen=True)
class Column:
    """A column's public description.

    Args:
        name: the column's name in the table.
        kind: "categorical", "ordinal", "boolean", "numeric" (continuous),
            "integer" or "datetime".
        categories: the declared values of a categorical/ordinal column, in code order
            (ordinal: in their order).  ``None`` = not known yet (learn them privately).
            ``"codelist:NAME"`` names a public code list (`dpsynth.schema.codelists`: us-states,
            countries, countries-alpha3, yes-no, weekdays, months).  Boolean columns always have (False, True).
        lower, upper: public bounds of a numeric/integer/datetime column.
        bins: bin edges (a strictly increasing sequence, at least 2), a number of
            equal-width bins between ``lower`` and ``upper``, or (integer columns)
            ``"values"``: one code per whole number between the bounds, or ``"counts"``: one
            code for each of the four lowest whole numbers, then bins doubling in width (a wide
            count column that is mostly small keeps its shape); (datetime columns)
            ``"days"``, ``"weeks"`` (ISO, from Monday), ``"months"`` or ``"years"``: calendar
            bins between the bounds (a saved schema lists their edges).  An integer
            column with bounds and no bins gets ``"values"`` when it spans at most
            `MAX_VALUE_CODES` whole numbers.  Discretises the column for the marginal
            generators (which decode within a bin by their noisy measurements).
        nullable: missing values are allowed (one extra code).
        out_of_range: what encoding does with a value outside the declared
            categories/bounds: "error" (default), "clip" (binned kinds: to the nearest
            bin) or "other" (categorical kinds: one extra "other" code).
        values: a boolean column's two values as the table writes them, false first
            (``[0, 1]``, ``["no", "yes"]``, ``[false, true]``).  ``None``: taken from the
            table when a private table is made (all 0/1 numbers, or all true/false), so
            synthetic rows come back the way the table wrote them.
        decimals: a numeric column's decimals: synthetic values are rounded to them.
        format: a datetime column's values: ``"date"`` (plain dates: synthetic values are
            whole days) or ``"datetime"``.  ``None``: taken from the table (all plain
            dates such as ``2013-05-01``, or none).
    """

    name: str
    kind: str
    categories: tuple[Any, ...] | None = None
    lower: Any = None
    upper: Any = None
    bins: tuple[Any, ...] | int | None = None
    nullable: bool = False
    out_of_range: str = "error"
    values: tuple[Any, Any] | None = None
    decimals: int | None = None
    format: str | None = None
    _edges: tuple[float, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SchemaError("every column needs a non-empty string name")
        where = f"column {self.name!r}"
        if self.kind not in KINDS:
            raise SchemaError(f"{where}: kind {self.kind!r} is not one of {sorted(KINDS)}")
        if not isinstance(self.nullable, (bool, np.bool_)):
            raise SchemaError(f"{where}: nullable must be true or false")
        object.__setattr__(self, "nullable", bool(self.nullable))
        if self.out_of_range not in OUT_OF_RANGE:
            raise SchemaError(f"{where}: out_of_range must be one of {OUT_OF_RANGE}, got {self.out_of_range!r}")
        if self.kind in DISCRETE_KINDS:
            self._init_discrete(where)
        else:
            self._init_binned(where)
        self._init_representation(where)

    def _init_representation(self, where: str) -> None:
        if self.values is not None:
            if self.kind != "boolean":
                raise SchemaError(f"{where}: values (how false/true are written) is for boolean columns")
            vals = self.values
            if isinstance(vals, (str, bytes)) or not isinstance(vals, (Sequence, np.ndarray)) or len(vals) != 2:
                raise SchemaError(f"{where}: values must be a list of two values, false first (e.g. [0, 1])")
            vals = tuple(v.item() if isinstance(v, np.generic) else v for v in vals)
            for v in vals:
                if isinstance(v, float) and not math.isfinite(v) or not isinstance(v, (str, int, float, bool)):
                    raise SchemaError(f"{where}: values must be two strings, numbers or true/false")
            if vals[0] == vals[1] or type(vals[0]) is not type(vals[1]) and not (
                    isinstance(vals[0], (int, float)) and isinstance(vals[1], (int, float))
                    and not isinstance(vals[0], bool) and not isinstance(vals[1], bool)):
                raise SchemaError(f"{where}: values must be two different values of one type")
            object.__setattr__(self, "values", vals)
        if self.decimals is not None:
            if self.kind != "numeric":
                raise SchemaError(f"{where}: decimals is for numeric columns")
            if isinstance(self.decimals, bool) or not isinstance(self.decimals, (int, np.integer)) or not (
                    0 <= self.decimals <= MAX_DECIMALS):
                raise SchemaError(f"{where}: decimals must be a whole number from 0 to {MAX_DECIMALS}")
            object.__setattr__(self, "decimals", int(self.decimals))
        if self.format is not None:
            if self.kind != "datetime":
                raise SchemaError(f"{where}: format (date or datetime) is for datetime columns")
            if self.format not in DATETIME_FORMATS:
                raise SchemaError(f"{where}: format must be one of {DATETIME_FORMATS}, got {self.format!r}")

    # -- construction helpers -------------------------------------------------------------
    def _init_discrete(self, where: str) -> None:
        if self.lower is not None or self.upper is not None or self.bins is not None:
            raise SchemaError(f"{where}: a {self.kind} column takes categories, not lower/upper/bins")
        if self.out_of_range == "clip":
            raise SchemaError(f"{where}: out_of_range='clip' applies to numeric kinds; use 'other' or 'error'")
        cats = self.categories
        if self.kind == "boolean":
            if cats is not None and tuple(cats) != BOOLEAN_CATEGORIES:
                raise SchemaError(f"{where}: a boolean column's categories are always [false, true]")
            object.__setattr__(self, "categories", BOOLEAN_CATEGORIES)
            return
        if cats is None:
            return  # to be learned privately
        if isinstance(cats, str):
            from .codelists import codelist

            try:
                listed = codelist(cats)
            except KeyError as exc:
                raise SchemaError(f"{where}: {exc.args[0]}") from None
            if listed is not None:
                cats = listed  # a public code list: "codelist:NAME"
        if isinstance(cats, (str, bytes)) or not isinstance(cats, Sequence) and not isinstance(cats, np.ndarray):
            raise SchemaError(f"{where}: categories must be a list (or \"codelist:NAME\")")
        cats = tuple(c.item() if isinstance(c, np.generic) else c for c in cats)
        if not cats:
            raise SchemaError(f"{where}: categories must not be empty")
        for i, c in enumerate(cats):
            if c is None or isinstance(c, float) and math.isnan(c):
                raise SchemaError(f"{where}: categories[{i}] is missing; declare nullable instead")
            if not isinstance(c, (str, int, float, bool)):
                raise SchemaError(f"{where}: categories[{i}] must be a string or a number")
        if len(set(cats)) != len(cats):
            raise SchemaError(f"{where}: duplicate categories")
        object.__setattr__(self, "categories", cats)

    def _init_binned(self, where: str) -> None:
        if self.categories is not None:
            raise SchemaError(f"{where}: a {self.kind} column takes lower/upper/bins, not categories")
        if self.out_of_range == "other":
            raise SchemaError(f"{where}: out_of_range='other' applies to categorical kinds; use 'clip' or 'error'")
        conv = (lambda v, w: seconds(_timestamp(v, w))) if self.kind == "datetime" else _number
        lo = None if self.lower is None else conv(self.lower, f"{where}: lower")
        hi = None if self.upper is None else conv(self.upper, f"{where}: upper")
        if lo is not None and hi is not None and not lo < hi:
            raise SchemaError(f"{where}: lower must be below upper")
        bins = self.bins
        edges: tuple[float, ...] | None = None
        if isinstance(bins, (bool, np.bool_)):
            raise SchemaError(f"{where}: bins must be a number of bins or a list of edges")
        if bins is None and self.kind == "integer" and lo is not None and hi is not None:
            if math.floor(hi) - math.ceil(lo) + 1 <= MAX_VALUE_CODES:
                bins = VALUES  # a small-range integer column: one code per whole number
        if isinstance(bins, str) and bins in CALENDAR_BINS:
            if self.kind != "datetime":
                raise SchemaError(f"{where}: bins = {bins!r} (calendar bins) is for datetime columns")
            if lo is None or hi is None:
                raise SchemaError(f"{where}: bins = {bins!r} needs lower and upper")
            approx = (hi - lo) / {"days": 86400, "weeks": 7 * 86400, "months": 28 * 86400, "years": 365 * 86400}[bins]
            if approx > MAX_CALENDAR_BINS:
                raise SchemaError(f"{where}: bins = {bins!r} would make about {approx:.0f} bins; choose a longer unit")
            bins = calendar_edges(_timestamp(self.lower, where), _timestamp(self.upper, where), bins)
        if bins == COUNTS:
            first, last = self._whole_range(where, COUNTS, lo, hi)
            self._set_whole_bins(COUNTS, lo, hi, count_edges(first, last))
            return
        if isinstance(bins, str):
            if bins != VALUES:
                raise SchemaError(f"{where}: bins must be a number of bins or a list of edges"
                                  + (" (or \"values\" or \"counts\")" if self.kind == "integer" else "")
                                  + (f" (or one of {sorted(CALENDAR_BINS)})" if self.kind == "datetime" else ""))
            first, last = self._whole_range(where, VALUES, lo, hi)
            if last - first + 1 > 100_000:
                raise SchemaError(f"{where}: bins = \"values\" would make {last - first + 1} codes; declare bins")
            # One bin per whole number: edges half-way between them (whole numbers never fall on one).
            self._set_whole_bins(VALUES, lo, hi, tuple(float(v) - 0.5 for v in range(first, last + 2)))
            return
        if isinstance(bins, (int, np.integer)):
            if bins < 1:
                raise SchemaError(f"{where}: bins must be at least 1")
            object.__setattr__(self, "bins", int(bins))
            if lo is not None and hi is not None:
                edges = tuple(float(e) for e in np.linspace(lo, hi, int(bins) + 1))
        elif bins is not None:
            if isinstance(bins, (str, bytes)) or not isinstance(bins, (Sequence, np.ndarray)):
                raise SchemaError(f"{where}: bins must be a number of bins or a list of edges")
            raw = tuple(bins)
            edges = tuple(conv(e, f"{where}: bins[{i}]") for i, e in enumerate(raw))
            if len(edges) < 2:
                raise SchemaError(f"{where}: bins needs at least two edges")
            if any(not a < b for a, b in zip(edges, edges[1:])):
                raise SchemaError(f"{where}: bin edges must be strictly increasing")
            if lo is not None and lo != edges[0] or hi is not None and hi != edges[-1]:
                raise SchemaError(f"{where}: lower/upper must equal the first/last bin edge")
            lo, hi = edges[0], edges[-1]
            object.__setattr__(self, "bins", tuple(self._public(e) for e in raw))
        if self.kind == "datetime":
            object.__setattr__(self, "lower", None if lo is None else _timestamp(self.lower if self.lower is not None
                                                                                 else self.bins[0], where))
            object.__setattr__(self, "upper", None if hi is None else _timestamp(self.upper if self.upper is not None
                                                                                 else self.bins[-1], where))
        else:
            object.__setattr__(self, "lower", lo)
            object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "_edges", edges)

    def _whole_range(self, where: str, bins: str, lo: float | None, hi: float | None) -> tuple[int, int]:
        """The first and last whole numbers of an integer column's bounds, for bins = `bins`."""
        if self.kind != "integer":
            raise SchemaError(f"{where}: bins = \"{bins}\" is for integer columns")
        if lo is None or hi is None:
            raise SchemaError(f"{where}: bins = \"{bins}\" needs lower and upper")
        first, last = math.ceil(lo), math.floor(hi)
        if last < first:
            raise SchemaError(f"{where}: no whole number lies between lower and upper")
        return first, last

    def _set_whole_bins(self, bins: str, lo: float, hi: float, edges: tuple[float, ...]) -> None:
        object.__setattr__(self, "bins", bins)
        object.__setattr__(self, "lower", lo)
        object.__setattr__(self, "upper", hi)
        object.__setattr__(self, "_edges", edges)

    def _public(self, value: Any) -> Any:
        return _timestamp(value, self.name) if self.kind == "datetime" else float(value)

    # -- public facts ---------------------------------------------------------------------
    @property
    def one_code_per_value(self) -> bool:
        """True for an integer column with one code per whole number (bins = "values")."""
        return self.bins == VALUES

    @property
    def bounds(self) -> tuple[float, float]:
        """The public range on the numeric axis (seconds for datetimes): the declared bounds.

        Known without bins: a GAN scales a column by its bounds and never bins it."""
        if self.lower is not None and self.upper is not None and (
                self._edges is None or self.bins in (VALUES, COUNTS)):  # VALUES/COUNTS: edges at half-units
            if self.kind == "datetime":
                return seconds(self.lower), seconds(self.upper)
            return float(self.lower), float(self.upper)
        edges = self.edges
        return edges[0], edges[-1]

    @property
    def is_discrete(self) -> bool:
        return self.kind in DISCRETE_KINDS

    @property
    def is_complete(self) -> bool:
        """True when every fact needed to encode the column is known."""
        return self.categories is not None if self.is_discrete else self._edges is not None

    @property
    def edges(self) -> tuple[float, ...]:
        """Bin edges on the numeric axis (seconds since the epoch for datetimes)."""
        if self.is_discrete:
            raise SchemaError(f"column {self.name!r}: a {self.kind} column has no bins")
        if self._edges is None:
            raise SchemaError(f"column {self.name!r}: bins are not known yet (declare them or learn them)")
        return self._edges

    @property
    def n_values(self) -> int:
        """Codes for values: categories or bins (without "other" and missing)."""
        self._require_complete()
        return len(self.categories) if self.is_discrete else len(self.edges) - 1

    @property
    def other_code(self) -> int | None:
        return self.n_values if self.out_of_range == "other" else None

    @property
    def missing_code(self) -> int | None:
        return self.n_values + (self.out_of_range == "other") if self.nullable else None

    @property
    def size(self) -> int:
        """Number of integer codes (the column's domain size)."""
        return self.n_values + (self.out_of_range == "other") + self.nullable

    def _require_complete(self) -> None:
        if not self.is_complete:
            what = "categories" if self.is_discrete else "bins"
            raise SchemaError(f"column {self.name!r}: its {what} are not known yet (declare them or learn them)")

    def replace(self, **changes: Any) -> "Column":
        """A copy with some fields changed (validated again)."""
        data = {k: getattr(self, k) for k in ("name", "kind", "categories", "lower", "upper", "bins", "nullable",
                                              "out_of_range", "values", "decimals", "format")}
        data.update(changes)
        if "bins" in changes and not isinstance(changes["bins"], (int, np.integer, str)) and changes["bins"] is not None:
            if "lower" not in changes:
                data["lower"] = None
            if "upper" not in changes:
                data["upper"] = None
        return Column(**data)

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML-able fields (unset fields are left out; datetimes as ISO text)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind != "boolean" and self.categories is not None:
            out["categories"] = list(self.categories)
        iso = (lambda v: v.isoformat()) if self.kind == "datetime" else (lambda v: v)
        if isinstance(self.bins, tuple):
            out["bins"] = [iso(e) for e in self.bins]
        elif self.bins in (VALUES, COUNTS):
            out["lower"], out["upper"], out["bins"] = _whole(self.lower), _whole(self.upper), self.bins
        else:
            if self.lower is not None:
                out["lower"] = iso(self.lower)
            if self.upper is not None:
                out["upper"] = iso(self.upper)
            if self.bins is not None:
                out["bins"] = self.bins
        if self.nullable:
            out["nullable"] = True
        if self.out_of_range != "error":
            out["out_of_range"] = self.out_of_range
        if self.values is not None:
            out["values"] = list(self.values)
        if self.decimals is not None:
            out["decimals"] = self.decimals
        if self.format is not None:
            out["format"] = self.format
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Column":
        if not isinstance(data, Mapping):
            raise SchemaError(f"a column must be a table/object, got {type(data).__name__}")
        allowed = {"name", "kind", "categories", "lower", "upper", "bins", "nullable", "out_of_range", "values",
                   "decimals", "format"}
        unknown = sorted(set(data) - allowed)
        name = data.get("name")
        if unknown:
            raise SchemaError(f"column {name!r}: unknown fields {unknown} (allowed: {sorted(allowed)})")
        if "name" not in data or "kind" not in data:
            raise SchemaError(f"column {name!r}: 'name' and 'kind' are required")
        fields = dict(data)
        if isinstance(fields.get("categories"), list):
            fields["categories"] = tuple(fields["categories"])
        if isinstance(fields.get("bins"), list):
            fields["bins"] = tuple(fields["bins"])
        if isinstance(fields.get("values"), list):
            fields["values"] = tuple(fields["values"])
        return cls(**fields)


def _whole(x: Any) -> Any:
    return int(x) if isinstance(x, float) and x.is_integer() else x
