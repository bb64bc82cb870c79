"""PATE-GAN's plan: every label query fixed before any teacher trains, from public numbers only.

A run of PATE-GAN is (ε, δ)-DP on its own.  Its budget is the RDP B(α_run) that
converts to exactly (ε, δ) at α_run (as for DP-CTGAN, `dpctgan.plan.run_order`),
split between two charges:

* the noisy category counts for conditional generation get `frequency_share` of
  B (a Gaussian mechanism, ρ = 1/(2z²); absent when the schema has no
  categorical column);
* the teachers' votes get the rest, as ONE `GNMaxEvent(σ, Q)`: Q label queries,
  each (α, α/σ²)-RDP (Papernot et al. 2018, Prop. 8).

Making the budget buy as much as it can.  A data-independent PATE pays α/σ² per
label whatever the vote looks like, so a label is worth its price only when a
unanimous vote survives the noise: with k teachers and noise σ on each of the two
counts, a unanimous vote comes out wrong with probability Φ(−k/(σ√2)).  The plan
therefore aims σ at the number of teachers — σ = k / `label_noise` (default
3: a unanimous vote is wrong 1.7 % of the time) — and buys as many queries Q as
the budget then admits: Q = ⌊B_votes·σ²/α⌋, rounded down to whole iterations; σ
is then recomputed from Q so that the votes spend exactly their share.
With a label column (`label_share` > 0), ⌊Q·share⌋ of the Q queries (and whatever whole
iterations leave over) go to the label teachers after training — the same GNMax
queries at the same σ, on the same partitions, so the event is still GNMaxEvent(σ, Q);
the rest buy the iterations, and k is raised until those still make MIN_DEFAULT_ITERATIONS.
A caller may fix Q instead; σ then follows, and a plan whose unanimous votes would
be wrong more than 40 % of the time is refused as useless before any charge.
The number of teachers defaults to max_records / 150 (a public bound, never n),
between 2 and 1000 — raised, when that many teachers would buy fewer than
`MIN_DEFAULT_ITERATIONS` iterations of queries, to the fewest teachers that buy
them (Q grows as k²), as long as every teacher keeps max_records /
`MIN_RECORDS_PER_TEACHER` records: small tables at small ε get a working plan
instead of a refusal, still from public numbers only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from accountant import RDPAccountant
from accountant.conversions import rdp_budget_at_order
from accountant.events import GaussianEvent, GNMaxEvent, NeighbouringRelation
from accountant.orders import orders_with
from accountant.rdp import event_rdp

from ..dpctgan.plan import PlanError, frequency_noise_multiplier

__all__ = ["PatePlan", "make_pate_plan", "default_teachers", "unanimous_error", "PlanError",
           "MAX_UNANIMOUS_ERROR"]

#: A plan whose unanimous votes would come out wrong more often than this is refused.
MAX_UNANIMOUS_ERROR = 0.4
RECORDS_PER_TEACHER = 150
MAX_TEACHERS = 1000
#: The default k is raised (within the bounds below) until the plan buys this many iterations.
MIN_DEFAULT_ITERATIONS = 8
MIN_RECORDS_PER_TEACHER = 10


def default_teachers(max_records: int) -> int:
    """max_records / 150, between 2 and 1000 (the policy's public bound, never the data's n)."""
    return max(2, min(MAX_TEACHERS, max_records // RECORDS_PER_TEACHER))


def _split(total: int, label_share: float, m: int) -> tuple[int, int]:
    """(discriminator queries in whole iterations of m, label queries) out of `total`: the label
    teachers get ⌊total·share⌋ and whatever the whole iterations leave over; none at share 0."""
    if label_share <= 0:
        return total // m * m, 0
    disc = (total - int(math.floor(total * label_share))) // m * m
    return disc, total - disc


def _queries_bought(teachers: int, label_noise: float, vote_budget: float, order: float, m: int,
                    label_share: float = 0.0) -> int:
    """Discriminator queries for k teachers at σ = k / label_noise: of ⌊B_votes·σ²/α⌋, those left
    by the label share, in whole iterations of m."""
    sigma = teachers / float(label_noise)
    return _split(int(vote_budget * sigma * sigma / order), label_share, m)[0]


def _raised_teachers(k: int, max_records: int, label_noise: float, vote_budget: float, order: float,
                     m: int, label_share: float = 0.0) -> int:
    """The default k, raised to the fewest teachers that buy MIN_DEFAULT_ITERATIONS iterations
    (within max_records / MIN_RECORDS_PER_TEACHER and MAX_TEACHERS); k itself when none does."""
    ceiling = min(MAX_TEACHERS, max_records // MIN_RECORDS_PER_TEACHER)
    wanted = MIN_DEFAULT_ITERATIONS * m
    if k >= ceiling or _queries_bought(k, label_noise, vote_budget, order, m, label_share) >= wanted:
        return k
    # Q is increasing in k: the smallest k with Q(k) >= wanted, by bisection on [k, ceiling].
    if _queries_bought(ceiling, label_noise, vote_budget, order, m, label_share) < wanted:
        return ceiling
    low, high = k, ceiling
    while high - low > 1:
        mid = (low + high) // 2
        if _queries_bought(mid, label_noise, vote_budget, order, m, label_share) >= wanted:
            high = mid
        else:
            low = mid
    return high


def unanimous_error(teachers: int, sigma: float) -> float:
    """P[a unanimous k-vote loses to the other count] with N(0, σ²) on each: Φ(−k/(σ√2))."""
    return 0.5 * math.erfc(teachers / (sigma * math.sqrt(2.0)) / math.sqrt(2.0))


@dataclass(frozen=True)
class PatePlan:
    """Everything the privacy analysis depends on, fixed before any teacher trains."""

    epsilon: float
    delta: float
    order: float                             # α_run
    run_budget: float                        # RDP at α_run this run may cost
    frequency_share: float
    frequency_noise_multiplier: float | None  # z of the Gaussian on the category counts
    teachers: int                            # k
    queries: int                             # Q, every label query of the run
    queries_per_iteration: int
    iterations: int
    noise_multiplier: float                  # σ of GNMax (per count)
    max_records: int
    relation: str = NeighbouringRelation.ADD_OR_REMOVE_ONE.value   # the events are analysed under it
    label_queries: int = 0                   # of the Q, those asked of the label teachers (after training)

    @property
    def gnmax_event(self) -> GNMaxEvent:
        return GNMaxEvent(self.noise_multiplier, self.queries, relation=NeighbouringRelation(self.relation))

    @property
    def frequency_event(self) -> GaussianEvent | None:
        if self.frequency_noise_multiplier is None:
            return None
        return GaussianEvent(self.frequency_noise_multiplier, relation=NeighbouringRelation(self.relation))

    @property
    def events(self) -> tuple:
        return tuple(e for e in (self.frequency_event, self.gnmax_event) if e is not None)

    def cost(self, order: float | None = None) -> float:
        """The plan's total RDP at `order` (default α_run)."""
        alpha = self.order if order is None else float(order)
        return math.fsum(float(event_rdp(e, [alpha])[0]) for e in self.events)

    def epsilon_after(self, queries_done: int) -> float:
        """Full-curve ε at δ of the counts and the first `queries_done` label queries (shown
        in the progress bar: public numbers)."""
        acc = RDPAccountant(NeighbouringRelation(self.relation), orders=orders_with(self.order))
        if self.frequency_event is not None:
            acc.compose(self.frequency_event)
        if queries_done > 0:
            acc.compose(GNMaxEvent(self.noise_multiplier, queries_done, relation=NeighbouringRelation(self.relation)))
        if not acc.events:
            return 0.0
        return float(acc.get_epsilon(self.delta))

    @property
    def unanimous_error(self) -> float:
        return unanimous_error(self.teachers, self.noise_multiplier)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PatePlan":
        return cls(**dict(data))


def _positive_int(name: str, value: Any, low: int = 1, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise PlanError(f"{name} must be an int {bound}, got {value!r}")
    return value


def make_pate_plan(*, epsilon: float, delta: float, order: float, max_records: int, teachers: int | None = None,
                   queries: int | None = None, queries_per_iteration: int = 32, label_noise: float = 3.0,
                   frequency_share: float = 0.1, n_categorical_columns: int,
                   relation: NeighbouringRelation | str = NeighbouringRelation.ADD_OR_REMOVE_ONE,
                   label_share: float = 0.0) -> PatePlan:
    """Fix k, σ, Q and the iterations for a run of `epsilon`, calibrated at `order` (module docstring)."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not (math.isfinite(epsilon)
                                                                                   and epsilon > 0):
        raise PlanError(f"epsilon must be a finite number > 0, got {epsilon!r}")
    max_records = _positive_int("max_records", max_records)
    k = default_teachers(max_records) if teachers is None else _positive_int("teachers", teachers, 2, MAX_TEACHERS)
    if k > max_records:
        raise PlanError(f"teachers = {k} is more than the data bound max_records = {max_records}: some teachers "
                        "would see no record at all")
    m = _positive_int("queries_per_iteration", queries_per_iteration, 1, 100_000)
    if isinstance(label_noise, bool) or not isinstance(label_noise, (int, float)) or not (
            math.isfinite(label_noise) and 0.5 <= label_noise <= 100):
        raise PlanError(f"label_noise must be a number in [0.5, 100], got {label_noise!r}")
    if not (isinstance(frequency_share, (int, float)) and 0.0 < frequency_share < 1.0):
        raise PlanError(f"frequency_share must be in (0, 1), got {frequency_share!r}")
    if isinstance(label_share, bool) or not isinstance(label_share, (int, float)) or not (
            math.isfinite(label_share) and 0.0 <= label_share < 1.0):
        raise PlanError(f"label_share must be a number in [0, 1), got {label_share!r}")
    label_share = float(label_share)
    run_budget = rdp_budget_at_order(order, float(epsilon), delta)
    if not run_budget > 0:
        raise PlanError(f"epsilon = {epsilon} is too small for any plan at delta = {delta}")
    share = float(frequency_share) if n_categorical_columns > 0 else 0.0
    z_freq = frequency_noise_multiplier(share, run_budget, order) if n_categorical_columns > 0 else None
    vote_budget = run_budget - (0.0 if z_freq is None else order / (2.0 * z_freq * z_freq))
    if queries is None:
        if teachers is None:
            k = _raised_teachers(k, max_records, float(label_noise), vote_budget, order, m, label_share)
        sigma = k / float(label_noise)
        disc, labels = _split(int(vote_budget * sigma * sigma / order), label_share, m)
        q = disc + labels
        if disc < m:
            raise PlanError(
                f"epsilon = {epsilon} buys fewer than {m} label queries with {k} teachers at label_noise "
                f"{label_noise:g} (sigma {sigma:.4g}); use more epsilon, more teachers (max_records allows "
                f"{max_records // 2}) or a larger label_noise")
        queries = q
    else:
        queries = _positive_int("queries", queries, 1, 100_000_000)
        disc, labels = _split(queries, label_share, m)
        if label_share == 0 and queries % m:
            raise PlanError(f"queries = {queries} must be a multiple of queries_per_iteration = {m}")
        if disc < m:
            raise PlanError(f"queries = {queries} leaves fewer than queries_per_iteration = {m} for the "
                            f"discriminator teachers after the label share {label_share:g}: no iteration to train")
    # σ from Q so that the votes take exactly their share (a little under k / label_noise when Q
    # was rounded down to whole iterations): the budget is spent, not left on the table.
    sigma = math.sqrt(order * queries / vote_budget)
    plan = PatePlan(epsilon=float(epsilon), delta=float(delta), order=float(order), run_budget=run_budget,
                    frequency_share=share, frequency_noise_multiplier=z_freq, teachers=k, queries=queries,
                    queries_per_iteration=m, iterations=disc // m, noise_multiplier=float(sigma),
                    max_records=max_records, relation=NeighbouringRelation(relation).value, label_queries=labels)
    # Never overshoot: nudge σ up until the plan's RDP at α_run is within the budget, both as a
    # sum and as the gate sees the second charge (what the first one left: in floating point,
    # a + b <= B does not imply b <= B - a).
    def overshoots(p: PatePlan) -> bool:
        votes = float(event_rdp(p.gnmax_event, [p.order])[0])
        first = 0.0 if p.frequency_event is None else float(event_rdp(p.frequency_event, [p.order])[0])
        return p.cost() > run_budget or votes > run_budget - first

    while overshoots(plan):
        plan = PatePlan(**{**plan.to_dict(), "noise_multiplier": math.nextafter(plan.noise_multiplier, math.inf)
                           * (1 + 1e-12)})
    if plan.unanimous_error > MAX_UNANIMOUS_ERROR:
        raise PlanError(
            f"epsilon = {epsilon} is too small for {queries} label queries with {k} teachers: the vote noise would "
            f"be sigma = {plan.noise_multiplier:.4g}, and even a unanimous vote would come out wrong "
            f"{100 * plan.unanimous_error:.0f} % of the time; use fewer queries, more teachers or more epsilon")
    return plan
