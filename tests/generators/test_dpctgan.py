"""DP-CTGAN: the charged plan, its calibration, the API and its errors."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accountant import PoissonSubsampledGaussianEvent, RDPAccountant
from accountant.conversions import rdp_budget_at_order
from accountant.events import GaussianEvent, NeighbouringRelation, event_from_json
from accountant.filter import RenyiFilter
from accountant.gate import BudgetExceeded, InvalidReceipt
from accountant.rdp import event_rdp
from dpsynth.generators import DPCTGAN
from dpsynth.generators.dpctgan import PlanError
from dpsynth.generators.dpctgan import model as model_module
from dpsynth.generators.dpctgan.conditional import ConditionalSampler
from dpsynth.generators.dpctgan.plan import make_plan
from dpsynth.generators.dpctgan.trainer import Networks, train
from dpsynth.nn import DiscriminatorSpec
from dpsynth.nn.layout import TableTransformer
from dpsynth.schema import Column, Schema
from dpsynth.table import PrivateTable

from .dpctgan_support import (TINY, exact_category_counts, ledger, ledger_entries, private_table,
                              small_frame, table_and_ledger)


class CountingTable(PrivateTable):
    """A private table that notes every measurement it answers (the public description only)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.answered: list = []

    def _observe(self, spec, receipt, answer, noise, output) -> None:
        self.answered.append(spec)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    table, tl = table_and_ledger(tmp_path_factory.mktemp("ledger"), epsilon=5.0, cls=CountingTable, seed=0)
    model = DPCTGAN(epsilon=4.0, seed=3, **TINY).fit(table)
    return model, table, tl


# -- the charge ----------------------------------------------------------------------------
def test_charged_event_equals_the_steps_run(fitted):
    model, table, _ = fitted
    plan = model.plan
    charged = PoissonSubsampledGaussianEvent(plan.sampling_rate, plan.noise_multiplier, plan.steps)
    dpsgd_charge = model.provenance.charges[-1]
    assert dpsgd_charge.event == charged.to_json()
    steps = [m for m in table.answered if m.kind == "dpsgd_step"]
    assert len(steps) == plan.steps == model.log.steps_done
    assert [m.query["step"] for m in steps] == list(range(plan.steps))
    # The session's release entry says how many steps left the table: all of them, no more.
    (release,) = [r for r in model.receipts if r.kind == "release" and r.refs == [dpsgd_charge.sequence]]
    assert release.parameters["steps_released"] == plan.steps
    # q comes from the public bound, not from the 60 rows in the table.
    assert plan.sampling_rate == 20 / 200
    assert plan.steps == 2 * math.ceil(200 / 20)


def test_the_ledger_holds_exactly_the_two_charges_and_they_fit_the_share(fitted):
    model, _, tl = fitted
    g = tl.gate
    costs = g.spent_costs()
    assert len(costs) == 2
    assert math.fsum(costs) <= rdp_budget_at_order(g.filter.order, 4.0, g.metadata.delta)
    assert [r.event for r in model.provenance.charges] == [model.plan.frequency_event.to_json(),
                                                           model.plan.dpsgd_event.to_json()]
    assert event_from_json(model.provenance.charges[0].event) == GaussianEvent(model.plan.frequency_noise_multiplier)


def test_the_fit_leaves_charge_release_open_release_seal_in_the_ledger(fitted):
    model, table, tl = fitted
    kinds = [r.kind for r in model.receipts]
    assert kinds == ["charge", "release", "charge", "open", "release", "seal"]
    counts_charge, _, sgd_charge, opened, sgd_release, seal = model.receipts
    assert model.receipts[1].refs == [counts_charge.sequence]
    assert opened.refs == sgd_release.refs == [sgd_charge.sequence]
    assert seal.refs == [counts_charge.sequence, sgd_charge.sequence]
    assert seal.commitment == model.state_digest()
    # The ledger file holds exactly these entries, and each receipt is one of them.
    entries = ledger_entries(tl)
    assert [e.entry_hash for e in entries] == [r.entry_hash for r in model.receipts]
    for r in model.receipts:
        tl.gate.verify_receipt(r)
    assert all(r.noise_source == "seeded-test" for r in model.receipts)
    assert list(table.receipts) == model.receipts[:-1]


@pytest.mark.parametrize("epsilon,batch,records,epochs", [
    (1.0, 500, 50_000, 3), (3.0, 256, 32_561, 5), (10.0, 100, 1_000, 20), (0.5, 50, 100_000, 1)])
def test_sigma_calibration_never_overshoots_and_is_tight(epsilon, batch, records, epochs):
    delta = 1e-6
    order = RenyiFilter(epsilon, delta).order
    plan = make_plan(epsilon=epsilon, delta=delta, order=order, max_records=records, epochs=epochs,
                     batch_size=batch, n_categorical_columns=4)
    budget = rdp_budget_at_order(order, epsilon, delta)
    assert plan.cost() <= budget
    # Tight: 0.1 % less noise would overshoot the share.
    looser = dataclasses.replace(plan, noise_multiplier=plan.noise_multiplier * 0.999)
    assert looser.cost() > budget
    # The split is as documented: 10 % of the RDP budget to the counts.
    freq = order / (2 * plan.frequency_noise_multiplier ** 2)
    assert freq == pytest.approx(0.1 * budget, rel=1e-9) and freq <= 0.1 * budget


@pytest.mark.parametrize("sigma,q,steps", [(1.0028282955680576, 0.01, 1000), (0.8, 0.05, 200), (2.5, 0.004, 5000)])
def test_charged_rdp_matches_opacus_own_accountant(sigma, q, steps):
    """Opacus' RDP analysis (a second implementation) agrees with what we charge."""
    from opacus.accountants import RDPAccountant as OpacusRDP
    from opacus.accountants.analysis.rdp import compute_rdp

    event = PoissonSubsampledGaussianEvent(q, sigma, steps)
    for order in (2.0, 8.92605959465929, 17.5, 32.0):
        ours = float(event_rdp(event, [order])[0])
        theirs = float(compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=[order])[0])
        assert ours == pytest.approx(theirs, rel=1e-6)
    acc = OpacusRDP()
    acc.history = [(sigma, q, steps)]
    eps_opacus = acc.get_epsilon(1e-6)
    eps_ours = RDPAccountant().compose(event).get_epsilon(1e-6)
    # Same conversion, our order grid is a superset of opacus' on [1.1, 63]: never worse, close.
    assert eps_ours <= eps_opacus * (1 + 1e-9)
    assert eps_ours == pytest.approx(eps_opacus, rel=0.03)


def test_a_plan_for_the_whole_budget_is_admitted_on_the_secure_source(tmp_path):
    table, tl = table_and_ledger(tmp_path, epsilon=2.0, seed=None)  # production noise: SecureRandomSource
    model = DPCTGAN(epsilon=2.0, seed=1, **TINY).fit(table)
    g = tl.gate
    assert g.filter.remaining(g.spent_costs()) <= 1e-9 * g.filter.budget
    assert model.provenance.charges[-1].epsilon_filter <= 2.0 + 1e-9
    assert {r.noise_source for r in model.receipts} == {"secure"}


def test_a_whole_budget_plan_reports_a_full_curve_epsilon_within_its_target():
    # Adult-like: 9 categorical columns, q = 0.01, 30 epochs, the whole ε = 1 (calibrated at
    # the filter's α*, off the plain grid: the grid alone gave 1.0000118).
    f = RenyiFilter(1.0, 1e-6)
    plan = make_plan(epsilon=1.0, delta=1e-6, order=f.order, max_records=50_000, epochs=30, batch_size=500,
                     n_categorical_columns=9)
    assert plan.epsilon_after(plan.steps) <= 1.0
    acc = RDPAccountant()  # the plain grid: looser here, and never below the plan's figure
    for e in plan.events:
        acc.compose(e)
    assert acc.get_epsilon(1e-6) >= plan.epsilon_after(plan.steps)


# -- bad parameters: refused before anything is written ------------------------------------
def _nothing_written(table, tl) -> None:
    assert ledger_entries(tl) == ()
    assert table.receipts == ()
    assert tl.gate.spent_costs() == []


def test_batch_larger_than_the_data_bound(tmp_path):
    table, tl = table_and_ledger(tmp_path, max_records=100)
    with pytest.raises(PlanError, match="max_records = 100"):
        DPCTGAN(epsilon=1.0, **{**TINY, "batch_size": 101}).fit(table)
    _nothing_written(table, tl)


def test_epsilon_above_what_remains_charges_nothing(tmp_path):
    table, tl = table_and_ledger(tmp_path, epsilon=1.0)
    with pytest.raises(BudgetExceeded, match="nothing was charged") as info:
        DPCTGAN(epsilon=2.0, **TINY).fit(table)
    _nothing_written(table, tl)
    # Issue 17: the refusal speaks the budget in words first (share used, what one more run
    # can have), as the gate's own refusals do; RDP only in the detail.
    message = str(info.value)
    assert message.index("0.0 % of the budget used (ε 1 at δ") < message.index("RDP")
    assert "one more MST, AIM or Independent run can still have ε 1 at this δ" in message


def test_epsilon_too_small_for_the_plan(tmp_path):
    table, tl = table_and_ledger(tmp_path, epsilon=1.0)
    with pytest.raises(PlanError, match="too small"):
        DPCTGAN(epsilon=1e-3, **TINY).fit(table)
    _nothing_written(table, tl)


def test_a_run_above_the_per_run_cap_charges_nothing(tmp_path):
    table, tl = table_and_ledger(tmp_path, epsilon=5.0, max_epsilon_per_run=1.0)
    with pytest.raises(PlanError, match="per-run cap") as info:
        DPCTGAN(epsilon=2.0, **TINY).fit(table)
    assert "at most epsilon 1 (max_epsilon_per_run)" in str(info.value)
    _nothing_written(table, tl)


@pytest.mark.parametrize("kwargs,match", [
    ({"epsilon": 0.0}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"), ({"epsilon": -1}, "epsilon"),
    ({"epsilon": 1.0, "generator_dims": ()}, "generator_dims"), ({"epsilon": 1.0, "embedding_dim": 0}, "embedding_dim"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPCTGAN(**kwargs)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"epochs": 0}, PlanError, "epochs"), ({"max_grad_norm": 0.0}, PlanError, "max_grad_norm"),
    ({"sampling_rate": 1.5}, PlanError, "sampling_rate"), ({"frequency_share": 1.0}, PlanError, "frequency_share"),
    ({"batch_size": 0}, PlanError, "batch_size"), ({"dropout": 1.0}, ValueError, "dropout"),
    ({"discriminator_dims": (16, 5000)}, ValueError, "hidden")])
def test_bad_plan_parameters_charge_nothing(tmp_path, kwargs, exc, match):
    table, tl = table_and_ledger(tmp_path)
    with pytest.raises(exc, match=match):
        DPCTGAN(epsilon=1.0, **{**TINY, **kwargs}).fit(table)
    _nothing_written(table, tl)


def test_replace_one_policies_are_refused_before_any_charge(tmp_path):
    table, tl = table_and_ledger(tmp_path, relation=NeighbouringRelation.REPLACE_ONE)
    with pytest.raises(PlanError, match="add/remove"):
        DPCTGAN(epsilon=1.0, **TINY).fit(table)
    _nothing_written(table, tl)


def test_fit_takes_only_a_private_table(tmp_path):
    frame = small_frame()
    with pytest.raises(TypeError, match="PrivateTable"):
        DPCTGAN(epsilon=1.0, **TINY).fit(frame)


def test_a_value_outside_the_schema_names_the_column_never_the_row_or_value(tmp_path):
    tl = ledger(tmp_path, small_frame())
    frame = small_frame()
    frame.loc[7, "colour"] = "secret-purple"
    with pytest.raises(ValueError, match=r"column 'colour'") as info:
        private_table(tl, frame)
    assert "secret-purple" not in str(info.value) and "7" not in str(info.value)
    assert ledger_entries(tl) == ()


def test_numeric_columns_need_public_bounds():
    with pytest.raises(ValueError, match="public bounds"):
        TableTransformer.from_schema([{"name": "x", "kind": "numeric"}])


def test_datetime_columns_map_to_seconds_by_their_public_bounds():
    col = Column("when", "datetime", lower="2020-01-01", upper="2020-01-11", bins=10, nullable=True)
    t = TableTransformer.from_schema([col])
    frame = pd.DataFrame({"when": ["2020-01-01", "2020-01-06T00:00:00", None, "2020-01-11"]})
    x = t.transform(frame)
    # 2020-01-06 is the midpoint of the public bounds: 0 on the [-1, 1] scale (hand-computed).
    np.testing.assert_allclose(x[:, 0], [-1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(x[:, 1:], [[1, 0], [1, 0], [0, 1], [1, 0]])
    back = t.inverse(x)["when"]
    assert list(back[[0, 1, 3]]) == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-01-06"),
                                     pd.Timestamp("2020-01-11")]
    assert pd.isna(back[2])
    # The layout runs inside the table: its errors name the column, never a row or the value.
    with pytest.raises(ValueError, match=r"column 'when': a value is not a date/time") as info:
        t.transform(pd.DataFrame({"when": ["someday"]}))
    assert "someday" not in str(info.value) and "row" not in str(info.value)
    assert TableTransformer.from_dict(t.to_dict()).columns == t.columns


def test_out_of_range_other_collects_undeclared_values_in_one_slot():
    from dpsynth.schema.decode import OTHER

    strict = TableTransformer.from_schema([Column("c", "categorical", categories=["a", "b"])])
    lenient = TableTransformer.from_schema([Column("c", "categorical", categories=["a", "b"],
                                                   out_of_range="other", nullable=True)])
    frame = pd.DataFrame({"c": ["a", "zebra", None, "b", "yak"]})
    with pytest.raises(ValueError, match=r"column 'c': a value is not one of the schema's categories") as info:
        strict.transform(frame.iloc[:2])
    assert "zebra" not in str(info.value)
    # Layout [a, b, other, missing]: both undeclared values land in "other".
    np.testing.assert_array_equal(lenient.transform(frame), [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                                             [0, 1, 0, 0], [0, 0, 1, 0]])
    assert list(lenient.inverse(lenient.transform(frame))["c"]) == ["a", OTHER, None, "b", OTHER]
    assert TableTransformer.from_dict(lenient.to_dict()).columns == lenient.columns


def test_training_needs_a_session_opened_for_exactly_the_plan(fitted, tmp_path):
    """The trainer refuses a DP-SGD session charged for another plan (here: one step fewer)
    or built for another network, before any step is taken."""
    model, _, _ = fitted
    plan = model.plan
    table, tl = table_and_ledger(tmp_path, epsilon=50.0)
    spec = DiscriminatorSpec(model.discriminator_dims, model.dropout)
    nets = Networks(model.generator, model.discriminator, model.embedding_dim)
    post = torch.Generator().manual_seed(0)
    kwargs = dict(post=post, device=torch.device("cpu"), generator_lr=1e-3, discriminator_lr=1e-3,
                  weight_decay=0.0, progress=False)
    shorter = table.dpsgd_session(discriminator=spec, conditioning=model.sampler.real_conditioning(),
                                  sampling_rate=plan.sampling_rate, noise_multiplier=plan.noise_multiplier,
                                  steps=plan.steps - 1, max_grad_norm=plan.max_grad_norm, purpose="test")
    with pytest.raises(RuntimeError, match="not opened for this plan"):
        train(nets, model.sampler, model.transformer, plan, shorter, **kwargs)
    assert shorter.steps_done == 0
    other_net = table.dpsgd_session(discriminator=DiscriminatorSpec((16, 16, 16), model.dropout),
                                    conditioning=model.sampler.real_conditioning(),
                                    sampling_rate=plan.sampling_rate, noise_multiplier=plan.noise_multiplier,
                                    steps=plan.steps, max_grad_norm=plan.max_grad_norm, purpose="test")
    with pytest.raises(RuntimeError, match="does not match"):
        train(nets, model.sampler, model.transformer, plan, other_net, **kwargs)
    assert other_net.steps_done == 0


# -- sampling ------------------------------------------------------------------------------
def test_sample_shape_and_schema(fitted):
    model, _, _ = fitted
    out = model.sample(50, seed=0)
    assert list(out.columns) == ["colour", "size", "flag", "count"]
    assert len(out) == 50
    assert set(out["colour"]) <= {"red", "green", "blue"}
    assert out["size"].between(0, 10).all()
    assert set(out["count"].dropna()) <= set(range(6))


def test_conditional_sample(fitted):
    model, _, _ = fitted
    out = model.sample(30, where={"colour": "blue"}, seed=1)
    assert (out["colour"] == "blue").all()
    with pytest.raises(KeyError, match="unknown column 'shape'"):
        model.sample(5, where={"shape": "round"})
    with pytest.raises(ValueError, match="numeric"):
        model.sample(5, where={"size": 3.0})
    with pytest.raises(ValueError, match="not a category"):
        model.sample(5, where={"colour": "purple"})


def test_sampling_is_reproducible_with_a_seed(fitted):
    model, _, _ = fitted
    pd.testing.assert_frame_equal(model.sample(20, seed=5), model.sample(20, seed=5))
    assert not model.sample(20, seed=5).equals(model.sample(20, seed=6))


# -- the sealed model: save, load, tampering -----------------------------------------------
def test_save_load_round_trip(fitted, tmp_path):
    model, _, tl = fitted
    path = tmp_path / "model.dpctgan"
    model.save(path)
    for trust in (tl.ledger_pub, tl.officer_pub):  # the ledger's key, or the officer who signed its genesis
        loaded = DPCTGAN.load(path, trust=trust, device="cpu")
        pd.testing.assert_frame_equal(model.sample(25, seed=9), loaded.sample(25, seed=9))
        loaded.verify(gate=tl.gate)
        assert loaded.plan == model.plan
        assert [r.entry_hash for r in loaded.receipts] == [r.entry_hash for r in model.receipts]
        assert loaded.state_digest() == model.state_digest() == model.receipts[-1].commitment


def test_load_trusts_no_key_from_the_file(fitted, tmp_path, monkeypatch):
    model, _, _ = fitted
    path = tmp_path / "model.dpctgan"
    model.save(path)
    monkeypatch.delenv("DPSYNTH_TRUST", raising=False)
    with pytest.raises(InvalidReceipt, match="no trusted key"):
        DPCTGAN.load(path, device="cpu")
    stranger = ledger(tmp_path / "other", small_frame(10, seed=1))
    for key in (stranger.ledger_pub, stranger.officer_pub):
        with pytest.raises(InvalidReceipt):
            DPCTGAN.load(path, trust=key, device="cpu")


def _rewrite(src, dst, *, meta=None, arrays=None) -> None:
    blob = torch.load(src, weights_only=True)
    if meta is not None:
        m = json.loads(blob["meta"])
        meta(m)
        blob["meta"] = json.dumps(m, sort_keys=True)
    if arrays is not None:
        arrays(blob["arrays"])
    torch.save(blob, dst)


def test_a_tampered_model_file_is_refused_on_load(fitted, tmp_path):
    model, _, tl = fitted
    path = tmp_path / "model.dpctgan"
    model.save(path)

    def edit_a_generator_weight(arrays):
        w = arrays["generator/out.weight"]
        w[0, 0] += 0.01

    def edit_the_noisy_counts(meta):
        meta["sampler"]["noisy_counts"][0][2] += 1.0  # "blue": absent from the data

    def claim_less_noise(meta):
        meta["plan"]["noise_multiplier"] *= 0.5

    def forge_a_signature(meta):
        receipts = meta["provenance"]["receipts"]
        receipts[-1]["signature"] = receipts[0]["signature"]

    def cheaper_event_in_a_receipt(meta):
        charge = meta["provenance"]["receipts"][2]
        event = json.loads(charge["event"])
        event["noise_multiplier"] *= 10
        charge["event"] = json.dumps(event)

    cases = [(dict(arrays=edit_a_generator_weight), "does not match its seal"),
             (dict(meta=edit_the_noisy_counts), "does not match its seal"),
             (dict(meta=claim_less_noise), "does not match its seal"),
             (dict(meta=forge_a_signature), "signature"),
             (dict(meta=cheaper_event_in_a_receipt), "do not hash")]
    for change, match in cases:
        name = next(iter(change.values())).__name__
        bad = tmp_path / f"{name}.dpctgan"
        _rewrite(path, bad, **change)
        with pytest.raises(InvalidReceipt, match=match):
            DPCTGAN.load(bad, trust=tl.ledger_pub, device="cpu")
    DPCTGAN.load(path, trust=tl.ledger_pub, device="cpu")  # the untouched file still loads


def test_sample_refuses_tampered_receipts(fitted):
    model, _, tl = fitted
    prov = model.provenance
    good = list(prov.receipts)
    try:
        prov.receipts = [*good[:-1], dataclasses.replace(good[-1], signature=good[0].signature)]
        with pytest.raises(InvalidReceipt, match="signature"):
            model.sample(3)
        cheaper = PoissonSubsampledGaussianEvent(model.plan.sampling_rate, model.plan.noise_multiplier * 10,
                                                 model.plan.steps)
        prov.receipts = [*good[:2], dataclasses.replace(good[2], event=cheaper.to_json()), *good[3:]]
        with pytest.raises(InvalidReceipt, match="do not hash"):
            model.sample(3)
        # Receipts dropped (the DP-SGD charge with its open and release; the counts' release):
        # the receipts are part of the sealed state.
        for kept in (good[:2], [good[0], *good[2:]]):
            prov.receipts = kept
            with pytest.raises(InvalidReceipt, match="does not match its seal"):
                model.sample(3)
    finally:
        prov.receipts = good
    model.sample(3, gate=tl.gate)


def test_a_model_whose_settings_change_after_the_fit_is_refused(fitted):
    model, _, _ = fitted
    plan = model.plan
    try:
        model.plan = dataclasses.replace(plan, noise_multiplier=plan.noise_multiplier * 2)
        with pytest.raises(InvalidReceipt, match="does not match its seal"):
            model.sample(3)
    finally:
        model.plan = plan
    model.sample(3)


def test_a_model_keeping_exact_counts_is_refused_although_sealed(tmp_path, monkeypatch):
    """A sampler that keeps the EXACT counts (instead of the released noisy ones) gets them
    sealed, but they are not what the ledger's release entry committed to."""
    frame = small_frame()
    exact = exact_category_counts(frame)

    class ExactSampler(ConditionalSampler):
        def __init__(self, blocks, noisy_counts, **kw):
            super().__init__(blocks, exact if len(noisy_counts) else noisy_counts, **kw)

    monkeypatch.setattr(model_module, "ConditionalSampler", ExactSampler)
    table, tl = table_and_ledger(tmp_path, frame, epsilon=5.0)
    model = DPCTGAN(epsilon=4.0, seed=3, **TINY).fit(table)
    assert model.receipts[-1].kind == "seal" and model.receipts[-1].commitment == model.state_digest()
    with pytest.raises(InvalidReceipt, match="release committed to"):
        model.sample(3)
    with pytest.raises(InvalidReceipt, match="release committed to"):
        model.save(tmp_path / "m.dpctgan")


def test_a_table_without_categorical_columns_spends_everything_on_dp_sgd(tmp_path):
    schema = Schema([Column("x", "numeric", lower=0, upper=1, bins=4)])
    frame = pd.DataFrame({"x": np.linspace(0, 1, 40)})
    table, tl = table_and_ledger(tmp_path, frame, schema, epsilon=2.0)
    model = DPCTGAN(epsilon=2.0, seed=0, **TINY).fit(table)
    assert [r.kind for r in model.receipts] == ["charge", "open", "release", "seal"]
    assert model.plan.frequency_noise_multiplier is None
    assert model.provenance.charges[0].event == model.plan.dpsgd_event.to_json()
    assert model.sample(10, seed=0)["x"].between(0, 1).all()


def test_device_auto_falls_back_to_cpu():
    model = DPCTGAN(epsilon=1.0, device="auto")
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_run_of_a_share_is_epsilon_dp_on_its_own_and_admitted(tmp_path):
    table, tl = table_and_ledger(tmp_path, epsilon=5.0)
    model = DPCTGAN(epsilon=1.0, seed=2, **TINY).fit(table)
    g = tl.gate
    # Independent of our calibration: the run's events, composed by the accountant's full curve.
    acc = RDPAccountant()
    for e in model.plan.events:
        acc.compose(e)
    assert acc.get_epsilon(1e-6) <= 1.0
    assert model.epsilon_spent() <= 1.0
    assert len(g.spent_costs()) == 2 and g.filter.epsilon_spent(g.spent_costs()) < 5.0
