"""ApproximationEvent: the δ of approximate zCDP, its accounting and its filter rule.

Closed forms are computed here independently (mpmath, 40 digits, a golden-section
search over the order) or read from the third-party reference vectors.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from accountant.accountant import RDPAccountant
from accountant.conversions import rdp_budget_at_order
from accountant.events import (
    ApproximationEvent,
    ComposedEvent,
    DiscreteGaussianEvent,
    LaplaceEvent,
    NeighbouringRelation,
    SelfComposedEvent,
    ZCdpEvent,
    event_from_json,
)
from accountant.filter import RenyiFilter
from accountant.orders import DEFAULT_ORDERS
from accountant.rdp import event_delta, event_rdp, event_rho

from .reference import column, params

REPLACE = NeighbouringRelation.REPLACE_ONE


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def cks_epsilon(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ (CKS 2020, Prop. 12 applied to R(α) = ρα), minimised over α by a
    golden-section search in log α — written here independently of accountant.conversions."""
    mpmath.mp.dps = 40
    rho, ld = mpmath.mpf(rho), mpmath.log(mpmath.mpf(delta))

    def f(log_a):
        a = mpmath.e ** log_a
        return rho * a + mpmath.log(1 - 1 / a) - (ld + mpmath.log(a)) / (a - 1)

    lo, hi = mpmath.log(mpmath.mpf("1.0001")), mpmath.log(mpmath.mpf(10) ** 7)
    g = (mpmath.sqrt(5) - 1) / 2
    for _ in range(300):
        m1, m2 = hi - g * (hi - lo), lo + g * (hi - lo)
        if f(m1) < f(m2):
            hi = m2
        else:
            lo = m1
    return float(max(0, f((lo + hi) / 2)))


# -- the event ------------------------------------------------------------------------------------------

def test_event_is_frozen_canonical_and_round_trips():
    e = ApproximationEvent(2.5e-7, relation=REPLACE)
    assert e.to_json() == '{"delta":2.5e-07,"relation":"replace_one","type":"approximation"}'
    assert event_from_json(e.to_json()) == e and hash(e) == hash(ApproximationEvent(2.5e-7, relation=REPLACE))
    with pytest.raises(AttributeError):
        e.delta = 0.1  # type: ignore[misc]
    c = ComposedEvent((DiscreteGaussianEvent(3.0, 1.0), ApproximationEvent(1e-8)))
    assert event_from_json(c.to_json()) == c


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, 1.5, -1e-9, math.nan, math.inf])
def test_event_delta_is_validated(bad):
    with pytest.raises(ValueError, match="ApproximationEvent.delta"):
        ApproximationEvent(bad)


@pytest.mark.parametrize("bad", [True, "1e-9", None])
def test_event_delta_must_be_a_number(bad):
    with pytest.raises(TypeError, match="ApproximationEvent.delta"):
        ApproximationEvent(bad)


def test_event_adds_nothing_to_the_rdp_curve_and_its_delta_adds_up():
    dg = DiscreteGaussianEvent(5.0, 1.0)
    both = ComposedEvent((dg, ApproximationEvent(2.0 ** -30)))
    assert np.array_equal(event_rdp(both, DEFAULT_ORDERS), event_rdp(dg, DEFAULT_ORDERS))
    assert np.array_equal(event_rdp(ApproximationEvent(0.1), DEFAULT_ORDERS), np.zeros(len(DEFAULT_ORDERS)))
    assert event_rho(both) == 1 / 50 and event_rho(ApproximationEvent(0.1)) == 0.0
    assert event_delta(dg) == 0.0 and event_delta(both) == 2.0 ** -30
    # count·δ under self-composition, sums across composition (exact in binary here)
    many = ComposedEvent((SelfComposedEvent(both, 6), ApproximationEvent(2.0 ** -29), LaplaceEvent(3.0)))
    assert event_delta(many) == 8 * 2.0 ** -30
    # not binary fractions: the smallest float at or above the exact rational sum (a δ is never rounded down)
    odd = ComposedEvent((ApproximationEvent(0.1), ApproximationEvent(0.2), SelfComposedEvent(ApproximationEvent(0.1), 3)))
    exact = Fraction(0.1) * 4 + Fraction(0.2)
    got = event_delta(odd)
    assert Fraction(got) >= exact > Fraction(math.nextafter(got, 0.0))


# -- the accountant -------------------------------------------------------------------------------------

@pytest.mark.parametrize("row", params("zcdp_to_approxdp.csv"))
def test_epsilon_converts_the_rho_part_at_delta_minus_the_approximation_deltas(row):
    rho, delta = float(row["rho"]), float(row["delta"])
    thr = delta / 4
    acc = RDPAccountant().compose(ZCdpEvent(rho)).compose(ApproximationEvent(thr))
    assert acc.delta_spent == thr and acc.is_zcdp
    # ε at δ + δ_thr is the tight CKS ε of ρ at δ (third-party reference vector)
    assert rel(acc.get_epsilon(delta + thr), column(row, "eps_tight_reference")) < 1e-8
    assert rel(acc.get_delta(column(row, "eps_tight_reference")), delta + thr) < 1e-6


def test_discrete_gaussian_plus_threshold_delta_matches_the_closed_form():
    sigma, thr, delta = 4.0, 2.5e-7, 1e-6
    rho = 1 / (2 * sigma**2)
    acc = RDPAccountant().compose(ComposedEvent((DiscreteGaussianEvent(sigma, 1.0), ApproximationEvent(thr))))
    assert rel(acc.get_epsilon(delta), cks_epsilon(rho, delta - thr)) < 1e-9
    # three times, adaptively or not: 3ρ at δ − 3δ_thr
    acc.compose(ComposedEvent((DiscreteGaussianEvent(sigma, 1.0), ApproximationEvent(thr))), count=2)
    assert acc.delta_spent == 3 * thr
    assert rel(acc.get_epsilon(delta), cks_epsilon(3 * rho, delta - 3 * thr)) < 1e-9


def test_no_finite_epsilon_when_delta_is_already_spent():
    acc = RDPAccountant().compose(ZCdpEvent(0.1)).compose(ApproximationEvent(1e-6))
    assert acc.get_epsilon(1e-6) == math.inf and acc.get_epsilon(5e-7) == math.inf
    assert acc.get_delta(100.0) >= 1e-6


def test_curve_events_convert_on_the_grid_at_the_reduced_delta():
    lap = LaplaceEvent(2.0)
    with_thr = RDPAccountant().compose(ComposedEvent((lap, ApproximationEvent(1e-7))))
    without = RDPAccountant().compose(lap)
    assert with_thr.get_epsilon(1e-6) == without.get_epsilon(1e-6 - 1e-7)
    assert with_thr.get_delta(1.0) == pytest.approx(without.get_delta(1.0) + 1e-7, rel=1e-15)
    assert with_thr.get_delta(1.0) >= without.get_delta(1.0) + 1e-7


# -- the filter ------------------------------------------------------------------------------------------

def test_reserve_zero_is_exactly_the_old_filter():
    f = RenyiFilter(1.0, 1e-6)
    assert f.delta_reserve == 0.0 and f.conversion_delta == 1e-6
    assert f.budget == rdp_budget_at_order(f.order, 1.0, 1e-6)
    assert repr(f) == f"RenyiFilter(epsilon=1.0, delta=1e-06, order={f.order!r})"
    assert not f.admits_delta([], 1e-12)  # no reserve: any δ-cost is refused
    assert f.admits_delta([], 0.0)


def test_budget_is_computed_at_delta_minus_reserve():
    eps, delta, reserve = 1.0, 1e-6, 4e-7
    f = RenyiFilter(eps, delta, delta_reserve=reserve)
    # The filter admits exactly the ρ whose tight conversion at δ − reserve is ε (independent closed form).
    rho = f.remaining_rho([])
    assert rel(cks_epsilon(rho, delta - reserve), eps) < 1e-7
    assert f.remaining_rho([]) < RenyiFilter(eps, delta).remaining_rho([])
    assert f.epsilon_spent([f.budget]) == pytest.approx(eps, rel=1e-9)


def test_delta_costs_are_admitted_while_their_exact_sum_fits_the_reserve():
    delta, reserve, cost = 2.0 ** -20, 2.0 ** -21, 2.0 ** -23   # exact binary fractions: 4 fit
    f = RenyiFilter(1.0, delta, delta_reserve=reserve)
    spent: list[float] = []
    for _ in range(4):
        assert f.admits_delta(spent, cost)
        spent.append(cost)
    assert not f.admits_delta(spent, cost) and not f.admits_delta(spent, 2.0 ** -80)
    assert f.remaining_delta(spent) == 0.0 and f.remaining_delta(spent[:1]) == 3 * cost
    assert f.delta_cost(ComposedEvent((ZCdpEvent(0.1), ApproximationEvent(cost)))) == cost
    with pytest.raises(ValueError):
        f.admits_delta(spent, -1e-9)


@pytest.mark.parametrize("reserve", [1e-6, 2e-6, -1e-9, math.nan, True])
def test_reserve_must_be_below_delta(reserve):
    with pytest.raises(ValueError, match="delta_reserve"):
        RenyiFilter(1.0, 1e-6, delta_reserve=reserve)
