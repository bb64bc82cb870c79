"""The privacy filter the gate applies: Feldman & Zrnic's fixed-order Rényi filter.

Later runs are chosen after seeing earlier outputs, and even their privacy
parameters may depend on them, so plain composition does not apply.  Feldman &
Zrnic (2021, "Individual Privacy Accounting via a Rényi Filter", arXiv:2008.11193,
Thm 3.1) show: if every mechanism is (α, ρ_i)-RDP at one fixed order α, with ρ_i
chosen adaptively, and the interaction stops before Σ ρ_i exceeds B, the whole
interaction is (α, B)-RDP.  We pick α* and B from the policy's (ε, δ) so that
(α*, B)-RDP converts to exactly (ε, δ) with the improved conversion.

For an all-zCDP workload this loses nothing: α* is the CKS-optimal order, and
the filter admits exactly the ρ that the tight zCDP conversion would allow.

Approximate mechanisms (events with an `ApproximationEvent` part, e.g. thresholded
key discovery) are paid from a δ reserve the policy sets aside: the RDP budget is
computed at (ε, δ − reserve), and δ-costs are admitted while their exact sum stays
≤ reserve.  Then the whole adaptive interaction is (ε, δ)-DP (proofs/filter.md).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

import numpy as np

from .conversions import (
    epsilon_at_order,
    rdp_budget_at_order,
    validate_delta,
    validate_epsilon,
    zcdp_optimal_order,
)
from .events import DpEvent
from .orders import MIN_CONVERSION_ORDER
from .rdp import event_delta, event_other_rdp, minus_down, split

__all__ = ["RenyiFilter"]


class RenyiFilter:
    """Admit events while Σ RDP(α*) ≤ B (Feldman & Zrnic 2021) and Σδ ≤ delta_reserve.

    B and α* are computed at (ε, δ − delta_reserve); with the default reserve 0 the
    filter is exactly the pure-RDP one and refuses every event with a δ part.
    """

    def __init__(self, epsilon: float, delta: float, order: float | None = None,
                 delta_reserve: float = 0.0) -> None:
        self.epsilon = validate_epsilon(epsilon)
        self.delta = validate_delta(delta)
        if isinstance(delta_reserve, bool) or not isinstance(delta_reserve, (int, float)) or not (
            0 <= delta_reserve < self.delta
        ):
            raise ValueError(f"delta_reserve must be a number with 0 <= delta_reserve < delta = {self.delta!r}, "
                             f"got {delta_reserve!r}")
        self.delta_reserve = float(delta_reserve)
        # The δ the RDP part converts at; exactly self.delta when there is no reserve.
        self.conversion_delta = minus_down(self.delta, self.delta_reserve) if self.delta_reserve else self.delta
        if order is None:
            _, order = zcdp_optimal_order(self.epsilon, self.conversion_delta)
        elif isinstance(order, bool) or not isinstance(order, (int, float)) or not (
            MIN_CONVERSION_ORDER <= order < math.inf
        ):
            raise ValueError(f"order must be a finite number >= {MIN_CONVERSION_ORDER}, got {order!r}")
        self.order = float(order)
        self.budget = rdp_budget_at_order(self.order, self.epsilon, self.conversion_delta)
        if not self.budget > 0:
            raise ValueError(
                f"order {self.order} leaves no RDP budget for (epsilon={self.epsilon}, "
                f"delta={self.conversion_delta}); choose another order"
            )

    def __repr__(self) -> str:
        extra = f", delta_reserve={self.delta_reserve!r}" if self.delta_reserve else ""
        return f"RenyiFilter(epsilon={self.epsilon!r}, delta={self.delta!r}, order={self.order!r}{extra})"

    @staticmethod
    def delta_cost(event: DpEvent) -> float:
        """The event's approximation δ (0 for a pure RDP event)."""
        return event_delta(event)

    def admits_delta(self, delta_costs: Sequence[float], new_delta_cost: float) -> bool:
        """True iff the exact (rational) sum of δ-costs, the new one included, is <= the reserve."""
        if not (new_delta_cost >= 0) or math.isnan(new_delta_cost):
            raise ValueError(f"a delta cost must be >= 0, got {new_delta_cost!r}")
        if new_delta_cost == 0:
            return True
        # Compared in exact rationals: a correctly rounded fsum could hide an excess of half an ulp.
        exact = sum((Fraction(c) for c in delta_costs), Fraction(new_delta_cost))
        return exact <= Fraction(self.delta_reserve)

    def remaining_delta(self, delta_costs: Sequence[float]) -> float:
        """δ still available in the reserve."""
        return max(0.0, self.delta_reserve - math.fsum(delta_costs))

    def cost(self, event: DpEvent) -> float:
        """The event's RDP at the filter order α*."""
        parts = split(event)
        rho = math.fsum(parts.rho_terms)
        other = float(event_other_rdp(event, np.array([self.order]))[0]) if parts.other else 0.0
        return rho * self.order + other

    @staticmethod
    def total(costs: Sequence[float]) -> float:
        """Exactly rounded sum of the costs: order-independent, reproducible by auditors."""
        return math.fsum(costs)

    def admits(self, costs: Sequence[float], new_cost: float) -> bool:
        """True iff the exact (rational) sum of the costs, the new one included, is <= B.

        Exact, not a rounded sum: after the budget is used up, a cost below half an ulp of
        B (a subnormal ρ, say) would vanish in a rounded sum and be admitted for free."""
        if not (new_cost >= 0) or math.isnan(new_cost) or math.isinf(new_cost):
            raise ValueError(f"a cost must be a finite number >= 0, got {new_cost!r}")
        return self.exceeds(costs, new_cost) is False

    def exceeds(self, costs: Sequence[float], new_cost: float = 0.0) -> bool:
        """True iff the exact sum of the costs (and `new_cost`) is above the budget B."""
        exact = sum((Fraction(c) for c in costs), Fraction(new_cost))
        return exact > Fraction(self.budget)

    def remaining(self, costs: Sequence[float]) -> float:
        """RDP at α* still available."""
        return max(0.0, self.budget - self.total(costs))

    def remaining_rho(self, costs: Sequence[float]) -> float:
        """Largest ρ a zCDP event may still cost, rounded down until `admits` holds."""
        rho = self.remaining(costs) / self.order
        while rho > 0 and not self.admits(costs, rho * self.order):
            rho = math.nextafter(rho, 0.0)
        return rho

    def epsilon_spent(self, costs: Sequence[float]) -> float:
        """ε at the policy's δ guaranteed by the filter for what has been spent (the RDP
        part converted at δ − delta_reserve; the reserve covers every admitted δ-cost)."""
        spent = self.total(costs)
        if spent == 0:
            return 0.0
        return max(0.0, float(epsilon_at_order(self.order, spent, self.conversion_delta)))
