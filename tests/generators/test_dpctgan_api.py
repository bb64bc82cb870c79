"""DP-CTGAN's generator-facing API: the gate from the table, progress, device, persistence."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
import torch

from accountant import PoissonSubsampledGaussianEvent, RDPAccountant
from accountant.events import GaussianEvent
from accountant.gate import InvalidReceipt
from dpsynth.generators import DPCTGAN
from dpsynth.generators.dpctgan import NotFitted
from dpsynth.generators.dpctgan.access import FrameAccess

from .dpctgan_support import SCHEMA, TINY, gate, small_frame


class TableWithGate(FrameAccess):
    """Stands in for PrivateTable: the table carries the gate it was opened with."""

    def __init__(self, frame, schema, gate) -> None:
        super().__init__(frame, schema)
        self.gate = gate


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    g = gate(tmp_path_factory.mktemp("ledger"), epsilon=3.0)
    model = DPCTGAN(epsilon=3.0, seed=11, **TINY).fit(TableWithGate(small_frame(), SCHEMA, g))
    return model, g


# -- the gate ------------------------------------------------------------------------------
def test_fit_takes_the_gate_from_the_table(fitted):
    model, g = fitted
    # Both charges went to the table's gate: its ledger holds exactly the model's receipts.
    assert len(g.spent_costs()) == 2
    for r in model.receipts:
        g.verify_receipt(r)


def test_an_explicit_gate_wins_over_the_tables(tmp_path):
    table_gate, other = gate(tmp_path / "a"), gate(tmp_path / "b")
    DPCTGAN(epsilon=1.0, seed=0, **TINY).fit(TableWithGate(small_frame(), SCHEMA, table_gate), other)
    assert table_gate.spent_costs() == [] and len(other.spent_costs()) == 2


def test_fit_without_any_gate_is_a_clear_error():
    with pytest.raises(TypeError, match="needs a gate"):
        DPCTGAN(epsilon=1.0, **TINY).fit(FrameAccess(small_frame(), SCHEMA))


def test_epsilon_spent_is_the_runs_events_composed_independently(fitted):
    model, _ = fitted
    plan = model.plan
    acc = RDPAccountant().compose(GaussianEvent(plan.frequency_noise_multiplier))
    acc.compose(PoissonSubsampledGaussianEvent(plan.sampling_rate, plan.noise_multiplier, plan.steps))
    assert model.epsilon_spent() == pytest.approx(acc.get_epsilon(1e-6), rel=1e-12)
    assert model.epsilon_spent() <= 3.0


# -- progress ------------------------------------------------------------------------------
def test_progress_bar_shows_epoch_losses_and_epsilon_so_far(tmp_path, capsys):
    g = gate(tmp_path, epsilon=2.0)
    model = DPCTGAN(epsilon=2.0, seed=4, **{**TINY, "progress": True}).fit(FrameAccess(small_frame(), SCHEMA), g)
    err = capsys.readouterr().err
    plan = model.plan
    for epoch in (1, 2):
        assert f"epoch={epoch}/2" in err
        # ε after the steps of the epochs done so far: the counts plus that many DP-SGD steps,
        # composed here by the accountant.
        acc = RDPAccountant().compose(GaussianEvent(plan.frequency_noise_multiplier))
        acc.compose(PoissonSubsampledGaussianEvent(plan.sampling_rate, plan.noise_multiplier,
                                                   epoch * plan.steps_per_epoch))
        assert f"eps={acc.get_epsilon(1e-6):.3f}" in err
    assert "loss_g=" in err and "loss_d_fake=" in err
    # The discriminator's loss on real rows is a statistic of private data released by no
    # mechanism: it must never be shown.
    assert "real" not in err
    # The epoch-1 ε is strictly less than the final one (it is "spent so far", not the plan).
    assert plan.epsilon_after(plan.steps_per_epoch) < plan.epsilon_after(plan.steps)


# -- device --------------------------------------------------------------------------------
def test_cpu_device_keeps_everything_on_the_cpu(fitted):
    model, _ = fitted
    assert model.device.type == "cpu"
    assert all(p.device.type == "cpu" for p in model.generator.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_fits_and_samples_on_the_gpu(tmp_path):
    g = gate(tmp_path, epsilon=2.0)
    model = DPCTGAN(epsilon=2.0, seed=5, **{**TINY, "device": "auto"}).fit(FrameAccess(small_frame(), SCHEMA), g)
    assert model.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.generator.parameters())
    out = model.sample(40, where={"colour": "green"}, seed=1)
    assert len(out) == 40 and (out["colour"] == "green").all()
    path = tmp_path / "gpu.dpctgan"
    model.save(path)
    assert DPCTGAN.load(path, device="cpu").sample(5, seed=0).shape == (5, 4)


# -- sampling and persistence --------------------------------------------------------------
def test_sample_and_save_before_fit_are_refused(tmp_path):
    model = DPCTGAN(epsilon=1.0, **TINY)
    with pytest.raises(NotFitted):
        model.sample(3)
    with pytest.raises(NotFitted):
        model.save(tmp_path / "x")


@pytest.mark.parametrize("n", [-1, 2.5, True])
def test_sample_needs_a_non_negative_int(fitted, n):
    model, _ = fitted
    with pytest.raises(ValueError, match="n must be an int"):
        model.sample(n)


def test_conditional_sample_on_one_column_only(fitted):
    model, _ = fitted
    with pytest.raises(ValueError, match="one categorical column"):
        model.sample(3, where={"colour": "red", "flag": True})
    out = model.sample(20, where={"flag": True}, seed=2)
    assert out["flag"].tolist() == [True] * 20
    assert model.sample(0).shape == (0, 4)


def _rewrite_meta(src, dst, change) -> None:
    blob = torch.load(src, weights_only=True)
    meta = json.loads(blob["meta"])
    change(meta)
    blob["meta"] = json.dumps(meta, sort_keys=True)
    torch.save(blob, dst)


def test_load_refuses_a_file_whose_receipts_do_not_pay_for_its_plan(fitted, tmp_path):
    model, _ = fitted
    path = tmp_path / "model.dpctgan"
    model.save(path)

    def less_noise_claimed(meta):  # a cheaper plan than the one the ledger signed
        meta["plan"]["noise_multiplier"] *= 0.5

    def forged_signature(meta):
        meta["receipts"][-1]["signature"] = meta["receipts"][0]["signature"]

    def no_ledger_key(meta):
        meta["ledger_public_key"] = None

    for change, match in ((less_noise_claimed, "do not pay"), (forged_signature, "signature"),
                          (no_ledger_key, "no ledger key")):
        bad = tmp_path / f"{change.__name__}.dpctgan"
        _rewrite_meta(path, bad, change)
        with pytest.raises(InvalidReceipt, match=match):
            DPCTGAN.load(bad, device="cpu")
    DPCTGAN.load(path, device="cpu")  # the untouched file still loads


def test_load_refuses_another_format(tmp_path):
    path = tmp_path / "other.bin"
    torch.save({"meta": json.dumps({"format": "something/else"}), "generator": b"x"}, path)
    with pytest.raises(ValueError, match="not a DP-CTGAN model file"):
        DPCTGAN.load(path)


def test_the_saved_file_holds_no_rows(fitted, tmp_path):
    """What is saved: layout, noisy counts, plan, receipts and generator weights; never a
    value of a numeric column or the discriminator."""
    model, _ = fitted
    path = tmp_path / "m.dpctgan"
    model.save(path)
    blob = torch.load(path, weights_only=True)
    assert set(blob) == {"meta", "generator"}
    meta = json.loads(blob["meta"])
    assert set(meta) == {"format", "config", "transformer", "sampler", "plan", "receipts", "ledger_public_key"}
    weights = torch.load(io.BytesIO(blob["generator"]), weights_only=True)
    assert all(not k.startswith("hidden") for k in weights)  # discriminator layers are not kept
    frame = small_frame()
    text = blob["meta"]
    assert not any(repr(float(v)) in text for v in frame["size"])


def test_conditional_sample_on_a_list_of_values(fitted):
    model, _ = fitted
    out = model.sample(300, where={"colour": ["red", "blue"]}, seed=3)
    assert set(out["colour"]) <= {"red", "blue"}
    # The draw follows the noisy frequencies restricted to the values asked for.
    block = model.sampler.blocks.index(model.transformer.block("colour"))
    p = model.sampler.p_freq[block][[0, 2]]
    expected_red = p[0] / p.sum() if p.sum() > 0 else 0.5
    share_red = float((out["colour"] == "red").mean())
    assert abs(share_red - expected_red) < 4 * (expected_red * (1 - expected_red) / 300) ** 0.5 + 1e-9
    # A set is drawn in schema order: reproducible with a seed.
    pd.testing.assert_frame_equal(model.sample(50, where={"colour": {"blue", "red"}}, seed=8),
                                  model.sample(50, where={"colour": ["red", "blue"]}, seed=8))
    with pytest.raises(ValueError, match="no value given"):
        model.sample(3, where={"colour": []})
    with pytest.raises(ValueError, match="not a category"):
        model.sample(3, where={"colour": ["red", "purple"]})


def test_missing_is_a_condition_of_a_nullable_column(tmp_path):
    schema = [{"name": "colour", "kind": "categorical", "categories": ["red", "green"], "nullable": True},
              {"name": "size", "kind": "numeric", "bins": [0.0, 2.5, 5.0, 10.0]}]
    frame = small_frame()[["colour", "size"]]
    frame.loc[::7, "colour"] = None
    g = gate(tmp_path, epsilon=2.0)
    model = DPCTGAN(epsilon=2.0, seed=6, **TINY).fit(FrameAccess(frame, schema), g)
    # Public bin edges bound the numeric column (first and last edge).
    assert model.sample(30, seed=0)["size"].between(0.0, 10.0).all()
    out = model.sample(10, where={"colour": None}, seed=0)
    assert out["colour"].isna().all()
