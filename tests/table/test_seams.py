"""The private table's learning seams: noisy category counts, the DP-SGD session and the PATE session.

Each private step runs inside the table; these tests check from outside what
leaves it: exact answers plus noise drawn from the table's own source (recomputed
here independently on a `SeededRandomSource` with the same seed, in the order the
table draws), one charge per plan, sessions that stop at what was paid for, and
the keyed partitions PATE's sensitivity rests on.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from accountant.events import (GaussianEvent, GNMaxEvent, NeighbouringRelation, PoissonSubsampledGaussianEvent,
                               event_from_json)
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.rdp import event_rho
from accountant.testing import make_test_gate
from dpsynth.nn import DiscriminatorSpec, RealConditioning, TeacherSpec
from dpsynth.nn.layout import TableTransformer
from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian
from dpsynth.noise.gaussian import sample_gaussian
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.table import AccessError, PrivateTable, release_digest
from dpsynth.table.commitments import RunningDigest
from dpsynth.table.identity import record_keys
from dpsynth.testing.recording import RecordingTable
from dpsynth.testing.replay import measured_distance, record_and_replay

from .support import SCHEMA, small_frame

torch.set_num_threads(1)

KEY = b"teacher-partition-key-0123456789"
ADD_OR_REMOVE = NeighbouringRelation.ADD_OR_REMOVE_ONE
REPLACE = NeighbouringRelation.REPLACE_ONE


def _ledger(tmp_path, frame: pd.DataFrame, schema: Schema = SCHEMA, **kwargs):
    kwargs.setdefault("epsilon", 20.0)
    kwargs.setdefault("delta", 1e-6)
    return make_test_gate(tmp_path, frame=schema.validate(frame), **kwargs)


def _table(tl, frame: pd.DataFrame, schema: Schema = SCHEMA, *, seed: int = 1, cls: type = PrivateTable):
    return cls(frame, schema, tl.gate, dataset_key=tl.dataset_key, random_source=SeededRandomSource(seed))


def _entries(tl) -> tuple:
    """The ledger's entries, read afresh from its file."""
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        return store.snapshot().entries
    finally:
        store.close()


def _exact_counts(frame: pd.DataFrame) -> list[np.ndarray]:
    """By pandas, in the schema's category order (colour, flag: the categorical columns)."""
    return [frame["colour"].value_counts().reindex(["red", "green", "blue"], fill_value=0).to_numpy(),
            frame["flag"].value_counts().reindex([False, True], fill_value=0).to_numpy()]


# -- noisy category counts ----------------------------------------------------------------------
@pytest.mark.parametrize("relation", [ADD_OR_REMOVE, REPLACE])
def test_noisy_category_counts_are_exact_counts_plus_the_seeded_discrete_gaussian(tmp_path, relation):
    frame = small_frame(60)
    tl = _ledger(tmp_path, frame, relation=relation)
    t = _table(tl, frame, seed=5)
    z = 2.0
    counts = t.noisy_category_counts(None, z, purpose="counts", generator="dpctgan", run_id="r")
    # One record moves one cell of each of the k = 2 histograms: Δ₂ = √k (√(2k) under replace-one),
    # and the discrete Gaussian has σ = z·Δ₂.  Recomputed on a second source with the same seed.
    unit = math.sqrt(2.0) if relation is REPLACE else 1.0
    source = SeededRandomSource(5)
    noise = np.split(sample_discrete_gaussian(z * unit * math.sqrt(2), 5, source), [3])
    assert [c.dtype for c in counts] == [np.float64, np.float64]
    for c, e, n in zip(counts, _exact_counts(frame), noise):
        np.testing.assert_array_equal(c, e + n)
    charge, release = t.receipts
    assert event_from_json(charge.event) == GaussianEvent(z, relation=relation)
    assert release.kind == "release" and release.refs == [charge.sequence]
    assert release.commitment == release_digest(counts)
    # Only some columns: k = 1; the table's source goes on where it was.
    (flag,) = t.noisy_category_counts(["flag"], z, purpose="counts", generator="dpctgan", run_id="r")
    np.testing.assert_array_equal(flag, _exact_counts(frame)[1] + sample_discrete_gaussian(z * unit, 2, source))
    assert len(tl.gate.spent_costs()) == 2


def test_noisy_category_counts_refuse_bad_columns_before_any_charge(tmp_path):
    frame = small_frame(60)
    tl = _ledger(tmp_path, frame)
    t = _table(tl, frame)
    for columns, match in ((["shape"], "not a categorical column"), (["size"], "not a categorical column"),
                           (["flag", "flag"], "twice")):
        with pytest.raises(ValueError, match=match):
            t.noisy_category_counts(columns, 2.0, purpose="counts")
    with pytest.raises(ValueError):
        t.noisy_category_counts(None, 0.0, purpose="counts")
    assert _entries(tl) == () and t.receipts == ()


# -- the DP-SGD session -------------------------------------------------------------------------
def _parameters(spec: DiscriminatorSpec, dim: int, seed: int) -> dict[str, torch.Tensor]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        d = spec.build(dim)
    return {k: v.detach().clone() for k, v in d.named_parameters()}


def _flat(tensors) -> np.ndarray:
    return torch.cat([t.reshape(-1) for t in tensors]).double().numpy()


def test_dpsgd_session_charges_once_and_admits_exactly_its_steps(tmp_path):
    frame = small_frame(60)
    tl = _ledger(tmp_path, frame, epsilon=50.0, max_records=200)
    t = _table(tl, frame)
    spec = DiscriminatorSpec((8,), dropout=0.5)
    session = t.dpsgd_session(discriminator=spec, sampling_rate=0.5, noise_multiplier=1.5, steps=3,
                              max_grad_norm=1.0, purpose="DP-SGD", generator="dpctgan", run_id="r")
    charge, opened = t.receipts
    assert event_from_json(charge.event) == PoissonSubsampledGaussianEvent(0.5, 1.5, 3)
    assert opened.kind == "open" and opened.refs == [charge.sequence]
    params = _parameters(spec, session.input_dim, 0)
    digest = RunningDigest()
    for _ in range(3):
        out = session.step(params)
        assert [tuple(o.shape) for o in out] == [tuple(p.shape) for p in params.values()]
        digest.add(out)
    with pytest.raises(AccessError, match="paid for 3 steps"):
        session.step(params)
    assert session.steps_done == 3
    release = session.close()
    assert release.kind == "release" and release.refs == [charge.sequence]
    assert release.parameters["steps_released"] == 3
    assert release.commitment == digest.hexdigest()  # it commits to exactly the outputs that left
    with pytest.raises(AccessError, match="closed"):
        session.step(params)
    with pytest.raises(AccessError, match="closed"):
        session.close()
    assert len(tl.gate.spent_costs()) == 1
    assert [e.kind for e in _entries(tl)] == ["charge", "open", "release"]


def test_dpsgd_session_refuses_what_it_did_not_build(tmp_path):
    frame = small_frame(60)
    tl = _ledger(tmp_path, frame, epsilon=50.0, max_records=200)
    t = _table(tl, frame)
    spec = DiscriminatorSpec((8,), dropout=0.0)
    layout = t.layout()
    good = RealConditioning.for_layout(layout, [1.0] * 5)  # colour (3 slots) and flag (2)
    other_layout = TableTransformer.from_schema(Schema([Column("flag", "boolean"),
                                                        Column("colour", "categorical",
                                                               categories=["red", "green", "blue"])]))
    foreign = RealConditioning.for_layout(other_layout, [1.0] * 5)  # same slot count, other features
    common = dict(sampling_rate=0.5, noise_multiplier=1.0, steps=2, max_grad_norm=1.0, purpose="DP-SGD")
    for kwargs, exc, match in [
            (dict(discriminator=spec.build(layout.dim)), TypeError, "DiscriminatorSpec"),
            (dict(discriminator=spec, conditioning=good.to_dict()), TypeError, "RealConditioning"),
            (dict(discriminator=spec, conditioning=foreign), ValueError, "does not match the table's layout"),
            (dict(discriminator=spec, conditioning=RealConditioning((0, 1), (0, 0), (1.0, 1.0))), ValueError,
             "slot weights expected"),
            (dict(discriminator=spec, steps=0), ValueError, "steps"),
            (dict(discriminator=spec, sampling_rate=1.5), ValueError, "sampling_rate"),
            (dict(discriminator=spec, max_grad_norm=0.0), ValueError, "max_grad_norm")]:
        with pytest.raises(exc, match=match):
            t.dpsgd_session(**{**common, **kwargs})
    assert _entries(tl) == () and t.receipts == ()
    session = t.dpsgd_session(discriminator=spec, conditioning=good, **common)
    params = _parameters(spec, session.input_dim, 0)
    assert session.input_dim == layout.dim + 5
    bad = {"wrong shape": {**params, "out.bias": torch.zeros(2)},
           "missing": {k: v for k, v in params.items() if k != "out.bias"},
           "not finite": {**params, "out.bias": torch.tensor([float("nan")])},
           "other network": DiscriminatorSpec((9,), dropout=0.0).build(session.input_dim)}
    for name, p in bad.items():
        with pytest.raises(ValueError):
            session.step(p)
    with pytest.raises(TypeError):
        session.step([p for p in params.values()])
    assert session.steps_done == 0  # a refused step is no step: nothing released, none spent
    assert [e.kind for e in _entries(tl)] == ["charge", "open"]
    session.step(params)
    session.step(params)
    assert session.steps_done == 2


def _clipped_sum(spec, params, frame: pd.DataFrame, clip: float) -> np.ndarray:
    """An independent computation of one step's exact answer with q = 1 and no dropout: every
    record's gradient of softplus(-D(x)), one record at a time, clipped to C, summed."""
    x = torch.as_tensor(TableTransformer.from_schema(SCHEMA).transform(frame))
    d = spec.build(x.shape[1])
    d.load_state_dict(params)
    d.train()
    total = 0.0
    for row in x:
        grads = torch.autograd.grad(F.softplus(-d(row[None])).sum(), list(d.parameters()))
        g = torch.cat([t.reshape(-1) for t in grads]).double()
        total = total + g * min(1.0, clip / (float(g.norm()) + 1e-6))
    return total.numpy()


def test_dpsgd_noisy_sum_is_the_exact_clipped_sum_plus_gaussian_noise_from_the_source(tmp_path):
    frame = small_frame(30)
    tl = _ledger(tmp_path, frame, epsilon=50.0, max_records=100)
    t = _table(tl, frame, seed=9)
    spec, sigma, clip = DiscriminatorSpec((6,), dropout=0.0), 0.7, 0.5
    session = t.dpsgd_session(discriminator=spec, sampling_rate=1.0, noise_multiplier=sigma, steps=2,
                              max_grad_norm=clip, purpose="DP-SGD")
    steps = [_parameters(spec, session.input_dim, s) for s in (0, 1)]
    noisy = [_flat(session.step(p)) for p in steps]
    # The table's source, in its order: 4 words (the record-identity key of seeded mode), 1 word
    # (the session's uniform stream), then N(0, (σC)²) for every coordinate of each step.
    source = SeededRandomSource(9)
    source.words(4)
    source.words(1)
    for p, out in zip(steps, noisy):
        exact = _clipped_sum(spec, p, frame, clip)
        noise = sample_gaussian(sigma * clip, exact.size, source)
        np.testing.assert_allclose(out, exact + noise, rtol=0, atol=2e-6)
        assert np.linalg.norm(exact) <= len(frame) * clip  # clipping actually bounded the records
    assert not np.allclose(noisy[0], noisy[1])


def test_dpsgd_conditioning_weights_scale_each_record_before_clipping(tmp_path):
    """Slot weights of 0 zero every real row's loss: the exact sum is 0 and the output is the noise."""
    frame = small_frame(30)
    tl = _ledger(tmp_path, frame, epsilon=50.0, max_records=100)
    t = _table(tl, frame, seed=4)
    spec = DiscriminatorSpec((6,), dropout=0.0)
    zero = RealConditioning.for_layout(t.layout(), [0.0] * 5)
    session = t.dpsgd_session(discriminator=spec, conditioning=zero, sampling_rate=1.0, noise_multiplier=2.0,
                              steps=1, max_grad_norm=0.5, purpose="DP-SGD")
    out = _flat(session.step(_parameters(spec, session.input_dim, 0)))
    source = SeededRandomSource(4)
    source.words(5)
    np.testing.assert_array_equal(out, sample_gaussian(2.0 * 0.5, out.size, source).astype(np.float32))


def test_dpsgd_session_refuses_replace_one(tmp_path):
    frame = small_frame(30)
    tl = _ledger(tmp_path, frame, relation=REPLACE)
    t = _table(tl, frame)
    with pytest.raises(ValueError, match="add/remove-one only"):
        t.dpsgd_session(discriminator=DiscriminatorSpec((4,)), sampling_rate=0.5, noise_multiplier=1.0, steps=1,
                        max_grad_norm=1.0, purpose="DP-SGD")
    assert _entries(tl) == ()


# -- PATE ---------------------------------------------------------------------------------------
TEACHER = TeacherSpec(hidden=(8,), batch_size=16, learning_rate=0.05)


def _rows(m: int, dim: int, seed: int) -> torch.Tensor:
    return torch.rand(m, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("relation", [ADD_OR_REMOVE, REPLACE])
def test_pate_session_charges_gnmax_once_and_answers_at_most_q(tmp_path, relation):
    frame = small_frame(90)
    tl = _ledger(tmp_path, frame, epsilon=200.0, relation=relation)
    t = _table(tl, frame, seed=3, cls=RecordingTable)
    k, sigma = 5, 3.0
    session = t.pate_session(teachers=k, teacher=TEACHER, noise_multiplier=sigma, queries=6, purpose="PATE",
                             generator="pategan", run_id="r")
    charge, opened = t.receipts
    assert event_from_json(charge.event) == GNMaxEvent(sigma, 6, relation=relation)
    assert opened.kind == "open" and opened.refs == [charge.sequence]
    dim = session.layout.dim
    session.train(_rows(20, dim, 0), steps=3)
    votes = session.votes(_rows(4, dim, 1))
    assert votes.shape == (4, 2) and votes.dtype == np.int64
    (record,) = t.log
    exact = np.asarray(record.exact)
    assert exact.shape == (4, 2) and (exact.sum(axis=1) == k).all()  # one vote per teacher, before noise
    # Noise: 4 words (the partition key), 1 word (the teachers' stream), then the discrete
    # Gaussian of scale Δ₂/√2 · σ per vote count — σ under add/remove (Δ₂ = √2), 2σ under
    # replace-one (two teachers may move a vote each, the same way: Δ₂ = 2√2).
    delta_2 = 2 * math.sqrt(2) if relation is REPLACE else math.sqrt(2)
    assert record.measurement.sensitivity == pytest.approx(delta_2)
    scale = sigma * delta_2 / math.sqrt(2)
    source = SeededRandomSource(3)
    source.words(4)
    source.words(1)
    np.testing.assert_array_equal(votes, exact + sample_discrete_gaussian(scale, 8, source).reshape(4, 2))
    # What the noise buys is what was charged: Δ₂²/(2·scale²) per query = the event's ρ per query.
    assert delta_2 ** 2 / (2 * scale ** 2) == pytest.approx(event_rho(GNMaxEvent(sigma, 6, relation=relation)) / 6)
    with pytest.raises(AccessError, match="2 remain, 3 were asked"):
        session.votes(_rows(3, dim, 2))
    assert session.queries_done == 4
    session.votes(_rows(2, dim, 3))
    with pytest.raises(AccessError):
        session.votes(_rows(1, dim, 4))
    release = session.close()
    assert release.kind == "release" and release.refs == [charge.sequence]
    for call in (lambda: session.votes(_rows(1, dim, 5)), lambda: session.train(_rows(5, dim, 6))):
        with pytest.raises(AccessError, match="closed"):
            call()
    assert len(tl.gate.spent_costs()) == 1
    assert [e.kind for e in _entries(tl)] == ["charge", "open", "release"]


def test_pate_session_refuses_bad_arguments_before_any_charge(tmp_path):
    frame = small_frame(30)
    tl = _ledger(tmp_path, frame)
    t = _table(tl, frame)
    for kwargs, exc in [(dict(teachers=1), ValueError), (dict(teachers=True), ValueError),
                        (dict(queries=0), ValueError), (dict(noise_multiplier=0.0), ValueError),
                        (dict(teacher=DiscriminatorSpec()), TypeError)]:
        with pytest.raises(exc):
            t.pate_session(**{**dict(teachers=3, noise_multiplier=2.0, queries=4, purpose="PATE"), **kwargs})
    assert _entries(tl) == () and t.receipts == ()


def _assignments(frame: pd.DataFrame, k: int, key: bytes = KEY) -> list[tuple]:
    teachers = (record_keys(frame, key) % np.uint64(k)).astype(np.int64)
    return sorted(zip(map(tuple, frame.astype(str).to_numpy()), teachers.tolist()))


def test_keyed_partitions_one_record_moves_only_its_own_teacher():
    frame = pd.concat([small_frame(200, seed=4)] + [small_frame(1, seed=9)] * 3, ignore_index=True)  # 3 copies
    k = 7
    parts = (record_keys(frame, KEY) % np.uint64(k)).astype(np.int64)
    assert set(parts.tolist()) <= set(range(k))
    sizes = np.bincount(parts, minlength=k)
    assert sizes.min() >= 10  # about 29 each: balanced, even with duplicates
    base = _assignments(frame, k)
    for i in (0, 57, len(frame) - 1, len(frame) - 3):  # remove a unique row, or one of the three copies
        smaller = _assignments(frame.drop(index=i).sample(frac=1, random_state=i).reset_index(drop=True), k)
        moved = [x for x in base if x not in smaller or base.count(x) != smaller.count(x)]
        assert len(set(moved)) == 1  # exactly the removed record's assignment disappears ...
        assert len(smaller) == len(base) - 1 and set(smaller) <= set(base)  # ... and nothing else moved
    newcomer = small_frame(1, seed=123)
    bigger = _assignments(pd.concat([frame, newcomer], ignore_index=True), k)
    assert [x for x in bigger if x not in base] == _assignments(newcomer, k)  # others unchanged
    # Every copy of the record goes where its own copy index sends it, whatever the row order.
    keys = record_keys(frame, KEY)
    shuffled = frame.sample(frac=1, random_state=0)
    assert sorted(record_keys(shuffled, KEY).tolist()) == sorted(keys.tolist())
    assert len(set(keys[-3:].tolist())) == 3  # identical copies still get distinct keys
    assert not np.array_equal(keys, record_keys(frame, b"another-secret-key-0123456789ab"))


class _Pate:
    """The smallest PATE run: teachers train inside the table against public rows, then vote."""

    def fit(self, table) -> None:
        session = table.pate_session(teachers=5, teacher=TEACHER, noise_multiplier=3.0, queries=60, purpose="PATE",
                                     generator="pate-test")
        dim = session.layout.dim
        session.train(_rows(40, dim, 0), steps=30)
        self.votes = session.votes(_rows(60, dim, 1))
        session.close()


class _PateLabels:
    """The smallest run of label teachers: classifiers of `colour` on the partitions, then label votes."""

    def fit(self, table) -> None:
        session = table.pate_session(teachers=5, noise_multiplier=3.0, queries=60, purpose="PATE labels",
                                     generator="pate-test", label_column="colour")
        self.votes = session.label_votes(_rows(60, session.layout.dim, 1))
        session.close()


@pytest.mark.parametrize("relation", [ADD_OR_REMOVE, REPLACE])
def test_pate_label_votes_on_a_neighbour_move_one_teacher_per_query(tmp_path, relation):
    """As below, for the label teachers: every label teacher but the changed record's is the same
    function of its own partition, so each query's exact histogram over colour's slots moves by at
    most Δ₂ (one vote; two teachers under replace-one) and the frozen output is identical."""
    tables: list = []

    class Capture:
        def __init__(self, frame, *args, **kwargs) -> None:
            super().__init__(frame, *args, **kwargs)
            tables.append(self)

    frame = small_frame(80, seed=2)[["colour", "size", "flag"]]
    schema = Schema([c for c in SCHEMA.columns if c.name != "count"])
    report = record_and_replay(_PateLabels, frame, schema, relations=(relation,), fit=lambda g, t: g.fit(t),
                               release=lambda g: g.votes, epsilon=200.0, max_records=500, mixins=(Capture,),
                               directory=tmp_path, noise_seed=4)
    assert report.ok
    (record,) = report.records[relation.value]
    assert record.measurement.kind == "pate_label_votes"
    for replay in tables[1:]:
        moves = np.asarray(measured_distance("l2", record.exact, replay.exact[0]))
        assert moves.shape == (60,)
        squared = set(np.round(moves ** 2).astype(int).tolist())
        assert squared <= ({0, 2} if relation is ADD_OR_REMOVE else {0, 2, 8})


@pytest.mark.parametrize("relation", [ADD_OR_REMOVE, REPLACE])
def test_pate_votes_on_a_neighbour_move_one_teacher_per_query(tmp_path, relation):
    """Record and replay: on a neighbour every teacher but the changed record's trains exactly as
    before, so each query's exact histogram moves by at most Δ₂ (the harness checks it per
    query), and the frozen noisy votes give byte-identical output."""
    tables: list = []

    class Capture:
        def __init__(self, frame, *args, **kwargs) -> None:
            super().__init__(frame, *args, **kwargs)
            tables.append(self)

    frame = small_frame(80, seed=2)[["colour", "size", "flag"]]
    schema = Schema([c for c in SCHEMA.columns if c.name != "count"])
    report = record_and_replay(_Pate, frame, schema, relations=(relation,), fit=lambda g, t: g.fit(t),
                               release=lambda g: g.votes, epsilon=200.0, max_records=500, mixins=(Capture,),
                               directory=tmp_path, noise_seed=4)  # a seed where the changed teachers disagree somewhere
    assert report.ok
    (record,) = report.records[relation.value]
    for replay in tables[1:]:
        moves = np.asarray(measured_distance("l2", record.exact, replay.exact[0]))
        assert moves.shape == (60,)
        squared = set(np.round(moves ** 2).astype(int).tolist())
        assert 2 in squared  # teeth: the changed record's teacher moved a vote on some query
        if relation is ADD_OR_REMOVE:
            assert squared == {0, 2}  # one teacher changed: never more than one vote per query
        else:
            assert squared <= {0, 2, 8}  # two teachers changed: (−2, +2) at worst
