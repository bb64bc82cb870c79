"""Choosing the filter order α* for the mix of runs an officer expects.

The filter (`filter.RenyiFilter`) charges every run its RDP at one fixed order α* and
admits runs while the sum stays within B(α*), the RDP budget that converts to the
policy's (ε, δ).  Any α* is sound; which one is *economical* depends on the shape of the
runs' RDP curves.  For zCDP-shaped runs (MST, AIM, Independent: ρα) the best α* is the
CKS-optimal order of (ε, δ), the default.  A DP-SGD or PATE run's curve is not linear in
α; at the default α* such a mix can exhaust the filter while the runs' composed curve
would still allow more — the budget left on the table.

`suggest_order` picks, over a fine grid of orders, the α at which one copy of the
expected mix (each run calibrated on its own, as a share of the budget is) uses the
smallest share of B(α): the mix then fits the most times.  A run that takes the whole
budget is calibrated at α* itself, so at an order where its share is below 1 it gets
less noise.  The choice is public (it depends on the policy and the expected runs, never
on data) and fixed in the signed policy before any charge, so the filter theorem applies
unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .conversions import rdp_budget_at_order, validate_delta, validate_epsilon
from .events import DpEvent
from .filter import RenyiFilter
from .orders import MIN_CONVERSION_ORDER
from .rdp import minus_down

__all__ = ["OrderChoice", "mix_share", "suggest_order", "ORDER_GRID"]

#: Candidate orders: fine (2 % steps) from the smallest useful order to 1024.
ORDER_GRID: np.ndarray = np.unique(np.concatenate([
    np.geomspace(1.05, 1024.0, 350), [MIN_CONVERSION_ORDER + 0.04]]))
ORDER_GRID.setflags(write=False)
#: An order other than the default is suggested only when it saves this share of the mix's cost.
SIGNIFICANT_SAVING = 0.01



@dataclass(frozen=True)
class OrderChoice:
    """The suggested order and what one copy of the mix costs there and at the default."""

    order: float              # the suggested α*
    share: float              # the share of B(α*) one copy of the mix uses
    default_order: float      # the filter's default α* (CKS-optimal for (ε, δ))
    default_share: float      # the share one copy of the mix uses at the default

    @property
    def copies(self) -> float:
        """How many copies of the mix fit at the suggested order."""
        return math.inf if self.share == 0 else 1.0 / self.share

    @property
    def default_copies(self) -> float:
        return math.inf if self.default_share == 0 else 1.0 / self.default_share


def mix_share(epsilon: float, delta: float, order: float, events: Sequence[DpEvent], *,
              delta_reserve: float = 0.0) -> float:
    """The share of the filter's budget B(order) one copy of the mix `events` costs (∞ when
    the order leaves no budget)."""
    try:
        f = RenyiFilter(epsilon, delta, order=order, delta_reserve=delta_reserve)
    except ValueError:
        return math.inf
    if not f.budget > 0:
        return math.inf
    return math.fsum(f.cost(e) for e in events) / f.budget


def suggest_order(epsilon: float, delta: float, events: Sequence[DpEvent], *, delta_reserve: float = 0.0,
                  orders: Sequence[float] | None = None) -> OrderChoice:
    """The order (on `orders`, default `ORDER_GRID`, plus the default α*) at which one copy
    of the mix uses the smallest share of the filter's budget."""
    epsilon = validate_epsilon(epsilon)
    delta = validate_delta(delta)
    default = RenyiFilter(epsilon, delta, delta_reserve=delta_reserve).order
    grid = [float(a) for a in (ORDER_GRID if orders is None else orders) if a >= MIN_CONVERSION_ORDER]
    conversion_delta = minus_down(delta, delta_reserve) if delta_reserve else delta
    candidates = [a for a in grid if rdp_budget_at_order(a, epsilon, conversion_delta) > 0] + [default]
    events = list(events)
    shares = [mix_share(epsilon, delta, a, events, delta_reserve=delta_reserve) for a in candidates]
    best = int(np.argmin(shares))
    default_share = shares[-1]
    # Keep the default (what a policy without `order` gets) unless another order saves at
    # least 1 % of what the mix costs there: a rounding is no reason to pin an order.
    if not shares[best] < default_share * (1 - SIGNIFICANT_SAVING):
        best = len(candidates) - 1
    return OrderChoice(order=candidates[best], share=shares[best], default_order=default,
                       default_share=default_share)
