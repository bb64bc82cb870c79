"""The fixed-order Rényi filter (Feldman & Zrnic 2021)."""

from __future__ import annotations

import math

import pytest

from accountant import (
    ExponentialMechanismEvent,
    GaussianEvent,
    PoissonSubsampledGaussianEvent,
    RenyiFilter,
    event_rdp,
    zcdp_epsilon,
    zcdp_rho,
)
from accountant.conversions import epsilon_at_order


@pytest.mark.parametrize("eps,delta", [(1.0, 1e-6), (3.0, 1e-5), (8.0, 1e-5), (0.1, 1e-9)])
def test_zcdp_workload_loses_nothing(eps, delta):
    """For zCDP events the filter admits exactly the ρ of the tight conversion."""
    f = RenyiFilter(eps, delta)
    assert math.isclose(f.remaining_rho([]), zcdp_rho(eps, delta), rel_tol=1e-9)
    # (α*, B) converts back to exactly (ε, δ).
    assert math.isclose(float(epsilon_at_order(f.order, f.budget, delta)), eps, rel_tol=1e-12)


def test_optimal_order_matches_research_table():
    # research/accounting.md §4: policy (1, 1e-6) → α* = 21.98; (3, 1e-5) → 7.51; (8, 1e-5) → 3.87.
    assert RenyiFilter(1, 1e-6).order == pytest.approx(21.98, abs=0.01)
    assert RenyiFilter(3, 1e-5).order == pytest.approx(7.51, abs=0.01)
    assert RenyiFilter(8, 1e-5).order == pytest.approx(3.87, abs=0.01)


def test_admits_until_budget_then_refuses():
    f = RenyiFilter(1.0, 1e-6)
    costs: list[float] = []
    event = GaussianEvent(10.0)  # ρ = 0.005
    while f.admits(costs, f.cost(event)):
        costs.append(f.cost(event))
    assert len(costs) == math.floor(zcdp_rho(1.0, 1e-6) / 0.005 + 1e-9)
    assert f.total(costs) <= f.budget
    assert f.epsilon_spent(costs) <= 1.0
    # The spent ε reported by the filter is at least the full-curve ε of the same events.
    assert f.epsilon_spent(costs) >= zcdp_epsilon(0.005 * len(costs), 1e-6) - 1e-12


def test_remaining_rho_is_always_admitted():
    f = RenyiFilter(1.0, 1e-6)
    costs = [f.cost(ExponentialMechanismEvent(0.1)), f.cost(GaussianEvent(7.0))]
    rho = f.remaining_rho(costs)
    assert f.admits(costs, rho * f.order)
    assert not f.admits(costs, math.nextafter(rho, 1) * f.order * (1 + 1e-12))


def test_cost_is_rdp_at_the_order():
    f = RenyiFilter(3.0, 1e-5)
    e = PoissonSubsampledGaussianEvent(0.01, 1.1, 500)
    assert f.cost(e) == pytest.approx(event_rdp(e, [f.order])[0], rel=1e-12)
    assert f.cost(GaussianEvent(2.0)) == pytest.approx(f.order / 8.0, rel=1e-15)


def test_pinned_order():
    f = RenyiFilter(3.0, 1e-5, order=12)
    assert f.order == 12.0
    assert float(epsilon_at_order(12, f.budget, 1e-5)) == pytest.approx(3.0, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [dict(epsilon=0, delta=1e-6), dict(epsilon=-1, delta=1e-6), dict(epsilon=1, delta=0),
     dict(epsilon=1, delta=1), dict(epsilon=float("nan"), delta=1e-6), dict(epsilon=1, delta=1e-6, order=1.0),
     dict(epsilon=1, delta=1e-6, order=float("inf")), dict(epsilon=0.01, delta=0.5, order=1.02)],
)
def test_invalid_filters_are_refused(kwargs):
    with pytest.raises(ValueError):
        RenyiFilter(**kwargs)
