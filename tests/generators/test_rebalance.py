"""Rebalancing by conditional sampling: exact shares, no charge, and hostile arguments refused.

Expected counts are computed here by hand (largest remainder of share × n), not read from
the code."""

from __future__ import annotations

import math

import pytest

from accountant.gate import InvalidReceipt
from accountant.testing import make_test_gate
from dpsynth.generators import MST
from dpsynth.generators.proportions import plan_shares

from .fairness_support import SCHEMA, rare_group_frame
from .marginal_support import seeded_table

VALUES = (["a", "b", "rare"], 0)


def _values(col):
    if col != "group":
        raise KeyError(f"proportions: unknown column {col!r}")
    return VALUES


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame = rare_group_frame()
    tl = make_test_gate(tmp_path_factory.mktemp("ledger"), epsilon=4.0, delta=1e-9, max_records=10**5, frame=frame)
    model = MST(epsilon=2.0, iters=200).fit(seeded_table(frame, SCHEMA, tl, seed=3))
    return frame, tl, model


def test_plan_counts_are_the_largest_remainder_and_sum_to_n():
    col, blocks = plan_shares(7, {"group": {"rare": 0.5}}, _values)
    # 3.5 rows of "rare", 3.5 of the rest: the tie goes to the earlier entry.
    assert col == "group" and [tuple(b) for b in blocks] == [((2,), 4), ((0, 1), 3)]
    _, blocks = plan_shares(10, {"group": {"a": 0.25, "b": 0.25, "rare": 0.5}}, _values)
    assert sorted((b.indices, b.rows) for b in blocks) == [((0,), 3), ((1,), 2), ((2,), 5)]
    # Exact for a huge n (rational arithmetic, no float rounding of n · share).
    n = 10**18 + 3
    _, blocks = plan_shares(n, {"group": {"rare": 1 / 3}}, _values)
    assert sum(b.rows for b in blocks) == n
    rare = next(b.rows for b in blocks if b.indices == (2,))
    assert abs(rare - n / 3) <= 1 + n * 2**-52  # 1/3 as a float, times n


@pytest.mark.parametrize("proportions, match", [
    ({"group": {"rare": -0.1}}, r"share of 'rare' in column 'group' must be in \[0, 1\]"),
    ({"group": {"rare": float("nan")}}, "'group' must be in"),
    ({"group": {"rare": float("inf")}}, "'group' must be in"),
    ({"group": {"rare": True}}, "must be a number"),
    ({"group": {"rare": "0.5"}}, "must be a number"),
    ({"group": {"a": 0.7, "rare": 0.6}}, "sum to 1.3 > 1"),
    ({"group": {"a": 0.2, "b": 0.2, "rare": 0.2}}, "every value of column 'group' is named"),
    ({"group": {"martian": 0.5}}, "'martian' is not a value of column 'group'"),
    ({"nope": {"x": 0.5}}, "unknown column 'nope'"),
    ({"group": {"rare": 0.5}, "y": {"yes": 0.5}}, "one column at a time"),
    ({"group": {}}, "non-empty"),
    ({}, "non-empty"),
    ([("group", {"rare": 0.5})], "mapping"),
])
def test_plan_refuses_hostile_proportions_naming_the_field(proportions, match):
    with pytest.raises((ValueError, TypeError, KeyError), match=match):
        plan_shares(100, proportions, _values)


@pytest.mark.parametrize("n", [-1, 1.5, True, "10"])
def test_plan_refuses_a_bad_n(n):
    with pytest.raises(ValueError, match="n must be an int"):
        plan_shares(n, {"group": {"rare": 0.5}}, _values)


def test_rare_group_of_18_rows_sampled_to_half_exactly_and_charges_nothing(fitted):
    frame, tl, model = fitted
    assert (frame["group"] == "rare").sum() == 18
    before = list(tl.gate.spent_costs())
    rows = model.sample(1001, proportions={"group": {"rare": 0.5}}, seed=1)
    assert len(rows) == 1001
    assert (rows["group"] == "rare").sum() == 501  # 500.5 rounds up (the tie goes to the named value)
    # The rest keep the model's own mix of a and b (both present), and the rows are shuffled.
    assert set(rows["group"]) == {"a", "b", "rare"}
    assert (rows["group"].iloc[:200] == "rare").mean() < 0.75
    rows = model.sample(400, proportions={"group": {"a": 0.1, "b": 0.1, "rare": 0.8}}, seed=2)
    assert rows["group"].value_counts().to_dict() == {"rare": 320, "a": 40, "b": 40}
    # Post-processing: the ledger is unchanged.
    assert tl.gate.spent_costs() == before


def test_rebalanced_rows_follow_the_models_conditional(fitted):
    """Rows of a value drawn by proportions have the law of rows drawn with where={col: value}."""
    _, _, model = fitted
    rows = model.sample(4000, proportions={"group": {"a": 0.5}}, seed=5)
    cond = model.sample(2000, where={"group": "a"}, seed=6)
    mine = rows[rows["group"] == "a"]["y"].eq("yes").mean()
    assert abs(mine - cond["y"].eq("yes").mean()) < 0.06


def test_proportions_refused_on_a_column_the_model_cannot_condition_on(fitted, tmp_path):
    _, _, model = fitted
    with pytest.raises(KeyError, match="unknown column 'income'"):
        model.sample(10, proportions={"income": {"high": 0.5}})
    with pytest.raises(ValueError, match="also fixed by where"):
        model.sample(10, where={"group": "a"}, proportions={"group": {"a": 0.5}})


def test_proportions_refused_on_a_model_whose_receipts_do_not_match(fitted):
    _, _, model = fitted
    import copy

    forged = copy.deepcopy(model)
    key = forged.model.cliques[0]
    forged.model.potentials[key].values.add_(0.5)
    with pytest.raises(InvalidReceipt):
        forged.sample(10, proportions={"group": {"rare": 0.5}})


def test_dpctgan_rebalances_through_its_conditional_vector(tmp_path):
    from dpsynth.generators import DPCTGAN

    from .dpctgan_support import TINY, table_and_ledger

    table, tl = table_and_ledger(tmp_path)
    model = DPCTGAN(epsilon=3.0, **TINY).fit(table)
    before = list(tl.gate.spent_costs())
    # "blue" never occurs in the data: it can still be sampled to any share (the model's guess).
    rows = model.sample(101, proportions={"colour": {"blue": 0.5}}, seed=0)
    assert (rows["colour"] == "blue").sum() == math.floor(50.5) + 1
    assert set(rows["colour"]) <= {"red", "green", "blue"}
    assert tl.gate.spent_costs() == before
    with pytest.raises(ValueError, match="column 'size' is numeric"):
        model.sample(10, proportions={"size": {1.0: 0.5}})
    with pytest.raises(ValueError, match="'purple' is not a value of column 'colour'"):
        model.sample(10, proportions={"colour": {"purple": 0.5}})
    with pytest.raises(ValueError, match="cannot be combined with where"):
        model.sample(10, where={"flag": True}, proportions={"colour": {"blue": 0.5}})
