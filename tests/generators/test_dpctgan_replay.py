"""Record and replay for DP-CTGAN (the deterministic privacy test).

Run the generator on a table D with every mechanism output recorded: the noisy
category counts, and the noisy clipped gradient sum of each DP-SGD step.  Replay
it on a neighbour D' (the worst-case target record added or removed, or
replaced) with those outputs frozen, the Poisson sample of the other records
frozen (each record's inclusion and uniforms are a keyed function of
(seed, step, record id)), and the same post-processing seed.  Assert:

* the same measurements in the same order;
* each measurement's exact answer moved by at most its declared sensitivity
  (counts: L2 ≤ √k; each step's clipped sum: L2 ≤ C, 2C for replace);
* byte-identical generator and discriminator weights and synthetic rows.

Any difference means private data reached the output outside a mechanism.  The
canary (CTGAN's classic leak: conditional sampling from exact frequencies)
must be caught.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from dpsynth.generators import DPCTGAN
from dpsynth.generators.dpctgan import model as model_module
from dpsynth.generators.dpctgan.access import check_dpsgd_receipt
from dpsynth.generators.dpctgan.conditional import ConditionalSampler

from .dpctgan_support import SCHEMA, TINY, gate, small_frame, worst_case_record

TARGET_ID = 10_000
SAMPLING_SEED = 1234
CONFIG = dict(TINY, batch_size=30, epochs=2)


def _keyed(step: int, record_id: int, width: int) -> tuple[float, np.ndarray]:
    rng = np.random.default_rng([SAMPLING_SEED, step, record_id])
    return float(rng.random()), rng.random(width).astype(np.float32)


class KeyedAccess:
    """A private-table double whose Poisson sample and per-row uniforms are keyed by record
    id, so the other records' sample is the same on every neighbour.  Records what the
    mechanisms computed; in replay mode returns the recorded outputs instead."""

    def __init__(self, frame: pd.DataFrame, ids: list[int], recording: dict | None = None) -> None:
        self.frame, self.ids, self.schema = frame.reset_index(drop=True), list(ids), SCHEMA
        self.replaying = recording is not None
        self.log = recording if recording is not None else {"calls": [], "counts": None, "steps": []}
        self.checks: list[tuple[str, float, float]] = []  # (what, measured change, declared bound)

    def exact_counts(self, transformer):
        f = transformer.transform(self.frame)
        return [f[:, b.start:b.end].sum(axis=0, dtype=np.float64) for b in transformer.categorical_blocks]

    def noisy_category_counts(self, transformer, noise_multiplier, *, gate, purpose, generator, run_id,
                              noise_source, parameters=None, seed=None):
        from accountant.events import GaussianEvent

        receipt = gate.charge(GaussianEvent(noise_multiplier), purpose=purpose, generator=generator,
                              run_id=run_id, noise_source=noise_source, parameters=parameters or {})
        exact = self.exact_counts(transformer)
        if not self.replaying:
            rng = np.random.default_rng(seed)
            sigma = noise_multiplier * math.sqrt(len(exact))
            noisy = [e + rng.normal(0, sigma, e.shape) for e in exact]
            self.log["calls"].append(("counts", noise_multiplier))
            self.log["counts"] = (exact, noisy)
            return noisy, receipt
        assert self.log["calls"][0] == ("counts", noise_multiplier)
        old_exact, noisy = self.log["counts"]
        moved = math.sqrt(sum(float(((a - b) ** 2).sum()) for a, b in zip(old_exact, exact)))
        self.checks.append(("counts", moved, math.sqrt(len(exact))))
        return noisy, receipt

    def poisson_batches(self, transformer, event, *, gate, receipt, uniform_width, device, seed):
        check_dpsgd_receipt(gate, receipt, event)
        if not self.replaying:
            self.log["calls"].append(("dpsgd", event.to_json()))
        else:
            assert self.log["calls"][1] == ("dpsgd", event.to_json())
        features = torch.as_tensor(transformer.transform(self.frame))
        for step in range(event.steps):
            rows, uniforms = [], []
            for i, rid in enumerate(self.ids):
                u, w = _keyed(step, rid, uniform_width)
                if u < event.sampling_rate or rid == TARGET_ID:  # the target: in every step it is present
                    rows.append(features[i])
                    uniforms.append(torch.as_tensor(w))
            if rows:
                yield torch.stack(rows).to(device), torch.stack(uniforms).to(device)
            else:
                yield features[:0].to(device), torch.zeros(0, uniform_width, device=device)

    def step_hook(self, bound: float):
        def hook(step, summed, noisy):
            if not self.replaying:
                self.log["steps"].append(([s.clone() for s in summed], [n.clone() for n in noisy]))
                return None
            old_summed, old_noisy = self.log["steps"][step]
            moved = math.sqrt(sum(float(((a.double() - b.double()) ** 2).sum()) for a, b in zip(old_summed, summed)))
            self.checks.append((f"step {step}", moved, bound))
            return old_noisy
        return hook


def _fit(tmp_path, name, access, bound):
    g = gate(tmp_path / name, epsilon=5.0, max_records=200)
    model = DPCTGAN(epsilon=4.0, seed=77, **CONFIG)
    model.fit(access, g, _step_hook=access.step_hook(bound))
    return model


def _tables():
    base = small_frame(40, seed=5)
    target = pd.DataFrame([worst_case_record()])
    with_target = pd.concat([base, target], ignore_index=True)
    ids = list(range(len(base)))
    return base, ids, with_target, ids + [TARGET_ID]


def _weights(model) -> list[bytes]:
    return [t.detach().cpu().numpy().tobytes() for m in (model.generator, model.discriminator)
            for t in m.state_dict().values()]


def _assert_replay_identical(recorded, replayed, access):
    assert _weights(recorded) == _weights(replayed)
    pd.testing.assert_frame_equal(recorded.sample(50, seed=3), replayed.sample(50, seed=3))
    tol = 1e-5  # float reassociation of the sum over the other records
    for what, moved, bound in access.checks:
        assert moved <= bound * (1 + tol) + tol, f"{what}: moved {moved} > declared {bound}"


@pytest.mark.parametrize("direction", ["add", "remove"])
def test_replay_on_add_remove_neighbours_is_byte_identical(tmp_path, direction):
    base, ids, with_target, ids_t = _tables()
    record_on, replay_on = ((base, ids), (with_target, ids_t)) if direction == "add" else \
        ((with_target, ids_t), (base, ids))
    rec = KeyedAccess(*record_on)
    recorded = _fit(tmp_path, "record", rec, 1.0)
    rep = KeyedAccess(*replay_on, recording=rec.log)
    replayed = _fit(tmp_path, "replay", rep, recorded.plan.max_grad_norm)
    assert len(rep.checks) == 1 + recorded.plan.steps
    _assert_replay_identical(recorded, replayed, rep)
    # Teeth: the target really moved the clipped sums (by about C: its gradient is clipped).
    step_moves = [m for w, m, _ in rep.checks if w.startswith("step")]
    assert max(step_moves) > 0.5 * recorded.plan.max_grad_norm


def test_replay_on_a_replace_neighbour_within_twice_the_clipping_norm(tmp_path):
    base, ids, with_target, ids_t = _tables()
    replaced = with_target.copy()
    replaced.iloc[-1] = base.iloc[0]  # the target replaced by an ordinary record
    rec = KeyedAccess(with_target, ids_t)
    recorded = _fit(tmp_path, "record", rec, 2.0)
    rep = KeyedAccess(replaced, ids_t, recording=rec.log)
    # Replace = remove + add: sensitivity 2C per step, √(2k) for the counts.
    replayed = _fit(tmp_path, "replay", rep, 2 * recorded.plan.max_grad_norm)
    rep.checks = [(w, m, (b * math.sqrt(2) if w == "counts" else b)) for w, m, b in rep.checks]
    _assert_replay_identical(recorded, replayed, rep)


def test_canary_exact_frequencies_in_conditional_sampling_is_caught(tmp_path, monkeypatch):
    """CTGAN's classic leak: the conditional sampler reads the exact category counts."""
    base, ids, with_target, ids_t = _tables()
    holder: dict = {}

    class LeakySampler(ConditionalSampler):
        def __init__(self, blocks, noisy_counts, **kw):
            super().__init__(blocks, holder["access"].exact_counts(holder["transformer"]), **kw)

    original = model_module.TableTransformer.from_schema

    def remember(schema):
        holder["transformer"] = original(schema)
        return holder["transformer"]

    monkeypatch.setattr(model_module, "ConditionalSampler", LeakySampler)
    monkeypatch.setattr(model_module.TableTransformer, "from_schema", staticmethod(remember))
    rec = holder["access"] = KeyedAccess(with_target, ids_t)
    recorded = _fit(tmp_path, "record", rec, 1.0)
    rep = holder["access"] = KeyedAccess(base, ids, recording=rec.log)
    replayed = _fit(tmp_path, "replay", rep, 1.0)
    assert _weights(recorded) != _weights(replayed)


def test_without_the_frozen_sums_the_neighbour_is_visible(tmp_path):
    """The comparison has power: let the neighbour's own (noised) sums through and the
    weights differ, so byte-identity above is owed to the freezing alone."""
    base, ids, with_target, ids_t = _tables()
    rec = KeyedAccess(with_target, ids_t)
    recorded = _fit(tmp_path, "record", rec, 1.0)
    rep = KeyedAccess(base, ids, recording=rec.log)
    g = gate(tmp_path / "replay", epsilon=5.0, max_records=200)
    replayed = DPCTGAN(epsilon=4.0, seed=77, **CONFIG).fit(rep, g, _step_hook=lambda *a: None)
    assert _weights(recorded) != _weights(replayed)
