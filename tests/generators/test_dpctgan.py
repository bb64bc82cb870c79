"""DP-CTGAN: the charged plan, its calibration, the API and its errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from accountant import PoissonSubsampledGaussianEvent, RDPAccountant
from accountant.conversions import rdp_budget_at_order
from accountant.events import NeighbouringRelation
from accountant.filter import RenyiFilter
from accountant.gate import BudgetExceeded, InvalidReceipt
from accountant.rdp import event_rdp
from dpsynth.generators import DPCTGAN
from dpsynth.generators.dpctgan import PlanError
from dpsynth.generators.dpctgan.access import AccessError, FrameAccess
from dpsynth.generators.dpctgan.plan import make_plan
from dpsynth.generators.dpctgan.transformer import TableTransformer

from .dpctgan_support import SCHEMA, TINY, gate, small_frame


class CountingAccess(FrameAccess):
    """Counts the Poisson samples actually drawn."""

    drawn = 0

    def poisson_batches(self, *args, **kwargs):
        for item in super().poisson_batches(*args, **kwargs):
            self.drawn += 1
            yield item


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    g = gate(tmp_path_factory.mktemp("ledger"), epsilon=5.0)
    access = CountingAccess(small_frame(), SCHEMA)
    model = DPCTGAN(epsilon=4.0, seed=3, **TINY).fit(access, g)
    return model, access, g


# -- the charge ----------------------------------------------------------------------------
def test_charged_event_equals_the_steps_run(fitted):
    model, access, g = fitted
    plan = model.plan
    charged = PoissonSubsampledGaussianEvent(plan.sampling_rate, plan.noise_multiplier, plan.steps)
    assert model.receipts[-1].event == charged.to_json()
    assert access.drawn == plan.steps == model.log.steps_done
    # q comes from the public bound, not from the 60 rows in the table.
    assert plan.sampling_rate == 20 / 200
    assert plan.steps == 2 * math.ceil(200 / 20)


def test_the_ledger_holds_exactly_the_two_charges_and_they_fit_the_share(fitted):
    model, _, g = fitted
    costs = g.spent_costs()
    assert len(costs) == 2
    assert math.fsum(costs) <= rdp_budget_at_order(g.filter.order, 4.0, g.metadata.delta)
    assert [r.event for r in model.receipts] == [model.plan.frequency_event.to_json(),
                                                 model.plan.dpsgd_event.to_json()]


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


def test_a_plan_for_the_whole_budget_is_admitted(tmp_path):
    g = gate(tmp_path, epsilon=2.0)
    model = DPCTGAN(epsilon=2.0, seed=1, **TINY).fit(FrameAccess(small_frame(), SCHEMA), g)
    assert g.filter.remaining(g.spent_costs()) <= 1e-9 * g.filter.budget
    assert model.receipts[-1].epsilon_filter <= 2.0 + 1e-9


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


# -- bad parameters ------------------------------------------------------------------------
def test_batch_larger_than_the_data_bound(tmp_path):
    g = gate(tmp_path, max_records=100)
    with pytest.raises(PlanError, match="max_records = 100"):
        DPCTGAN(epsilon=1.0, **{**TINY, "batch_size": 101}).fit(FrameAccess(small_frame(), SCHEMA), g)
    assert g.spent_costs() == []


def test_epsilon_above_what_remains_charges_nothing(tmp_path):
    g = gate(tmp_path, epsilon=1.0)
    with pytest.raises(BudgetExceeded, match="nothing was charged"):
        DPCTGAN(epsilon=2.0, **TINY).fit(FrameAccess(small_frame(), SCHEMA), g)
    assert g.spent_costs() == []


def test_epsilon_too_small_for_the_plan(tmp_path):
    g = gate(tmp_path, epsilon=1.0)
    with pytest.raises(PlanError, match="too small"):
        DPCTGAN(epsilon=1e-3, **TINY).fit(FrameAccess(small_frame(), SCHEMA), g)
    assert g.spent_costs() == []


@pytest.mark.parametrize("kwargs,match", [
    ({"epsilon": 0.0}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"), ({"epsilon": -1}, "epsilon"),
    ({"epsilon": 1.0, "generator_dims": ()}, "generator_dims"), ({"epsilon": 1.0, "embedding_dim": 0}, "embedding_dim"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DPCTGAN(**kwargs)


@pytest.mark.parametrize("kwargs,match", [
    ({"epochs": 0}, "epochs"), ({"max_grad_norm": 0.0}, "max_grad_norm"), ({"sampling_rate": 1.5}, "sampling_rate"),
    ({"frequency_share": 1.0}, "frequency_share"), ({"batch_size": 0}, "batch_size")])
def test_bad_plan_parameters_charge_nothing(tmp_path, kwargs, match):
    g = gate(tmp_path)
    with pytest.raises(PlanError, match=match):
        DPCTGAN(epsilon=1.0, **{**TINY, **kwargs}).fit(FrameAccess(small_frame(), SCHEMA), g)
    assert g.spent_costs() == []


def test_replace_one_policies_are_refused(tmp_path):
    g = gate(tmp_path, relation=NeighbouringRelation.REPLACE_ONE)
    with pytest.raises(PlanError, match="add/remove"):
        DPCTGAN(epsilon=1.0, **TINY).fit(FrameAccess(small_frame(), SCHEMA), g)


def test_a_value_outside_the_schema_names_column_and_row_not_the_value(tmp_path):
    frame = small_frame()
    frame.loc[7, "colour"] = "secret-purple"
    g = gate(tmp_path)
    with pytest.raises(ValueError, match=r"column 'colour', row 7") as info:
        DPCTGAN(epsilon=1.0, **TINY).fit(FrameAccess(frame, SCHEMA), g)
    assert "secret-purple" not in str(info.value)


def test_numeric_columns_need_public_bounds():
    with pytest.raises(ValueError, match="public bounds"):
        TableTransformer.from_schema([{"name": "x", "kind": "numeric"}])


def test_datetime_columns_map_to_seconds_by_their_public_bounds():
    from dpsynth.schema import Column

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
    with pytest.raises(ValueError, match=r"column 'when', row 0: not a date/time"):
        t.transform(pd.DataFrame({"when": ["someday"]}))
    assert TableTransformer.from_dict(t.to_dict()).columns == t.columns


def test_out_of_range_other_collects_undeclared_values_in_one_slot():
    from dpsynth.schema import Column
    from dpsynth.schema.decode import OTHER

    strict = TableTransformer.from_schema([Column("c", "categorical", categories=["a", "b"])])
    lenient = TableTransformer.from_schema([Column("c", "categorical", categories=["a", "b"],
                                                   out_of_range="other", nullable=True)])
    frame = pd.DataFrame({"c": ["a", "zebra", None, "b", "yak"]})
    with pytest.raises(ValueError, match=r"column 'c', row 1"):
        strict.transform(frame.iloc[:2])
    # Layout [a, b, other, missing]: both undeclared values land in "other".
    np.testing.assert_array_equal(lenient.transform(frame), [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                                             [0, 1, 0, 0], [0, 0, 1, 0]])
    assert list(lenient.inverse(lenient.transform(frame))["c"]) == ["a", OTHER, None, "b", OTHER]
    assert TableTransformer.from_dict(lenient.to_dict()).columns == lenient.columns


def test_the_batch_path_needs_the_receipt_of_exactly_the_plan(fitted, tmp_path):
    model, _, g = fitted
    other = PoissonSubsampledGaussianEvent(0.5, 1.0, 3)
    access = FrameAccess(small_frame(), SCHEMA)
    with pytest.raises(AccessError):
        next(iter(access.poisson_batches(model.transformer, other, gate=g, receipt=model.receipts[-1],
                                         uniform_width=3, device=torch.device("cpu"), seed=0)))


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


def test_save_load_round_trip(fitted, tmp_path):
    model, _, g = fitted
    path = tmp_path / "model.dpctgan"
    model.save(path)
    loaded = DPCTGAN.load(path, device="cpu")
    pd.testing.assert_frame_equal(model.sample(25, seed=9), loaded.sample(25, seed=9))
    loaded.verify(gate=g)
    assert loaded.plan == model.plan


def test_sample_refuses_tampered_receipts(fitted):
    model, _, g = fitted
    good = list(model.receipts)
    try:
        bad_sig = dataclasses.replace(good[-1], signature=good[0].signature)
        model.receipts = [good[0], bad_sig]
        with pytest.raises(InvalidReceipt):
            model.sample(3)
        cheaper = PoissonSubsampledGaussianEvent(model.plan.sampling_rate, model.plan.noise_multiplier * 10,
                                                 model.plan.steps)
        model.receipts = [good[0], dataclasses.replace(good[-1], event=cheaper.to_json())]
        with pytest.raises(InvalidReceipt, match="do not pay"):
            model.sample(3)
        model.receipts = [good[0]]
        with pytest.raises(InvalidReceipt):
            model.sample(3, gate=g)
    finally:
        model.receipts = good
    model.sample(3, gate=g)


def test_a_table_without_categorical_columns_spends_everything_on_dp_sgd(tmp_path):
    g = gate(tmp_path, epsilon=2.0)
    frame = pd.DataFrame({"x": np.linspace(0, 1, 40)})
    model = DPCTGAN(epsilon=2.0, seed=0, **TINY).fit(
        FrameAccess(frame, [{"name": "x", "kind": "numeric", "lower": 0, "upper": 1}]), g)
    assert len(model.receipts) == 1 and model.plan.frequency_noise_multiplier is None
    assert model.sample(10, seed=0)["x"].between(0, 1).all()


def test_device_auto_falls_back_to_cpu():
    model = DPCTGAN(epsilon=1.0, device="auto")
    assert model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_run_of_a_share_is_epsilon_dp_on_its_own_and_admitted(tmp_path):
    g = gate(tmp_path, epsilon=5.0)
    model = DPCTGAN(epsilon=1.0, seed=2, **TINY).fit(FrameAccess(small_frame(), SCHEMA), g)
    # Independent of our calibration: the run's events, composed by the accountant's full curve.
    acc = RDPAccountant()
    for e in model.plan.events:
        acc.compose(e)
    assert acc.get_epsilon(1e-6) <= 1.0
    assert model.epsilon_spent() <= 1.0
    assert len(g.spent_costs()) == 2 and g.filter.epsilon_spent(g.spent_costs()) < 5.0
