"""DP-CTGAN's generator-facing API: the gate from the table, progress, device, persistence."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from accountant import PoissonSubsampledGaussianEvent, RDPAccountant
from accountant.events import GaussianEvent
from dpsynth.generators import DPCTGAN
from dpsynth.generators.dpctgan import NotFitted
from dpsynth.schema import Column, Schema

from .dpctgan_support import SCHEMA, TINY, ledger, ledger_entries, small_frame, table_and_ledger


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    table, tl = table_and_ledger(tmp_path_factory.mktemp("ledger"), epsilon=3.0, seed=11)
    model = DPCTGAN(epsilon=3.0, seed=11, **TINY).fit(table)
    return model, tl


# -- the gate ------------------------------------------------------------------------------
def test_fit_takes_the_gate_from_the_table(fitted):
    model, tl = fitted
    g = tl.gate
    # Both charges went to the table's gate: its ledger holds exactly the model's receipts.
    assert len(g.spent_costs()) == 2
    assert [e.entry_hash for e in ledger_entries(tl)] == [r.entry_hash for r in model.receipts]
    for r in model.receipts:
        g.verify_receipt(r)


def test_a_gate_other_than_the_tables_is_refused(tmp_path):
    table, tl = table_and_ledger(tmp_path / "a")
    other = ledger(tmp_path / "b", small_frame())
    with pytest.raises(ValueError, match="not the table's gate"):
        DPCTGAN(epsilon=1.0, seed=0, **TINY).fit(table, other.gate)
    assert ledger_entries(tl) == () and ledger_entries(other) == ()
    DPCTGAN(epsilon=1.0, seed=0, **TINY).fit(table, tl.gate)  # its own gate, passed explicitly: fine
    assert len(tl.gate.spent_costs()) == 2 and ledger_entries(other) == ()


class FrameWithGate:
    """What DP-CTGAN used to accept: rows beside a gate.  No longer a way in."""

    def __init__(self, frame, schema, gate) -> None:
        self.frame, self.schema, self.gate = frame, schema, gate


def test_fit_refuses_anything_but_a_private_table(tmp_path):
    tl = ledger(tmp_path, small_frame())
    for thing in (small_frame(), FrameWithGate(small_frame(), SCHEMA, tl.gate)):
        with pytest.raises(TypeError, match="PrivateTable"):
            DPCTGAN(epsilon=1.0, **TINY).fit(thing)
        with pytest.raises(TypeError, match="PrivateTable"):
            DPCTGAN(epsilon=1.0, **TINY).fit(thing, tl.gate)
    assert ledger_entries(tl) == ()


def test_epsilon_spent_is_the_runs_events_composed_independently(fitted):
    model, _ = fitted
    plan = model.plan
    acc = RDPAccountant().compose(GaussianEvent(plan.frequency_noise_multiplier))
    acc.compose(PoissonSubsampledGaussianEvent(plan.sampling_rate, plan.noise_multiplier, plan.steps))
    assert model.epsilon_spent() == pytest.approx(acc.get_epsilon(1e-6), rel=1e-12)
    assert model.epsilon_spent() <= 3.0


# -- progress ------------------------------------------------------------------------------
def test_progress_bar_shows_epoch_losses_and_epsilon_so_far(tmp_path, capsys):
    table, _ = table_and_ledger(tmp_path, epsilon=2.0, seed=4)
    model = DPCTGAN(epsilon=2.0, seed=4, **{**TINY, "progress": True}).fit(table)
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
    assert all(p.device.type == "cpu" for p in model.discriminator.parameters())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_fits_and_samples_on_the_gpu(tmp_path):
    table, tl = table_and_ledger(tmp_path, epsilon=2.0, seed=5)
    model = DPCTGAN(epsilon=2.0, seed=5, **{**TINY, "device": "auto"}).fit(table)
    assert model.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in model.generator.parameters())
    out = model.sample(40, where={"colour": "green"}, seed=1)
    assert len(out) == 40 and (out["colour"] == "green").all()
    path = tmp_path / "gpu.dpctgan"
    model.save(path)
    assert DPCTGAN.load(path, trust=tl.ledger_pub, device="cpu").sample(5, seed=0).shape == (5, 4)


# -- sampling and persistence --------------------------------------------------------------
def test_sample_and_save_before_fit_are_refused(tmp_path):
    model = DPCTGAN(epsilon=1.0, **TINY)
    with pytest.raises(NotFitted):
        model.sample(3)
    with pytest.raises(NotFitted):
        model.save(tmp_path / "x")
    with pytest.raises(NotFitted):
        model.verify()
    assert not (tmp_path / "x").exists()


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


def test_load_refuses_another_format(tmp_path):
    path = tmp_path / "other.bin"
    torch.save({"meta": json.dumps({"format": "something/else"}), "generator": b"x"}, path)
    with pytest.raises(ValueError, match="not a dpsynth model file"):
        DPCTGAN.load(path, trust=None)
    path2 = tmp_path / "other2.bin"
    torch.save({"meta": json.dumps({"format": "something/else"}), "arrays": {}, "seal": "{}"}, path2)
    with pytest.raises(ValueError, match="known format"):
        DPCTGAN.load(path2, trust=None)


def test_the_saved_file_holds_no_rows(fitted, tmp_path):
    """What is saved: layout, noisy counts, plan, receipts, seal and generator weights; never a
    value of a numeric column or the discriminator."""
    model, _ = fitted
    path = tmp_path / "m.dpctgan"
    model.save(path)
    blob = torch.load(path, weights_only=True)
    assert set(blob) == {"meta", "arrays", "seal"}
    meta = json.loads(blob["meta"])
    assert set(meta) == {"format", "generator", "config", "transformer", "sampler", "plan", "provenance", "schema"}
    # The schema kept is the table's public one, with how it writes its values (issue 17): no more.
    from dpsynth.schema import Schema

    assert Schema.from_dict(meta["schema"]) == model.schema
    assert set(meta["provenance"]) == {"receipts", "genesis"}
    assert blob["arrays"] and all(k.startswith("generator/") for k in blob["arrays"])
    assert not any(k.startswith("generator/hidden") for k in blob["arrays"])  # discriminator layers not kept
    frame = small_frame()
    text = blob["meta"] + blob["seal"]
    assert not any(repr(float(v)) in text for v in frame["size"])
    assert not any(f"{v:.6f}" in text for v in frame["size"])


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
    schema = Schema([Column("colour", "categorical", categories=["red", "green"], nullable=True),
                     Column("size", "numeric", bins=[0.0, 2.5, 5.0, 10.0])])
    frame = small_frame()[["colour", "size"]]
    frame.loc[::7, "colour"] = None
    table, _ = table_and_ledger(tmp_path, frame, schema, epsilon=2.0, seed=6)
    model = DPCTGAN(epsilon=2.0, seed=6, **TINY).fit(table)
    # Public bin edges bound the numeric column (first and last edge).
    assert model.sample(30, seed=0)["size"].between(0.0, 10.0).all()
    out = model.sample(10, where={"colour": None}, seed=0)
    assert out["colour"].isna().all()
