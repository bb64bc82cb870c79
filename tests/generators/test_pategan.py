"""PATE-GAN: the plan fixed and charged before any teacher trains, teachers inside the table on a
stable keyed partition, the student and generator on released votes only, sealed models."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accountant.conversions import rdp_budget_at_order
from accountant.events import GaussianEvent, GNMaxEvent, NeighbouringRelation, event_from_json
from accountant.gate import BudgetExceeded, InvalidReceipt
from dpsynth.generators import GENERATORS, PATEGAN
from dpsynth.generators.pategan.plan import MAX_UNANIMOUS_ERROR, PlanError, make_pate_plan, unanimous_error
from dpsynth.table.identity import record_keys
from dpsynth.testing.replay import record_and_replay

from .dpctgan_support import SCHEMA, ledger, ledger_entries, private_table, small_frame

TINY = dict(teachers=8, queries=64, queries_per_iteration=32, teacher_hidden=(8,), teacher_batch=16,
            teacher_steps=2, student_dims=(16,), student_steps=3, generator_dims=(16,), embedding_dim=8,
            generator_steps=3, batch_size=32, progress=False, device="cpu")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    frame = small_frame(120, seed=3)
    tl = ledger(tmp_path_factory.mktemp("pategan"), frame, epsilon=8.0)
    table = private_table(tl, frame, seed=5)
    model = PATEGAN(epsilon=6.0, seed=7, **TINY).fit(table)
    return model, tl, table


# -- the plan ------------------------------------------------------------------------------------
@pytest.mark.parametrize("epsilon, teachers, queries", [(0.5, 300, None), (1.0, 100, 320), (3.0, 333, None),
                                                        (10.0, 20, 6400), (1.0, 2, 32)])
def test_sigma_calibration_never_overshoots_and_is_tight(epsilon, teachers, queries):
    from dpsynth.generators.dpctgan.plan import run_order

    order = run_order(epsilon, 1e-6)
    try:
        plan = make_pate_plan(epsilon=epsilon, delta=1e-6, order=order, max_records=50_000, teachers=teachers,
                              queries=queries, n_categorical_columns=3)
    except PlanError:
        assert queries is not None and unanimous_error(teachers, math.sqrt(order * queries)) > 0  # refused as useless
        return
    budget = rdp_budget_at_order(order, epsilon, 1e-6)
    # The charged events' RDP at α_run, from the closed forms (independent of the plan's own sum):
    # α/(2z²) for the counts, α·Q/σ² for the votes.
    closed = order / (2 * plan.frequency_noise_multiplier ** 2) + order * plan.queries / plan.noise_multiplier ** 2
    assert closed <= budget * (1 + 1e-12)
    assert plan.cost() <= budget
    assert plan.cost() >= budget * (1 - 1e-9)  # nothing left on the table
    assert plan.queries % plan.queries_per_iteration == 0 and plan.iterations * 32 == plan.queries
    if queries is None:  # aimed at σ = k / label_noise: as many whole iterations of queries as that buys
        target = teachers / 3.0
        vote_budget = budget - order / (2 * plan.frequency_noise_multiplier ** 2)
        assert plan.queries == int(vote_budget * target ** 2 / order) // 32 * 32
        assert plan.noise_multiplier <= target * (1 + 1e-9)  # never noisier than aimed


def test_a_useless_plan_is_refused():
    from dpsynth.generators.dpctgan.plan import run_order

    with pytest.raises(PlanError, match="unanimous vote would come out wrong"):
        make_pate_plan(epsilon=0.1, delta=1e-6, order=run_order(0.1, 1e-6), max_records=50_000, teachers=10,
                       queries=3200, n_categorical_columns=1)
    with pytest.raises(PlanError, match="fewer than 32 label queries"):
        make_pate_plan(epsilon=0.05, delta=1e-6, order=run_order(0.05, 1e-6), max_records=50_000, teachers=5,
                       n_categorical_columns=0)
    with pytest.raises(PlanError, match="more than the data bound"):
        make_pate_plan(epsilon=1.0, delta=1e-6, order=run_order(1.0, 1e-6), max_records=50, teachers=60,
                       n_categorical_columns=0)
    with pytest.raises(PlanError, match="multiple of queries_per_iteration"):
        make_pate_plan(epsilon=1.0, delta=1e-6, order=run_order(1.0, 1e-6), max_records=500, teachers=5,
                       queries=33, n_categorical_columns=0)
    assert unanimous_error(10, 1e-3) == pytest.approx(0.0) and MAX_UNANIMOUS_ERROR < 0.5


def test_the_default_teachers_are_raised_until_the_plan_buys_enough_queries():
    from dpsynth.generators.dpctgan.plan import run_order
    from dpsynth.generators.pategan.plan import MIN_DEFAULT_ITERATIONS, default_teachers

    order = run_order(1.0, 1e-6)
    budget = rdp_budget_at_order(order, 1.0, 1e-6)

    def bought(plan_k):  # closed form, not the plan's helper: ⌊B_votes·(k/3)²/α⌋ in whole iterations
        probe = make_pate_plan(epsilon=1.0, delta=1e-6, order=order, max_records=10_000, teachers=plan_k,
                               queries=32, n_categorical_columns=2)
        vote_budget = budget - order / (2 * probe.frequency_noise_multiplier ** 2)
        return int(vote_budget * (plan_k / 3.0) ** 2 / order) // 32 * 32

    # 10,000 records -> 66 teachers by default, which buy fewer than 8 iterations at ε = 1 ...
    assert default_teachers(10_000) == 66 and bought(66) < MIN_DEFAULT_ITERATIONS * 32
    with pytest.raises(PlanError, match="fewer than 32 label queries"):
        make_pate_plan(epsilon=1.0, delta=1e-6, order=order, max_records=10_000, teachers=66, n_categorical_columns=2)
    # ... so the default plan takes the fewest teachers that do (a caller's own k is never changed).
    plan = make_pate_plan(epsilon=1.0, delta=1e-6, order=order, max_records=10_000, n_categorical_columns=2)
    assert plan.iterations >= MIN_DEFAULT_ITERATIONS and bought(plan.teachers) == plan.queries
    assert bought(plan.teachers - 1) < MIN_DEFAULT_ITERATIONS * 32
    assert plan.cost() <= budget
    # never below 10 records a teacher: a tiny bound keeps its ceiling and buys what it can (here nothing)
    with pytest.raises(PlanError, match="fewer than 32 label queries"):
        make_pate_plan(epsilon=1.0, delta=1e-6, order=order, max_records=200, n_categorical_columns=2)
    # a bound that already buys enough is left alone
    big = make_pate_plan(epsilon=1.0, delta=1e-6, order=order, max_records=150_000, n_categorical_columns=2)
    assert big.teachers == 1000


@pytest.mark.parametrize("kwargs, exc", [
    (dict(teachers=500), PlanError),                   # more teachers than the data bound (max_records 200)
    (dict(epsilon=0.05, teachers=3, queries=None), PlanError),   # ε too small for any useful label
    (dict(queries=33), PlanError),                     # not whole iterations
    (dict(epsilon=50.0), BudgetExceeded),              # more than the ledger holds
])
def test_bad_plans_are_refused_before_any_charge(tmp_path, kwargs, exc):
    frame = small_frame(80)
    tl = ledger(tmp_path, frame, epsilon=8.0)
    table = private_table(tl, frame)
    cfg = {**TINY, **kwargs}
    eps = cfg.pop("epsilon", 2.0)
    with pytest.raises(exc):
        PATEGAN(epsilon=eps, **cfg).fit(table)
    assert ledger_entries(tl) == ()  # nothing charged, nothing written
    with pytest.raises(ValueError):
        PATEGAN(epsilon=1.0, teacher_lr=2.0)
    with pytest.raises(ValueError):
        PATEGAN(epsilon=1.0, student_dims=())


# -- the charge --------------------------------------------------------------------------------
def test_the_charged_events_are_the_counts_and_every_query_asked(fitted):
    model, tl, _ = fitted
    plan = model.plan
    kinds = [e.kind for e in ledger_entries(tl)]
    assert kinds == ["charge", "release", "charge", "open", "release", "seal"]
    counts, _, votes, opened, released, seal = ledger_entries(tl)
    assert event_from_json(counts.event) == GaussianEvent(plan.frequency_noise_multiplier)
    assert event_from_json(votes.event) == GNMaxEvent(plan.noise_multiplier, plan.queries)
    assert plan.queries == TINY["queries"] and model.log.queries_done == plan.queries
    assert released.parameters["queries_released"] == plan.queries
    assert seal.refs == [counts.sequence, votes.sequence]
    # The whole plan is charged before any teacher trains: the open comes right after the charge.
    assert opened.refs == [votes.sequence] and opened.sequence == votes.sequence + 1
    assert model.epsilon_spent() <= 6.0 + 1e-9


def test_the_run_is_sealed_and_samples_conditionally(fitted, tmp_path):
    model, tl, _ = fitted
    rows = model.sample(40, seed=1)
    assert list(rows.columns) == list(SCHEMA.names) and len(rows) == 40
    blue = model.sample(25, where={"colour": "blue"}, seed=2)
    assert set(blue["colour"]) == {"blue"}
    path = tmp_path / "m.pategan"
    model.save(path)
    with pytest.raises(InvalidReceipt, match="no trusted key"):
        PATEGAN.load(path)
    loaded = GENERATORS["pategan"].load(path, trust=tl.officer_pub)
    pd.testing.assert_frame_equal(loaded.sample(30, seed=4), model.sample(30, seed=4))
    blob = torch.load(path, weights_only=True)
    arrays = dict(blob["arrays"])
    name = next(k for k in arrays if k.startswith("generator/") and arrays[k].is_floating_point())
    arrays[name] = arrays[name] + 0.01
    torch.save({**blob, "arrays": arrays}, tmp_path / "edited.pategan")
    with pytest.raises(InvalidReceipt, match="does not match its seal"):
        PATEGAN.load(tmp_path / "edited.pategan", trust=tl.ledger_pub)
    meta = json.loads(blob["meta"])
    meta["sampler"]["noisy_counts"][0][0] += 100.0  # claim other category counts than were released
    torch.save({**blob, "meta": json.dumps(meta)}, tmp_path / "counts.pategan")
    with pytest.raises(InvalidReceipt):
        PATEGAN.load(tmp_path / "counts.pategan", trust=tl.ledger_pub)


def test_the_progress_bar_shows_epsilon_so_far(tmp_path, capsys):
    frame = small_frame(60)
    tl = ledger(tmp_path, frame, epsilon=8.0)
    PATEGAN(epsilon=4.0, **{**TINY, "progress": True}).fit(private_table(tl, frame))
    err = capsys.readouterr().err
    assert "PATE-GAN" in err and "eps=" in err


def test_only_a_private_table_is_accepted(tmp_path):
    with pytest.raises(TypeError, match="PrivateTable"):
        PATEGAN(epsilon=1.0, **TINY).fit(small_frame(20))


# -- teachers: one stable partition for the whole run ------------------------------------------------
def test_each_record_is_one_teachers_for_the_whole_run_and_a_neighbour_moves_one_teacher():
    frame = pd.concat([small_frame(300, seed=4), small_frame(1, seed=8), small_frame(1, seed=8),
                       small_frame(1, seed=8)], ignore_index=True)  # one record with three identical copies
    key = b"k" * 32
    k = 7
    keys = record_keys(frame, key)
    teacher = keys % np.uint64(k)

    def partitions(f):
        ks = record_keys(f, key)
        return {i: sorted(ks[ks % np.uint64(k) == i].tolist()) for i in range(k)}  # canonical order: by key

    base = partitions(frame)
    assert sum(len(v) for v in base.values()) == len(frame)  # each record in exactly one partition
    assert len(set(keys.tolist())) == len(frame)
    for drop in (0, 150, len(frame) - 1, len(frame) - 3):  # a unique record, or one of three copies
        smaller = partitions(frame.drop(index=drop).sample(frac=1, random_state=drop).reset_index(drop=True))
        changed = [i for i in range(k) if smaller[i] != base[i]]
        assert len(changed) == 1
        # ... and only by one key: the rest of that teacher's data and its order are unchanged.
        (i,) = changed
        assert len(base[i]) - len(smaller[i]) == 1 and set(smaller[i]) < set(base[i])
    assert int(teacher[0]) in range(k)


def test_record_and_replay_with_the_votes_frozen():
    """On every neighbour (add, remove, replace) each query's exact vote histogram moves by at most
    Δ₂ (one teacher, or two under replace-one) and the released generator and samples are
    byte-identical with the noisy votes frozen."""
    frame = small_frame(90, seed=6)
    report = record_and_replay(lambda: PATEGAN(epsilon=8.0, seed=3, **TINY), frame, SCHEMA, n_samples=40,
                               epsilon=20.0, max_records=200)
    assert report.ok
    for relation in ("add_or_remove_one", "replace_one"):
        kinds = [r.measurement.kind for r in report.records[relation]]
        assert kinds == ["category_counts_layout", "pate_votes", "pate_votes"]


def test_the_canary_a_student_that_sees_real_rows_is_caught(tmp_path, monkeypatch):
    """A PATE-GAN whose student also learns from the real rows (a bug of public PATE-GANs) is
    caught by record-and-replay: its output differs on a neighbour with every vote frozen."""
    from dpsynth.generators.pategan import trainer as trainer_module

    original = trainer_module.train

    def leaky_train(nets, sampler, transformer, plan, session, **kw):
        table = session._table
        with table._open_rows(session.receipt) as rows:  # reaches inside: what the canary is about
            real = torch.as_tensor(transformer.transform(rows.frame))
        opt = torch.optim.Adam(nets.generator.parameters(), lr=0.05)
        for _ in range(5):  # pull the generator's output towards the real rows' mean
            z = torch.zeros(8, nets.embedding_dim + sampler.dim)
            loss = ((nets.generator(z).mean(0)[: real.shape[1]] - real.mean(0)) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return original(nets, sampler, transformer, plan, session, **kw)

    monkeypatch.setattr(trainer_module, "train", leaky_train)
    from dpsynth.generators.pategan import model as model_module

    monkeypatch.setattr(model_module, "train", leaky_train)
    frame = small_frame(90, seed=6)
    report = record_and_replay(lambda: PATEGAN(epsilon=8.0, seed=3, **TINY), frame, SCHEMA, n_samples=40,
                               epsilon=20.0, max_records=200, relations=(NeighbouringRelation.ADD_OR_REMOVE_ONE,),
                               raise_on_failure=False)
    assert "output" in report.checks_failed() or "uncharged" in report.checks_failed()
