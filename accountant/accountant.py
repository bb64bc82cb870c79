"""RDPAccountant: composes events and converts to (ε, δ) with the tightest valid rule."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .conversions import rdp_delta, rdp_epsilon, validate_delta, zcdp_delta, zcdp_epsilon_and_order
from .events import DpEvent, NeighbouringRelation, SelfComposedEvent
from .orders import DEFAULT_ORDERS, as_orders
from .rdp import event_other_rdp, minus_down, split, sum_up

__all__ = ["RDPAccountant", "GridEdgeWarning"]


class GridEdgeWarning(UserWarning):
    """The optimal order is at an end of the grid: a wider grid might be tighter."""


class RDPAccountant:
    """Rényi-DP accountant in the style of dp_accounting's `PrivacyAccountant`.

    The curve is kept as ρ (an exactly rounded `math.fsum` of every zCDP-shaped
    term) plus R_other on a fixed order grid.  When R_other ≡ 0 the conversion
    is the continuous-order CKS formula; otherwise the improved RDP conversion
    minimised over the grid.

    `ApproximationEvent` parts (δ-closeness, approximate zCDP) add nothing to the curve;
    their δ's are summed exactly (`delta_spent`) and the curve is converted at
    δ − Σδ, so `get_epsilon(δ)` is an (ε, δ) guarantee for the whole composition.
    """

    def __init__(
        self,
        relation: NeighbouringRelation = NeighbouringRelation.ADD_OR_REMOVE_ONE,
        orders=DEFAULT_ORDERS,
    ) -> None:
        self.relation = NeighbouringRelation(relation)
        self.orders = as_orders(orders)
        self._rho_terms: list[float] = []
        self._other = np.zeros_like(self.orders)
        self._has_other = False
        self._delta_terms: list[float] = []
        self.events: list[DpEvent] = []

    def copy(self) -> "RDPAccountant":
        """An independent accountant with the same events (events are immutable: no deep copy)."""
        other = RDPAccountant.__new__(RDPAccountant)
        other.relation = self.relation
        other.orders = self.orders
        other._rho_terms = list(self._rho_terms)
        other._other = self._other.copy()
        other._has_other = self._has_other
        other._delta_terms = list(self._delta_terms)
        other.events = list(self.events)
        return other

    def compose(self, event: DpEvent, count: int = 1) -> "RDPAccountant":
        """Add `count` runs of `event` (chosen before or after seeing earlier outputs
        — RDP composition of fixed-parameter mechanisms holds under adaptivity)."""
        if not isinstance(event, DpEvent):
            raise TypeError(f"compose() expects a DpEvent, got {type(event).__name__}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        if event.relation is not self.relation:
            raise ValueError(
                f"event analysed under {event.relation.value} cannot be composed in an "
                f"accountant for {self.relation.value}"
            )
        whole = event if count == 1 else SelfComposedEvent(event, count)
        parts = split(whole)
        self._rho_terms.extend(parts.rho_terms)
        self._delta_terms.extend(parts.delta_terms)
        if parts.other:
            self._other = self._other + event_other_rdp(whole, self.orders)
            self._has_other = True
        self.events.append(whole)
        return self

    @property
    def rho(self) -> float:
        """The zCDP part of the total: exactly rounded sum of all ρ terms."""
        return math.fsum(self._rho_terms)

    @property
    def delta_spent(self) -> float:
        """Σδ of the approximation parts: exact sum, rounded up to a float."""
        return sum_up(self._delta_terms)

    @property
    def is_zcdp(self) -> bool:
        """True when every composed event is zCDP-shaped (closed-form conversion)."""
        return not self._has_other

    def curve(self, orders=None) -> np.ndarray:
        """Total RDP at the given orders (default: the accountant's grid)."""
        if orders is None:
            return self.rho * self.orders + self._other
        a = as_orders(orders)
        total = self.rho * a
        for e in self.events:
            if split(e).other:
                total = total + event_other_rdp(e, a)
        return total

    def get_epsilon_and_order(self, delta: float) -> tuple[float, float]:
        """(ε, optimal order) at δ: the curve is converted at δ − Σδ (approximation parts).

        Returns (inf, nan) when δ ≤ Σδ: no finite ε holds at that δ."""
        delta = validate_delta(delta)
        spent = self.delta_spent
        if spent > 0:
            if not delta > spent:
                return math.inf, math.nan
            delta = minus_down(delta, spent)
        if self.is_zcdp:
            return zcdp_epsilon_and_order(self.rho, delta)
        eps, order = rdp_epsilon(self.orders, self.curve(), delta)
        if order in (self.orders[0], self.orders[-1]) and eps > 0:
            warnings.warn(f"optimal order {order} is at the edge of the grid", GridEdgeWarning, stacklevel=2)
        return eps, order

    def get_epsilon(self, delta: float) -> float:
        """ε at δ (inf when δ ≤ Σδ of the approximation parts)."""
        return self.get_epsilon_and_order(delta)[0]

    def get_delta(self, epsilon: float) -> float:
        """Smallest δ we can certify for (ε, δ)-DP: the curve's conversion δ plus Σδ (at most 1)."""
        if self.is_zcdp:
            converted = zcdp_delta(self.rho, epsilon)
        else:
            converted = rdp_delta(self.orders, self.curve(), epsilon)[0]
        return min(1.0, sum_up([converted, self.delta_spent]))
