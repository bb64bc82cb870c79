"""The fairness benchmark's harness: its measures and its rebalancing recipe, without a fit.

Fast: hand-made arrays and a stub model; the figures are checked against closed forms and
counts done by hand, not against the harness's own output.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fairness.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("fairness_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_wilson_interval_matches_the_closed_form(bench):
    # 5 of 10: the textbook Wilson interval is [0.2366, 0.7634]; 0 of 19: [0, 0.1682].
    lo, hi = bench.wilson(0.5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    lo, hi = bench.wilson(0.0, 19)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.1682, abs=1e-4)


def test_per_group_rates_and_dp_difference_by_hand(bench):
    truth = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    pred = np.array([1, 0, 1, 0, 1, 1, 0, 0], dtype=bool)
    groups = np.array(["a", "a", "a", "a", "b", "b", "b", "b"])
    rates = bench._rates(truth, pred, groups)
    # a: positives 2, one found; negatives 2, one flagged; 2 of 4 predicted positive.
    assert rates["a"] == {"n_test": 4, "positives": 2, "recall": 0.5, "fpr": 0.5, "selection_rate": 0.5}
    # b: 1 positive found; 1 of 3 negatives flagged; 2 of 4 predicted positive.
    assert rates["b"]["recall"] == 1.0 and rates["b"]["fpr"] == pytest.approx(1 / 3)
    pred2 = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    assert bench._dp(pred2, groups) == pytest.approx(0.75 - 0.25)
    assert bench._dp(pred2, groups, keep=("b",)) == 0.0


def test_the_sy_workload_holds_2_ways_and_the_group_target_cliques(bench):
    attrs = ["age", "race", "sex", "income", "edu"]
    w = bench.sy_workload(attrs)
    assert set(w.values()) == {1.0}
    threes = {c for c in w if len(c) == 3}
    # (S, Y, X) for S in {sex, race}, X every other column (the other sensitive one included).
    assert threes == {("age", "race", "income"), ("race", "income", "edu"), ("race", "sex", "income"),
                      ("age", "sex", "income"), ("sex", "income", "edu")}
    assert len([c for c in w if len(c) == 2]) == 10  # C(5, 2); (S, Y) are among them
    s3 = bench.s3_workload(attrs)
    assert all(set(c) & {"sex", "race"} for c in s3 if len(c) == 3)
    assert len([c for c in s3 if len(c) == 3]) == 10 - 1  # C(5,3) less the one without sex or race


class _Stub:
    """A model whose conditional draws are exact: each row holds the `where` value and the
    first round(rate·k) rows the positive class."""

    def __init__(self):
        self.calls = []

    def sample(self, k, *, seed, where, proportions):
        self.calls.append((k, dict(where), proportions))
        (col, value), = where.items()
        rate = proportions["income"][">50K"]
        pos = round(rate * k)
        return pd.DataFrame({col: [value] * k, "income": [">50K"] * pos + ["<=50K"] * (k - pos)})


def test_label_rebalancing_puts_every_group_at_parity_with_the_given_rate(bench):
    stub = _Stub()
    frame = bench.label_rebalanced(stub, 1003, "race", 0.25, seed=0)
    assert len(frame) == 1003
    counts = frame["race"].value_counts()
    assert sorted(counts.to_list()) == [200, 200, 201, 201, 201]
    assert set(counts.index) == set(bench.GROUPS["race"])
    # Each block asked for the same rate of >50K on its own group, and nothing else.
    assert {c[1]["race"] for c in stub.calls} == set(bench.GROUPS["race"])
    assert all(c[2] == {"income": {">50K": 0.25}} for c in stub.calls)
    for g, rows in frame.groupby("race"):
        assert (rows["income"] == ">50K").sum() == round(0.25 * len(rows))


def test_mean_and_spread_over_seeds(bench):
    assert bench.ms([0.1, 0.3]) == "0.200 ± 0.141 (2)"
    assert bench.ms([0.1]) == "0.100 (1)"
    assert bench.ms([float("nan")]) == "–"
