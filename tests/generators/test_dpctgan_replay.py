"""Record and replay for DP-CTGAN (the deterministic privacy test), through the private table.

`dpsynth.testing.replay.record_and_replay` fits DP-CTGAN on D = a small table plus
a worst-case target record through a `RecordingTable` (seeded test noise, a test
ledger), logging every mechanism output: the noisy category counts and the noisy
clipped gradient sum of each DP-SGD session step.  It then refits on each
add/remove neighbour D' (the target removed; a second copy added) through a
`ReplayTable` that returns the recorded outputs, while the session's Poisson
sample and per-row uniforms of the other records are the same (seeded mode keys
them by record identity, `dpsynth.table.identity`), with the same
post-processing seed.  The harness checks the same measurements in the same
order, each step's exact clipped sum within C of the recorded one (the counts
within √k), the ledger entries, and byte-identical released bytes — here the
generator's and the discriminator's weights and synthetic rows.

DP-SGD is analysed under add/remove-one only: a replace-one policy is refused
before anything is charged (by DP-CTGAN, and by the table's session itself).

The canary (CTGAN's classic leak: conditional sampling from EXACT category
frequencies) must be caught.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accountant.events import NeighbouringRelation
from dpsynth.generators import DPCTGAN
from dpsynth.generators.dpctgan import PlanError
from dpsynth.generators.dpctgan import model as model_module
from dpsynth.generators.dpctgan.conditional import ConditionalSampler
from dpsynth.nn import DiscriminatorSpec
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.testing.replay import ReplayFailure, measured_distance, record_and_replay
from dpsynth.testing.recording import RecordingTable

from .dpctgan_support import (SCHEMA, TINY, exact_category_counts, ledger_entries, small_frame, table_and_ledger,
                              worst_case_record)

ADD_OR_REMOVE = NeighbouringRelation.ADD_OR_REMOVE_ONE
REPLACE = NeighbouringRelation.REPLACE_ONE
# q = 0.3 of the public bound 200 (an expected 12 of the 41 rows), 2 epochs of ceil(1/q) = 4 steps.
CONFIG = dict(TINY, batch_size=60, epochs=2)
C = 1.0


def _make() -> DPCTGAN:
    return DPCTGAN(epsilon=4.0, seed=77, max_grad_norm=C, **CONFIG)


def _weights(model) -> list[np.ndarray]:
    return [t.detach().cpu().numpy() for m in (model.generator, model.discriminator) for t in m.state_dict().values()]


def _release(model) -> list:
    """What is compared byte for byte: every weight of both networks, then synthetic rows."""
    return [*_weights(model), model.sample(50, seed=3)]


def _capturing(into: list) -> type:
    """A mixin that keeps every recording/replay table the harness builds (to read its log)."""

    class Capture:
        def __init__(self, frame, *args, **kwargs) -> None:
            super().__init__(frame, *args, **kwargs)
            into.append(self)

    return Capture


def _replay(tmp_path, *, relations=(ADD_OR_REMOVE,), mixins=(), raise_on_failure=True):
    return record_and_replay(_make, small_frame(40, seed=5), SCHEMA, target=worst_case_record(), relations=relations,
                             release=_release, epsilon=5.0, max_records=200, mixins=mixins, directory=tmp_path,
                             raise_on_failure=raise_on_failure)


def test_replay_on_add_remove_neighbours_is_byte_identical_and_the_target_moves_the_sums(tmp_path):
    tables: list = []
    report = _replay(tmp_path, mixins=(_capturing(tables),))  # raises ReplayFailure on any problem
    assert report.ok
    recorded, *replays = tables
    assert [type(t).__name__ for t in tables] == ["RecordingTable", "ReplayTable", "ReplayTable"]
    log = report.records[ADD_OR_REMOVE.value]
    steps = [i for i, r in enumerate(log) if r.measurement.kind == "dpsgd_step"]
    assert [r.measurement.kind for r in log] == ["category_counts_layout"] + ["dpsgd_step"] * 8
    assert [log[i].measurement.sensitivity for i in steps] == [C] * 8
    for rep in replays:
        assert rep.consumed == len(log)
        moves = [measured_distance("l2", log[i].exact, rep.exact[i])[0] for i in steps]
        # Within C at every step (the harness checked it too: report.ok) ...
        assert max(moves) <= C * (1 + 1e-4)
        # ... and with teeth: the target was in the Poisson sample of some step, where its
        # clipped gradient moved the exact sum by about C.
        assert max(moves) > 0.5 * C
        # The counts moved by one in each categorical column's histogram: √2 for two columns.
        assert measured_distance("l2", log[0].exact, rep.exact[0])[0] == pytest.approx(np.sqrt(2))
    assert 0.5 < max(report.max_ratio.values()) <= 1 + 1e-4


def test_without_the_frozen_outputs_the_neighbour_is_visible(tmp_path):
    """The comparison has power: fit on D and on D' (the target removed) with their own noisy
    outputs, the same seeds, and the weights differ — byte-identity above is owed to the freezing."""
    base = small_frame(40, seed=5)
    with_target = pd.concat([base, pd.DataFrame([worst_case_record()])], ignore_index=True)
    models = []
    for name, frame in (("d", with_target), ("d-prime", base)):
        table, _ = table_and_ledger(tmp_path / name, frame, epsilon=5.0, seed=0)
        models.append(_make().fit(table))
    a, b = (_weights(m) for m in models)
    assert any(x.tobytes() != y.tobytes() for x, y in zip(a, b))


def test_replace_one_is_refused_dp_sgd_is_add_remove_only(tmp_path):
    # Through the harness: DP-CTGAN refuses the replace-one policy before its first measurement.
    with pytest.raises(PlanError, match="add/remove"):
        _replay(tmp_path / "harness", relations=(REPLACE,))
    # The table's session refuses it too, whoever asks, before anything is charged.
    frame = small_frame(40, seed=5)
    table, tl = table_and_ledger(tmp_path / "session", frame, relation=REPLACE)
    recording = RecordingTable(frame, SCHEMA, tl.gate, random_source=SeededRandomSource(0),
                               dataset_key=tl.dataset_key)
    for t in (table, recording):
        with pytest.raises(ValueError, match="add/remove-one only"):
            t.dpsgd_session(discriminator=DiscriminatorSpec((8,)), sampling_rate=0.1, noise_multiplier=1.0, steps=2,
                            max_grad_norm=1.0, purpose="replace-one DP-SGD")
    assert ledger_entries(tl) == () and recording.log == []


def test_canary_exact_frequencies_in_conditional_sampling_is_caught(tmp_path, monkeypatch):
    """CTGAN's classic leak: the conditional sampler draws from the EXACT category counts of the
    rows (it keeps the released noisy counts for show, so the seal and the release commitment
    still verify).  Only the replay sees it: the released bytes differ on the neighbour."""
    held: dict = {}

    class FrameSpy:  # the leaky generator's access to the raw rows the table was built from
        def __init__(self, frame, *args, **kwargs) -> None:
            held["frame"] = frame
            super().__init__(frame, *args, **kwargs)

    class LeakySampler(ConditionalSampler):
        def __init__(self, blocks, noisy_counts, **kw):
            super().__init__(blocks, exact_category_counts(held["frame"]), **kw)
            self.noisy_counts = tuple(np.asarray(c, dtype=np.float64).copy() for c in noisy_counts)

    monkeypatch.setattr(model_module, "ConditionalSampler", LeakySampler)
    with pytest.raises(ReplayFailure) as info:
        _replay(tmp_path, mixins=(FrameSpy,))
    assert "output" in info.value.report.checks_failed()
    # Not a divergence or a ledger problem: the leak is in what the released bytes depend on.
    assert not info.value.report.checks_failed() & {"divergence", "ledger", "uncharged"}


def test_the_leaky_sampler_alone_passes_every_other_check(tmp_path, monkeypatch):
    """The canary's fit is sealed and verifies (so only the replay can catch it)."""
    frame = small_frame(40, seed=5)

    class LeakySampler(ConditionalSampler):
        def __init__(self, blocks, noisy_counts, **kw):
            super().__init__(blocks, exact_category_counts(frame), **kw)
            self.noisy_counts = tuple(np.asarray(c, dtype=np.float64).copy() for c in noisy_counts)

    monkeypatch.setattr(model_module, "ConditionalSampler", LeakySampler)
    table, tl = table_and_ledger(tmp_path, frame, epsilon=5.0, seed=0)
    model = _make().fit(table)
    model.verify(gate=tl.gate)
    assert len(model.sample(5, seed=0)) == 5
