"""Learning schema facts through the gate: quantiles, key discovery, rare categories."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pandas as pd
import pytest

from accountant.conversions import zcdp_rho
from accountant.events import (
    ApproximationEvent,
    ComposedEvent,
    DiscreteGaussianEvent,
    ExponentialMechanismEvent,
    NeighbouringRelation,
    event_from_json,
)
from accountant.gate import BudgetExceeded
from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.table.thresholds import discrete_gaussian_tail_bound, key_threshold

from .support import table


def _exact_tail(t: int, sigma: float) -> float:
    """P[Z >= t] for the discrete Gaussian, by direct summation in 50-digit arithmetic."""
    mpmath.mp.dps = 50
    s2 = mpmath.mpf(sigma) ** 2
    k_max = int(t + 60 * sigma + 60)
    w = lambda k: mpmath.e ** (-mpmath.mpf(k) ** 2 / (2 * s2))  # noqa: E731
    norm = w(0) + 2 * mpmath.fsum(w(k) for k in range(1, int(60 * sigma + 60)))
    return float(mpmath.fsum(w(k) for k in range(t, k_max)) / norm)


@pytest.mark.parametrize("sigma", [0.7, 3.0, 25.0])
@pytest.mark.parametrize("t", [0, 1, 4, 12, 80])
def test_tail_bound_is_an_upper_bound_and_tight(sigma, t):
    exact = _exact_tail(t, sigma)
    bound = discrete_gaussian_tail_bound(t, sigma)
    assert bound >= exact
    if exact > 1e-300:
        # The bound adds one term φ(t/σ)/σ to a continuous tail; within a factor 1 + 2/σ-ish + the
        # first term's weight — loose for tiny σ, but never absurd at the δ we use.
        assert bound <= exact * (3.0 + 2.5 * t / sigma) + 1e-300


@pytest.mark.parametrize("sigma, delta", [(1.0, 1e-6), (5.0, 1e-9), (40.0, 1e-12), (2.0, 0.05)])
def test_threshold_is_the_smallest_safe_one(sigma, delta):
    tau = key_threshold(sigma, delta)
    # a count-1 key survives iff Z >= tau - 1: exact probability <= delta ...
    assert _exact_tail(tau - 1, sigma) <= delta
    # ... and the bound says tau - 1 would not be safe (the calibration is not wasteful by more than 1)
    assert discrete_gaussian_tail_bound(tau - 2, sigma) > delta if tau >= 2 else True


def test_threshold_empirically(tmp_path):
    sigma, delta = 2.0, 0.05
    tau = key_threshold(sigma, delta)
    z = sample_discrete_gaussian(sigma, 200_000, SeededRandomSource(11))
    rate = float(np.mean(1 + z >= tau))
    assert rate <= delta  # exact value is below delta; 200k draws: sd ~ 5e-4
    assert rate > delta / 10


def test_key_discovery_keeps_common_keys_drops_singletons(tmp_path):
    n = 3000
    rng = np.random.default_rng(0)
    values = rng.choice(["a", "b", "c"], n).astype(object)
    values[:5] = ["solo-1", "solo-2", "solo-3", "solo-4", "solo-5"]  # each held by one record
    frame = pd.DataFrame({"k": values})
    schema = Schema([Column("k", "categorical")])
    t = table(tmp_path, frame, schema, epsilon=10.0, delta_reserve=1e-8)
    keys = t.discover_categories("k", 2.0, 1e-8, purpose="keys")
    assert keys == ("a", "b", "c")
    entry = t.gate._store.snapshot().entries[-2]
    assert t.gate._store.snapshot().entries[-1].kind == "release"
    sigma = 1.0 / math.sqrt(2 * zcdp_rho(2.0, 0.5e-8))
    # both parts charged: the discrete Gaussian's ρ and the threshold's δ/2 (from the reserve)
    assert event_from_json(entry.event) == ComposedEvent((DiscreteGaussianEvent(sigma, 1.0),
                                                          ApproximationEvent(0.5e-8)))
    assert t.gate.delta_spent() == 0.5e-8 and t.gate.remaining_delta() == 0.5e-8
    assert entry.parameters["threshold_delta"] == 0.5e-8
    assert entry.parameters["threshold"] == key_threshold(sigma, 0.5e-8)


def test_key_discovery_is_refused_without_a_delta_reserve(tmp_path):
    # the policy sets no budget.delta_reserve: the threshold's δ cannot be paid, nothing is charged
    frame = pd.DataFrame({"k": ["a"] * 50 + ["b"] * 50})
    t = table(tmp_path, frame, Schema([Column("k", "categorical")]), epsilon=10.0)
    with pytest.raises(BudgetExceeded, match="delta_reserve"):
        t.discover_categories("k", 2.0, 1e-8, purpose="keys")
    assert t.gate.spent_costs() == [] and list(t.receipts) == []


def test_key_discovery_is_refused_when_the_reserve_is_spent(tmp_path):
    frame = pd.DataFrame({"k": ["a"] * 50 + ["b"] * 50})
    t = table(tmp_path, frame, Schema([Column("k", "categorical")]), epsilon=10.0, delta_reserve=0.75e-8)
    t.discover_categories("k", 1.0, 1e-8, purpose="keys")      # δ/2 = 5e-9 of 7.5e-9
    with pytest.raises(BudgetExceeded, match="delta_reserve") as info:
        t.discover_categories("k", 1.0, 1e-8, purpose="keys")  # another 5e-9 does not fit
    assert info.value.delta_requested == 0.5e-8 and info.value.delta_reserve == 0.75e-8
    assert len(t.gate.spent_costs()) == 1


def test_key_discovery_threshold_delta_is_not_doubled_under_replace_one(tmp_path):
    # proofs/key_discovery.md: per ordered pair of neighbours one bad event of probability <= δ_thr
    frame = pd.DataFrame({"k": ["a"] * 50 + ["b"] * 50})
    t = table(tmp_path, frame, Schema([Column("k", "categorical")]), epsilon=10.0, delta_reserve=1e-8,
              relation=NeighbouringRelation.REPLACE_ONE)
    t.discover_categories("k", 2.0, 1e-8, purpose="keys")
    sigma = math.sqrt(2) / math.sqrt(2 * zcdp_rho(2.0, 0.5e-8))
    r = NeighbouringRelation.REPLACE_ONE
    assert event_from_json(t.charges[-1].event) == ComposedEvent((DiscreteGaussianEvent(sigma, math.sqrt(2), relation=r),
                                                                   ApproximationEvent(0.5e-8, relation=r)))


def test_key_discovery_needs_delta_below_the_policys(tmp_path):
    schema = Schema([Column("k", "categorical")])
    t = table(tmp_path, pd.DataFrame({"k": ["a", "b"]}), schema)
    with pytest.raises(ValueError, match="below the policy"):
        t.discover_categories("k", 1.0, 1e-3, purpose="keys")
    assert t.gate.spent_costs() == []


def test_quantiles_near_the_truth_on_a_public_grid(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(50, 10, 4000)
    frame = pd.DataFrame({"x": x})
    schema = Schema([Column("x", "numeric")])
    t = table(tmp_path, frame, schema, epsilon=50.0)
    got = t.quantiles("x", [0.1, 0.5, 0.9], 6.0, lower=0, upper=100, n_candidates=1001, purpose="q")
    want = np.quantile(x, [0.1, 0.5, 0.9])
    # ε/3 = 2 per quantile; rank error ~ 2 ln(1001)/2 ≈ 7 records of 4000: value error << 1
    assert np.all(np.abs(np.array(got) - want) < 1.0)
    assert set(got) <= set(np.linspace(0, 100, 1001).tolist())  # grid points only
    event = event_from_json(t.charges[-1].event)
    assert event == ComposedEvent((ExponentialMechanismEvent(2.0),) * 3)


def test_quantiles_need_a_public_grid(tmp_path):
    schema = Schema([Column("x", "numeric")])
    t = table(tmp_path, pd.DataFrame({"x": [1.0, 2.0]}), schema)
    with pytest.raises(ValueError, match="public candidate grid"):
        t.quantiles("x", [0.5], 1.0, purpose="q")
    with pytest.raises(ValueError):
        t.quantiles("x", [1.0], 1.0, lower=0, upper=3, purpose="q")
    assert t.gate.spent_costs() == []


def test_merge_rare_categories(tmp_path):
    values = ["a"] * 500 + ["b"] * 400 + ["c"] * 3 + ["d"] * 2
    frame = pd.DataFrame({"k": values})
    schema = Schema([Column("k", "categorical", categories=["a", "b", "c", "d", "e"])])
    t = table(tmp_path, frame, schema)
    col = t.merge_rare_categories("k", 1.0, 50, purpose="rare")
    assert col.categories == ("a", "b") and col.out_of_range == "other"
    assert t.schema.column("k") == col and t.domain == {"k": 3}
    assert event_from_json(t.charges[-1].event) == DiscreteGaussianEvent(1.0, 1.0)
    m = t.measure_marginals([("k",)], 0.5, purpose="m", generator="g", run_id="r")[0]
    assert abs(m.values[2] - 5) < 6  # "other" now holds c and d


def test_learn_schema_completes_and_charges_each_fact(tmp_path):
    rng = np.random.default_rng(2)
    n = 2000
    frame = pd.DataFrame({
        "city": rng.choice(["Paris", "Rome", "Oslo"], n),
        "age": rng.integers(18, 90, n),
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "flag": rng.random(n) < 0.5,
    })
    schema = Schema([Column("city", "categorical"), Column("age", "integer"), Column("when", "datetime"),
                     Column("flag", "boolean")])
    t = table(tmp_path, frame, schema, epsilon=200.0, delta_reserve=1e-7)
    learned = t.learn_schema(30.0, 1e-7, ranges={"age": (0, 120), "when": ("2019-01-01", "2022-01-01")}, bins=4)
    assert learned.is_complete and t.schema == learned
    assert learned.column("city").categories == ("Oslo", "Paris", "Rome")
    age = learned.column("age").edges
    assert 15 <= age[0] <= 25 and 80 <= age[-1] <= 92 and len(age) >= 4
    assert len(t.charges) == 3  # one per learned column; boolean needs nothing
    assert t.gate.delta_spent() == 0.5e-7  # the one categorical column's threshold δ/2
    purposes = [e.purpose for e in t.gate._store.snapshot().entries if e.kind == "charge"]
    assert purposes == ["learn schema: categories of city", "learn schema: bin edges of age",
                        "learn schema: bin edges of when"]
    # the learned schema encodes the data (clipping values beyond the learned edges)
    t.measure_marginals([("city", "age", "when")], 5.0, purpose="m", generator="g", run_id="r")


def test_schema_learning_is_a_purpose_the_policy_allows_and_is_refused_up_front_otherwise(tmp_path):
    """Issue 17: learning failed with "generator None is not allowed by the policy" under a
    policy listing its generators, and needed a hand-added delta_reserve discovered mid-way."""
    from accountant.errors import PolicyViolation

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"city": rng.choice(["Paris", "Rome"], 500), "age": rng.integers(18, 90, 500)})
    schema = Schema([Column("city", "categorical"), Column("age", "integer")])
    listed = table(tmp_path / "a", frame, schema, epsilon=10.0, delta_reserve=1e-7, generators=("mst",))
    with pytest.raises(PolicyViolation, match="adds 'schema' to the policy's generators; nothing was charged"):
        listed.learn_schema(2.0, 1e-7, ranges={"age": (0, 120)})
    assert not listed.charges
    no_reserve = table(tmp_path / "b", frame, schema, epsilon=10.0, generators=("mst", "schema"))
    with pytest.raises(PolicyViolation, match="no budget.delta_reserve.*nothing was charged"):
        no_reserve.learn_schema(2.0, 1e-7, ranges={"age": (0, 120)})
    assert not no_reserve.charges
    allowed = table(tmp_path / "c", frame, schema, epsilon=10.0, delta_reserve=1e-7, generators=("mst", "schema"))
    learned = allowed.learn_schema(4.0, 1e-7, ranges={"age": (0, 120)}, bins=4)
    assert learned.is_complete
    assert {e.generator for e in allowed.gate._store.snapshot().entries if e.kind == "charge"} == {"schema"}
