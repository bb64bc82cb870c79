"""The DP-SGD seam (DP-CTGAN trains on a PrivateTable) and the PATE seam (keyed partitions)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from accountant.events import GaussianEvent, GNMaxEvent, NeighbouringRelation, event_from_json
from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.table import AccessError, keyed_partition

from .support import SCHEMA, small_frame, table

KEY = b"teacher-partition-key-0123456789"


def test_dpctgan_trains_on_a_private_table(tmp_path):
    import torch

    from dpsynth.generators import DPCTGAN
    from dpsynth.generators.dpctgan.access import DPSGDTableAccess, table_access

    torch.set_num_threads(1)

    t = table(tmp_path, small_frame(60), epsilon=5.0, max_records=200)
    assert isinstance(t, DPSGDTableAccess) and table_access(t) is t
    model = DPCTGAN(epsilon=4.0, seed=3, epochs=1, batch_size=20, generator_dims=(8,), discriminator_dims=(8,),
                    embedding_dim=4, progress=False, device="cpu").fit(t, t.gate)
    # the counts went through the table; the DP-SGD plan is charged by DP-CTGAN itself
    assert model.receipts[0] == t.receipts[0] and len(t.gate.spent_costs()) == 2
    assert event_from_json(t.receipts[0].event) == GaussianEvent(model.plan.frequency_noise_multiplier)
    out = model.sample(10, seed=1)
    assert list(out.columns) == list(SCHEMA.names) and len(out) == 10


def test_noisy_category_counts_are_exact_counts_plus_discrete_gaussian(tmp_path):
    from dpsynth.generators.dpctgan.transformer import TableTransformer

    frame = small_frame(60)
    t = table(tmp_path, frame, seed=5)
    tr = TableTransformer.from_schema(SCHEMA)
    z = 2.0
    counts, receipt = t.noisy_category_counts(tr, z, gate=t.gate, purpose="counts", generator="dpctgan",
                                              run_id="r", noise_source="seeded-test")
    k = len(tr.categorical_blocks)  # colour, flag
    sigma = z * math.sqrt(k)
    widths = [b.width for b in tr.categorical_blocks]
    noise = np.split(sample_discrete_gaussian(sigma, sum(widths), SeededRandomSource(5)), np.cumsum(widths)[:-1])
    exact = [frame["colour"].value_counts().reindex(["red", "green", "blue"], fill_value=0).to_numpy(),
             frame["flag"].value_counts().reindex([False, True], fill_value=0).to_numpy()]
    for c, e, n in zip(counts, exact, noise):
        assert np.array_equal(c, e + n)
    assert event_from_json(receipt.event) == GaussianEvent(z)
    with pytest.raises(ValueError, match="noise_source"):
        t.noisy_category_counts(tr, z, gate=t.gate, purpose="counts", generator="dpctgan", run_id="r",
                                noise_source="secure")
    with pytest.raises(AccessError, match="own gate"):
        t.noisy_category_counts(tr, z, gate=object(), purpose="counts", generator="dpctgan", run_id="r",
                                noise_source="seeded-test")


def test_poisson_batches_need_the_receipt_of_the_plan(tmp_path):
    from accountant.events import PoissonSubsampledGaussianEvent
    from dpsynth.generators.dpctgan.transformer import TableTransformer

    t = table(tmp_path, small_frame(60), epsilon=5.0, max_records=200)
    tr = TableTransformer.from_schema(SCHEMA)
    event = PoissonSubsampledGaussianEvent(0.1, 2.0, 3)
    t.noisy_count(5.0, purpose="count")
    other = t.receipts[-1]
    with pytest.raises(AccessError):
        t.poisson_batches(tr, event, gate=t.gate, receipt=other, uniform_width=2, device="cpu", seed=0)
    receipt = t.gate.charge(event, purpose="dp-sgd", generator="dpctgan", run_id="r", noise_source="seeded-test")
    batches = list(t.poisson_batches(tr, event, gate=t.gate, receipt=receipt, uniform_width=2, device="cpu",
                                     seed=0))
    assert len(batches) == 3 and all(b.shape[1] == tr.dim and u.shape == (b.shape[0], 2) for b, u in batches)


# -- PATE ---------------------------------------------------------------------------------------
def _assignments(frame: pd.DataFrame, k: int) -> list[tuple]:
    parts = keyed_partition(frame, k, KEY)
    return sorted(zip(map(tuple, frame.astype(str).to_numpy()), parts.tolist()))


def test_keyed_partition_one_record_moves_only_its_own_teacher():
    frame = pd.concat([small_frame(200, seed=4)] + [small_frame(1, seed=9)] * 3, ignore_index=True)  # 3 copies
    k = 7
    parts = keyed_partition(frame, k, KEY)
    assert parts.shape == (len(frame),) and set(parts.tolist()) <= set(range(k))
    sizes = np.bincount(parts, minlength=k)
    assert sizes.min() >= 10  # about 29 each: balanced, even with duplicates
    base = _assignments(frame, k)
    for i in (0, 57, len(frame) - 1, len(frame) - 3):  # remove a unique row, or one of three copies
        smaller = _assignments(frame.drop(index=i).sample(frac=1, random_state=i).reset_index(drop=True), k)
        moved = [x for x in base if x not in smaller or base.count(x) != smaller.count(x)]
        assert len(set(moved)) == 1  # exactly the removed record's assignment disappears
    newcomer = small_frame(1, seed=123)
    bigger = _assignments(pd.concat([frame, newcomer], ignore_index=True), k)
    assert [x for x in bigger if x not in base] == _assignments(newcomer, k)  # others unchanged
    assert not np.array_equal(parts, keyed_partition(frame, k, b"another-secret-key-0123456789ab"))


def test_teacher_votes_are_charged_as_gnmax(tmp_path):
    t = table(tmp_path, small_frame(90), epsilon=50.0)
    t.noisy_count(5.0, purpose="run start")
    receipt = t.receipts[-1]
    seen_sizes = []

    def train(part):
        seen_sizes.append(len(part))
        majority = int(part["flag"].mean() > 0.5)
        return lambda q: np.full(len(q), majority)

    ensemble = t.train_teachers(5, train, key=KEY, receipt=receipt)
    assert sum(seen_sizes) == 90 and "private" in repr(ensemble)
    votes = ensemble.noisy_votes(np.zeros((4, 1)), 2, 3.0, purpose="votes", generator="pategan", run_id="r")
    assert votes.shape == (4, 2)
    assert event_from_json(t.receipts[-1].event) == GNMaxEvent(3.0, 4)
    with pytest.raises(ValueError):
        ensemble.noisy_votes(np.zeros((4, 1)), 1, 3.0, purpose="votes", generator="pategan", run_id="r")
