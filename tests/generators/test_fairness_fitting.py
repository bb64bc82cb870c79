"""Fairness-aware fitting: MST's required and forbidden edges, AIM's favoured columns.

Both are public choices made before any measurement: validated before any charge, and they
leave the run's charged ε unchanged (checked with the closed forms, not the accountant)."""

from __future__ import annotations

import json
import math

import pytest

from accountant.conversions import zcdp_rho
from accountant.testing import make_test_gate
from dpsynth.generators import AIM, MST
from dpsynth.generators.marginal.workload import candidate_weights, favoured_workload

from .fairness_support import SCHEMA, rare_group_frame
from .marginal_support import seeded_table


def _rho(event: dict) -> float:
    kind = event["type"]
    if kind == "composed":
        return math.fsum(_rho(e) for e in event["events"])
    if kind == "self_composed":
        return event["count"] * _rho(event["event"])
    if kind == "discrete_gaussian":
        return event["l2_sensitivity"] ** 2 / (2 * event["sigma"] ** 2)
    if kind == "exponential_mechanism":
        return event["epsilon"] ** 2 / 8
    raise AssertionError(kind)


def _events(model) -> list[dict]:
    return [json.loads(r.event) for r in model.receipts if r.kind == "charge"]


def _table(tmp_path, epsilon=4.0, seed=0):
    frame = rare_group_frame()
    tl = make_test_gate(tmp_path, epsilon=epsilon, delta=1e-9, max_records=10**5, frame=frame)
    return seeded_table(frame, SCHEMA, tl, seed=seed), tl


def _tree(model) -> set[frozenset]:
    return {frozenset(e) for e in model.fit_log["edges"]}


def test_mst_required_edges_are_in_the_tree_and_forbidden_never(tmp_path):
    for seed in range(3):
        table, _ = _table(tmp_path / str(seed), seed=seed)
        mst = MST(epsilon=1.0, iters=100, required_edges=[("group", "z")],
                  forbidden_edges=[("group", "y"), ("y", "x")]).fit(table)
        tree = _tree(mst)
        assert frozenset(("group", "z")) in tree
        assert frozenset(("group", "y")) not in tree and frozenset(("y", "x")) not in tree
        assert len(tree) == 3  # still a spanning tree of 4 columns
        # One private draw fewer (the required edge is not selected); the grant spent exactly.
        kinds = [e["type"] for e in _events(mst)]
        assert kinds == ["composed", "exponential_mechanism", "exponential_mechanism", "composed"]
        assert math.fsum(_rho(e) for e in _events(mst)) == pytest.approx(zcdp_rho(1.0, 1e-9), rel=1e-9)
        # The 2-way measurements hold the required edge.
        assert ["group", "z"] in [list(e) for e in mst.fit_log["edges"]]


def test_mst_forbidding_every_edge_of_a_column_gives_a_forest(tmp_path):
    table, _ = _table(tmp_path)
    mst = MST(epsilon=1.0, iters=100, forbidden_edges=[("z", "group"), ("z", "y"), ("z", "x")]).fit(table)
    assert all("z" not in e for e in _tree(mst)) and len(_tree(mst)) == 2
    assert math.fsum(_rho(e) for e in _events(mst)) <= zcdp_rho(1.0, 1e-9) * (1 + 1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(required_edges=[("group", "nope")]), "required_edges: unknown column 'nope'"),
    (dict(forbidden_edges=[("nope", "y")]), "forbidden_edges: unknown column 'nope'"),
    (dict(required_edges=[("group", "y"), ("y", "x"), ("x", "group")]), "closes a cycle"),
])
def test_mst_bad_edges_are_refused_before_any_charge(tmp_path, kwargs, match):
    table, tl = _table(tmp_path)
    with pytest.raises(ValueError, match=match):
        MST(epsilon=1.0, **kwargs).fit(table)
    assert tl.gate.spent_costs() == []


@pytest.mark.parametrize("kwargs, match", [
    (dict(required_edges=[("group", "y")], forbidden_edges=[("y", "group")]), "both required and forbidden"),
    (dict(required_edges=[("group", "group")]), "joins a column to itself"),
    (dict(required_edges=["group"]), "pair of column names"),
    (dict(required_edges="group"), "list of"),
])
def test_mst_bad_edge_arguments_are_refused_at_construction(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        MST(epsilon=1.0, **kwargs)


def test_favoured_workload_multiplies_by_the_factor_per_favoured_column():
    w = {("a", "b"): 1.0, ("a", "s"): 1.0, ("s", "y"): 2.0}
    assert favoured_workload(w, ["s", "y"], 3.0) == {("a", "b"): 1.0, ("a", "s"): 3.0, ("s", "y"): 18.0}
    # Candidate weights by hand: ("s",) informs (a, s) and (s, y): 3·1 + 18·1 = 21.
    assert candidate_weights(favoured_workload(w, ["s", "y"], 3.0))[("s",)] == 21.0


def test_aim_favour_keeps_the_charged_epsilon_and_scales_the_score_sensitivity(tmp_path, monkeypatch):
    from dpsynth.noise import exponential_mechanism

    seen = []
    real_sampler = exponential_mechanism.sample_exponential_mechanism

    def spy(scores, epsilon, sensitivity, source):
        seen.append(sensitivity)  # what the exact sampler is given as the score's sensitivity
        return real_sampler(scores, epsilon, sensitivity, source)

    monkeypatch.setattr(exponential_mechanism, "sample_exponential_mechanism", spy)
    common = dict(epsilon=1.0, degree=2, rounds=8, iters=30, final_iters=60, max_model_size=1.0)
    plain = AIM(**common).fit(_table(tmp_path / "p")[0])
    plain_max = seen[:]
    seen.clear()
    fair = AIM(**common, favour=["group", "y"], favour_weight=4.0).fit(_table(tmp_path / "f")[0])
    grant = zcdp_rho(1.0, 1e-9)
    for model in (plain, fair):
        assert math.fsum(_rho(e) for e in _events(model)) == pytest.approx(grant, rel=1e-8)
    # The sampler's score sensitivity is the largest candidate weight (proofs/aim.md), by hand:
    # Σ_W w_W·|c ∩ W| over the 2-way workload of 4 columns.  Plain: a pair shares 2 columns
    # with itself and 1 with each of the 4 pairs touching it → 6.  Favoured (group, y; factor
    # 4: weight 16 for (group, y), 4 for the four pairs holding one of them, 1 for (x, z)):
    # ("group", "y") gets 16·2 + 4·4 = 48, the largest.
    assert set(plain_max) == {6.0} and set(seen) == {48.0}
    # ... and the ε charged per selection is the same as the plain run's (sensitivity scales
    # the scores, not the ε).
    em_plain = [e["epsilon"] for e in _events(plain) if e["type"] == "exponential_mechanism"]
    em_fair = [e["epsilon"] for e in _events(fair) if e["type"] == "exponential_mechanism"]
    assert em_plain[0] == pytest.approx(em_fair[0])


def test_aim_favour_validated_before_any_charge(tmp_path):
    table, tl = _table(tmp_path)
    with pytest.raises(ValueError, match="favour: unknown column 'nope'"):
        AIM(epsilon=1.0, favour=["nope"]).fit(table)
    assert tl.gate.spent_costs() == []
    with pytest.raises(ValueError, match="favour_weight"):
        AIM(epsilon=1.0, favour=["group"], favour_weight=float("nan"))
    with pytest.raises(TypeError, match="favour"):
        AIM(epsilon=1.0, favour="group")


def test_declared_edges_and_favour_survive_save_load_and_rederive(tmp_path):
    table, tl = _table(tmp_path)
    mst = MST(epsilon=1.0, iters=100, required_edges=[("group", "z")], forbidden_edges=[("group", "y")]).fit(table)
    mst.save(tmp_path / "mst.pt")
    again = MST.load(tmp_path / "mst.pt", trust=tl.ledger_pub)
    assert again.required_edges == [("group", "z")] and again.forbidden_edges == [("group", "y")]
    assert "the same model" in again.rederive()
    aim = AIM(epsilon=1.0, degree=2, rounds=8, iters=30, final_iters=60, max_model_size=1.0,
              favour=["group"], favour_weight=2.0).fit(_table(tmp_path / "a")[0])
    assert "the same model" in aim.rederive()
    # A model saved before the options existed has no such keys: its config (and seal) is unchanged.
    assert "required_edges" not in MST(epsilon=1.0).config() and "favour" not in AIM(epsilon=1.0).config()
