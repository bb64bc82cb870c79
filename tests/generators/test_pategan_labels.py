"""PATE-GAN's label teachers (`target=`): the same charged GNMax queries on the same keyed
partitions, teachers that classify the target inside the table, and a labeller that learns only
from the released votes and draws the target at sampling time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from accountant.conversions import rdp_budget_at_order
from accountant.events import GNMaxEvent, event_from_json
from accountant.gate import InvalidReceipt
from dpsynth.generators import PATEGAN
from dpsynth.generators.dpctgan.plan import run_order
from dpsynth.generators.pategan.labeller import vote_shares
from dpsynth.generators.pategan.plan import PlanError, make_pate_plan
from dpsynth.nn import LabelTeacherSpec
from dpsynth.nn.label_teacher import LabelTeacherEnsemble
from dpsynth.table import AccessError
from dpsynth.testing.replay import record_and_replay

from .dpctgan_support import SCHEMA, ledger, ledger_entries, private_table, small_frame

TINY = dict(teachers=8, queries=96, queries_per_iteration=32, teacher_hidden=(8,), teacher_batch=16,
            teacher_steps=2, student_dims=(16,), student_steps=3, generator_dims=(16,), embedding_dim=8,
            generator_steps=3, batch_size=32, progress=False, device="cpu", target="colour", label_share=0.5)


def labelled_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """colour is a function of size (red below 5, green above): what the label teachers can learn."""
    frame = small_frame(n, seed=seed)
    frame["colour"] = np.where(frame["size"] < 5, "red", "green")
    return frame


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame = labelled_frame(320, seed=3)
    tl = ledger(tmp_path_factory.mktemp("pategan-labels"), frame, epsilon=70.0, max_records=400)
    table = private_table(tl, frame, seed=5)
    # A large ε so that the test reads the mechanism, not the noise: σ ≈ 2 on 16 votes.
    model = PATEGAN(epsilon=60.0, seed=7, **{**TINY, "teachers": 16}).fit(table)
    return model, tl


# -- the plan ------------------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon, teachers, queries, share", [(1.0, None, None, 0.5), (3.0, 333, None, 0.3),
                                                               (1.0, 100, 100, 0.5), (10.0, 200, 6400, 0.9)])
def test_the_label_share_splits_the_queries_and_never_overshoots(epsilon, teachers, queries, share):
    order = run_order(epsilon, 1e-6)
    plan = make_pate_plan(epsilon=epsilon, delta=1e-6, order=order, max_records=50_000, teachers=teachers,
                          queries=queries, n_categorical_columns=3, label_share=share)
    m = plan.queries_per_iteration
    disc = plan.queries - plan.label_queries
    assert disc == plan.iterations * m and disc >= m
    assert plan.label_queries >= math.floor(plan.queries * share)      # at least the share, plus what is left
    assert plan.label_queries < math.floor(plan.queries * share) + m   # ... of less than one iteration
    if queries is not None:
        assert plan.queries == queries
    # One event for every query, the labels' included (they are GNMax queries at the same σ).
    assert plan.gnmax_event == GNMaxEvent(plan.noise_multiplier, plan.queries)
    budget = rdp_budget_at_order(order, epsilon, 1e-6)
    counts = order / (2 * plan.frequency_noise_multiplier ** 2)   # closed forms, not the plan's own sum
    votes = order * plan.queries / plan.noise_multiplier ** 2
    assert counts + votes <= budget * (1 + 1e-12)
    assert votes <= budget - counts   # as the gate sees the second charge: no floating-point overshoot
    if teachers is None:  # the default k is raised so that the discriminator still gets 8 iterations
        assert plan.iterations >= 8


@pytest.mark.parametrize("share", [1.0, -0.1, float("nan"), True, "half"])
def test_a_bad_label_share_is_refused(share):
    with pytest.raises(PlanError, match="label_share"):
        make_pate_plan(epsilon=1.0, delta=1e-6, order=run_order(1.0, 1e-6), max_records=50_000,
                       n_categorical_columns=1, label_share=share)
    with pytest.raises(PlanError, match="label_share"):
        PATEGAN(epsilon=1.0, target="colour", label_share=share)


def test_a_label_share_that_leaves_no_iteration_is_refused():
    with pytest.raises(PlanError, match="no iteration to train"):
        make_pate_plan(epsilon=1.0, delta=1e-6, order=run_order(1.0, 1e-6), max_records=50_000, teachers=100,
                       queries=40, n_categorical_columns=1, label_share=0.5)


def test_a_target_without_label_queries_is_refused_before_any_charge(tmp_path):
    frame = labelled_frame(80)
    tl = ledger(tmp_path, frame, epsilon=8.0)
    # 64 queries at share 0.01: ⌊0.64⌋ = 0 label queries and two whole iterations — nothing to label with.
    with pytest.raises(PlanError, match="no label query"):
        PATEGAN(epsilon=4.0, **{**TINY, "queries": 64, "label_share": 0.01}).fit(private_table(tl, frame))
    assert ledger_entries(tl) == ()


@pytest.mark.parametrize("target", ["size", "nope", "count"])
def test_a_bad_target_is_refused_before_any_charge(tmp_path, target):
    frame = labelled_frame(80)
    tl = ledger(tmp_path, frame, epsilon=8.0)
    with pytest.raises(PlanError, match="target"):
        PATEGAN(epsilon=4.0, **{**TINY, "target": target}).fit(private_table(tl, frame))
    assert ledger_entries(tl) == ()
    with pytest.raises(TypeError, match="target"):
        PATEGAN(epsilon=4.0, target=["colour"])


# -- the charge and what is learned ----------------------------------------------------------------
def test_every_query_is_charged_once_and_the_labels_follow_the_features(fitted):
    model, tl = fitted
    plan = model.plan
    assert plan.label_queries > 0 and plan.iterations >= 1
    kinds = [e.kind for e in ledger_entries(tl)]
    assert kinds == ["charge", "release", "charge", "open", "release", "seal"]
    _, _, votes, _, released, _ = ledger_entries(tl)
    assert event_from_json(votes.event) == GNMaxEvent(plan.noise_multiplier, plan.queries)
    assert released.parameters["queries_released"] == plan.queries == model.log.queries_done
    rows = model.sample(3000, seed=1)
    small = rows["size"] < 5
    # colour = red exactly when size < 5 in the data; the labeller learned it from the votes alone
    # (a generator without label teachers draws colour nearly independently of size: gap ≈ 0).
    red_small, red_large = (rows.loc[small, "colour"] == "red").mean(), (rows.loc[~small, "colour"] == "red").mean()
    assert red_small > 0.6 and red_small - red_large > 0.4


def test_where_and_proportions_on_the_target_keep_the_labellers_relation(fitted):
    model, _ = fitted
    red = model.sample(200, where={"colour": "red"}, seed=2)
    assert len(red) == 200 and set(red["colour"]) == {"red"}
    everyone = model.sample(1000, seed=5)
    # Rows drawn given the label (P(features | red)), not the label overwritten on any row.
    assert (red["size"] < 5).mean() > (everyone["size"] < 5).mean() + 0.2
    mixed = model.sample(100, proportions={"colour": {"red": 0.25, "green": 0.75}}, seed=3)
    assert (mixed["colour"] == "red").sum() == 25 and (mixed["colour"] == "green").sum() == 75
    with pytest.raises(ValueError):
        model.sample(10, where={"colour": "purple"})
    from types import MappingProxyType

    frozen = model.sample(50, where=MappingProxyType({"colour": "red"}), seed=2)  # any mapping, same path
    assert set(frozen["colour"]) == {"red"}


def test_the_labeller_is_sealed_with_the_model(fitted, tmp_path):
    model, tl = fitted
    path = tmp_path / "m.pategan"
    model.save(path)
    loaded = PATEGAN.load(path, trust=tl.ledger_pub)
    pd.testing.assert_frame_equal(loaded.sample(50, seed=4), model.sample(50, seed=4))
    blob = torch.load(path, weights_only=True)
    arrays = dict(blob["arrays"])
    name = next(k for k in arrays if k.startswith("labeller/") and arrays[k].is_floating_point())
    arrays[name] = arrays[name] * -1.0      # flip what the labeller says
    torch.save({**blob, "arrays": arrays}, tmp_path / "flipped.pategan")
    with pytest.raises(InvalidReceipt, match="does not match its seal"):
        PATEGAN.load(tmp_path / "flipped.pategan", trust=tl.ledger_pub)
    dropped = {k: v for k, v in blob["arrays"].items() if not k.startswith("labeller/")}
    torch.save({**blob, "arrays": dropped}, tmp_path / "dropped.pategan")
    with pytest.raises((InvalidReceipt, ValueError), match="labeller|seal"):
        PATEGAN.load(tmp_path / "dropped.pategan", trust=tl.ledger_pub)


def test_record_and_replay_with_the_label_votes_frozen():
    """On every neighbour each query's exact histogram — discriminator and label votes alike —
    moves by at most Δ₂, and the released model and samples are identical with the votes frozen."""
    frame = labelled_frame(90, seed=6)
    report = record_and_replay(lambda: PATEGAN(epsilon=8.0, seed=3, **TINY), frame, SCHEMA, n_samples=40,
                               epsilon=20.0, max_records=200)
    assert report.ok
    for relation in ("add_or_remove_one", "replace_one"):
        kinds = [r.measurement.kind for r in report.records[relation]]
        assert kinds == ["category_counts_layout", "pate_votes", "pate_label_votes"]


# -- the label teachers and the session ---------------------------------------------------------------
def test_a_label_teacher_depends_on_its_own_partition_alone():
    g = torch.Generator().manual_seed(0)
    k, n, d = 4, 12, 5
    x = torch.rand(k, n, d, generator=g)
    y = torch.randint(0, 3, (k, n), generator=g)
    mask = torch.ones(k, n)
    mask[3] = 0.0  # teacher 3 has no record
    spec = LabelTeacherSpec(steps=30)
    a = LabelTeacherEnsemble(k, d, 3)
    a.fit(x, y, mask, spec)
    x2, y2 = x.clone(), y.clone()
    x2[1] = torch.rand(n, d, generator=g)
    y2[1] = (y2[1] + 1) % 3            # partition 1 changed entirely
    b = LabelTeacherEnsemble(k, d, 3)
    b.fit(x2, y2, mask, spec)
    for i in (0, 2, 3):
        assert torch.equal(a.weight[i], b.weight[i]) and torch.equal(a.bias[i], b.bias[i])
    assert not torch.equal(a.weight[1], b.weight[1])
    assert torch.count_nonzero(a.weight[3]) == 0 and torch.count_nonzero(a.bias[3]) == 0  # no data, no move


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(steps=True), dict(learning_rate=0.0),
                                    dict(l2=-1.0), dict(learning_rate=float("inf"))])
def test_a_bad_label_teacher_spec_is_refused(kwargs):
    with pytest.raises(ValueError):
        LabelTeacherSpec(**kwargs)


def test_the_session_refuses_label_votes_it_was_not_opened_for_or_did_not_pay_for(tmp_path):
    frame = labelled_frame(60)
    tl = ledger(tmp_path, frame, epsilon=50.0)
    table = private_table(tl, frame)
    with pytest.raises(ValueError, match="numeric"):
        table.pate_session(teachers=3, noise_multiplier=5.0, queries=10, purpose="t", label_column="size")
    with pytest.raises(KeyError):
        table.pate_session(teachers=3, noise_multiplier=5.0, queries=10, purpose="t", label_column="nope")

    class Sneaky(LabelTeacherSpec):
        pass

    with pytest.raises(TypeError, match="LabelTeacherSpec"):
        table.pate_session(teachers=3, noise_multiplier=5.0, queries=10, purpose="t", label_column="colour",
                           label_teacher=Sneaky())
    assert ledger_entries(tl) == ()  # every refusal above came before the charge
    plain = table.pate_session(teachers=3, noise_multiplier=5.0, queries=10, purpose="t")
    with pytest.raises(AccessError, match="without a label_column"):
        plain.label_votes(torch.rand(2, plain.layout.dim))
    plain.close()
    session = table.pate_session(teachers=3, noise_multiplier=5.0, queries=10, purpose="t", label_column="colour")
    votes = session.label_votes(torch.rand(6, session.layout.dim))
    a, b = session.label_block
    assert votes.shape == (6, b - a)
    with pytest.raises(AccessError, match="4 remain"):
        session.label_votes(torch.rand(5, session.layout.dim))
    session.votes(torch.rand(4, session.layout.dim))   # the same Q serves both kinds of query
    with pytest.raises(AccessError):
        session.label_votes(torch.rand(1, session.layout.dim))
    session.close()


def test_vote_shares_are_clipped_normalised_and_uniform_when_empty():
    shares = vote_shares(np.array([[3, 1], [-2, 4], [-1, -5]]))
    np.testing.assert_allclose(shares, [[0.75, 0.25], [0.0, 1.0], [0.5, 0.5]])


def test_the_canary_a_labeller_that_sees_real_labels_is_caught(monkeypatch):
    """A labeller that also fits the real rows' own labels (a teacher's data reaching the released
    model outside the votes) is caught by record-and-replay: with every vote frozen, its output
    differs on a neighbour."""
    from accountant.events import NeighbouringRelation
    from dpsynth.generators.pategan import model as model_module
    from dpsynth.generators.pategan import trainer as trainer_module

    honest = trainer_module.fit_labeller

    def leaky(nets, sampler, transformer, plan, session, **kw):
        labeller = honest(nets, sampler, transformer, plan, session, **kw)
        with session._table._open_rows(session.receipt) as rows:  # reaches inside: what the canary is about
            real = torch.as_tensor(np.asarray(transformer.transform(rows.frame), dtype=np.float32))
        a, b = labeller.block
        labeller.fit(real, real[:, a:b], steps=50)
        return labeller

    monkeypatch.setattr(model_module, "fit_labeller", leaky)
    frame = labelled_frame(90, seed=6)
    report = record_and_replay(lambda: PATEGAN(epsilon=8.0, seed=3, **TINY), frame, SCHEMA, n_samples=40,
                               epsilon=20.0, max_records=200, relations=(NeighbouringRelation.ADD_OR_REMOVE_ONE,),
                               raise_on_failure=False)
    assert "output" in report.checks_failed() or "uncharged" in report.checks_failed()
