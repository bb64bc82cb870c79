"""Attacks on the private table's public methods (threat model #1-#4 and #10, and beyond).

Each test replays an attack through the public API and checks the refusal AND that nothing
was written to the ledger (byte for byte) or released.
"""

from __future__ import annotations

import copy
import inspect
import math
import pickle
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from accountant.errors import DatasetMismatch, InvalidReceipt, PolicyViolation
from accountant.events import GaussianEvent
from accountant.fingerprint import generate_dataset_key
from accountant.gate import BudgetExceeded, Gate
from dpsynth.nn import DiscriminatorSpec, RealConditioning, TeacherSpec
from dpsynth.noise.randomness import RandomSource, SecureRandomSource, SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.table import PrivateTable
from dpsynth.table.commitments import release_digest
from dpsynth.table.dpsgd import AccessError
from dpsynth.table.sensitivity import SensitivityViolation, check_one_hot_rows

from .support import SCHEMA, governed, ledger_bytes, ledger_rows, small_frame, table_on

TINY = DiscriminatorSpec((4,), 0.0)


@pytest.fixture
def ledger(tmp_path):
    return governed(tmp_path / "ledger")


def _params(session, fill: float = 0.0) -> dict:
    """Parameters of the right shapes (a caller's discriminator at some point of training)."""
    gen = torch.Generator().manual_seed(0)
    return {name: fill + 0.1 * torch.randn(shape, generator=gen)
            for name, shape in zip(session.parameter_names, _shapes(session))}


def _shapes(session) -> list[tuple[int, ...]]:
    module = TINY.build(session.input_dim)
    return [tuple(p.shape) for _, p in module.named_parameters()]


# --------------------------------------------------------------------------- 1. teachers

def test_caller_code_training_teachers_on_partitions_is_refused(ledger):
    table = table_on(ledger)
    before = ledger_bytes(ledger.ledger_path)
    assert not hasattr(table, "train_teachers"), "the old path handed raw partitions to caller code"
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, d):
            super().__init__()
            self.lin = torch.nn.Linear(d, 1)

        def forward(self, x):
            seen.append(x.detach().clone())
            return self.lin(x).squeeze(-1)

    class EvilTeacher(TeacherSpec):
        def build(self, input_dim):
            return Spy(input_dim)

    for hostile in (lambda partition: partition, Spy(9), EvilTeacher(), {"hidden": [4]}):
        with pytest.raises(TypeError):
            table.pate_session(teachers=2, teacher=hostile, noise_multiplier=50.0, queries=1, purpose="steal")
    assert ledger_bytes(ledger.ledger_path) == before, "a refused session charged or opened something"

    # A genuine spec whose `build` was swapped on the instance: the table builds from the
    # numbers only, so the caller's code never runs on a partition.
    spec = TeacherSpec((4,), batch_size=8)
    object.__setattr__(spec, "build", lambda input_dim: Spy(input_dim))
    session = table.pate_session(teachers=2, teacher=spec, noise_multiplier=50.0, queries=2, purpose="pate")
    session.train(np.zeros((3, session.layout.dim), np.float32), steps=2)
    votes = session.votes(np.zeros((2, session.layout.dim), np.float32))
    session.close()
    assert seen == [], "caller code saw the teachers' training rows"
    assert votes.shape == (2, 2)


# --------------------------------------------------------------------------- 2. DP-SGD

def test_raw_rows_through_the_dpsgd_path_is_refused(ledger):
    table = table_on(ledger)
    before = ledger_bytes(ledger.ledger_path)
    assert not hasattr(table, "poisson_batches"), "the old path yielded raw rows to the caller"
    seen = []

    class Spy(torch.nn.Module):
        uniform_width = 0

        def __init__(self, d):
            super().__init__()
            self.lin = torch.nn.Linear(d, 1)

        def forward(self, x, u=None):
            seen.append(x.detach().clone())
            return self.lin(x).squeeze(-1)

    class EvilSpec(DiscriminatorSpec):
        def build(self, input_dim):
            return Spy(input_dim)

    class EvilConditioning(RealConditioning):
        def condition(self, rows, uniform):
            seen.append(rows.detach().clone())
            return super().condition(rows, uniform)

    plan = dict(sampling_rate=1.0, noise_multiplier=5.0, steps=1, max_grad_norm=1.0, purpose="steal")
    for hostile in (EvilSpec((4,), 0.0), Spy(9), lambda batch: batch):
        with pytest.raises(TypeError):
            table.dpsgd_session(discriminator=hostile, **plan)
    layout = table.layout()
    evil = EvilConditioning.for_layout(layout, [1.0] * sum(b.width for b in layout.categorical_blocks))
    with pytest.raises(TypeError):
        table.dpsgd_session(discriminator=TINY, conditioning=evil, **plan)
    assert ledger_bytes(ledger.ledger_path) == before, "a refused session charged or opened something"

    # Genuine objects whose methods were swapped on the instance never run on the rows either.
    spec = DiscriminatorSpec((4,), 0.0)
    object.__setattr__(spec, "build", lambda input_dim: Spy(input_dim))
    cond = RealConditioning.for_layout(layout, [1.0] * sum(b.width for b in layout.categorical_blocks))
    object.__setattr__(cond, "condition", lambda rows, uniform: seen.append(rows) or (rows, rows[:, 0]))
    session = table.dpsgd_session(discriminator=spec, conditioning=cond, **{**plan, "steps": 2})
    out = session.step(_params(session))
    assert seen == [], "caller code saw the real rows"
    # Only the noisy clipped sum leaves: one tensor per parameter, of the parameter's shape.
    assert [tuple(t.shape) for t in out] == _shapes(session)
    for hostile in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            hostile(session)
    assert "<private>" in repr(session)
    session.close()


def test_receipt_replay_for_a_second_release_is_refused(ledger):
    table = table_on(ledger, seed=1)
    table.noisy_count(5.0, purpose="one honest count")
    charge = table.charges[-1]
    # No public method of the table opens data for a receipt.
    for name, member in inspect.getmembers(PrivateTable, predicate=callable):
        if not name.startswith("_"):
            params = inspect.signature(member).parameters
            assert not any("receipt" in p for p in params), f"PrivateTable.{name} takes a receipt"
    before = ledger_bytes(ledger.ledger_path)
    gate = ledger.gate
    for _ in range(5):  # the old attack replayed one receipt five times
        with pytest.raises(InvalidReceipt):
            gate.release(charge, release_digest(123))
        with pytest.raises(InvalidReceipt):
            gate.open_release(charge)
    # The same receipt through a second gate (another process) is refused the same way.
    other = Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    try:
        with pytest.raises(InvalidReceipt):
            other.release(charge, release_digest(123))
    finally:
        other.close()
    assert ledger_bytes(ledger.ledger_path) == before


def test_concurrent_double_release_is_refused(ledger):
    gate = ledger.gate
    charge = gate.charge(GaussianEvent(50.0), purpose="one charge")
    gates = [Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key) for _ in range(4)]
    barrier = threading.Barrier(len(gates))
    outcomes: list[str] = []

    def release(g, i):
        barrier.wait()
        try:
            g.release(charge, release_digest(i))
            outcomes.append("released")
        except InvalidReceipt:
            outcomes.append("refused")

    threads = [threading.Thread(target=release, args=(g, i)) for i, g in enumerate(gates)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for g in gates:
        g.close()
    assert sorted(outcomes) == ["refused"] * 3 + ["released"]
    kinds = [r.split('"kind":"')[1].split('"')[0] for r in ledger_rows(ledger.ledger_path)]
    assert kinds == ["charge", "release"]


def test_dpsgd_step_beyond_the_plan_is_refused(ledger):
    table = table_on(ledger)
    session = table.dpsgd_session(discriminator=TINY, sampling_rate=0.5, noise_multiplier=5.0, steps=2,
                                  max_grad_norm=1.0, purpose="two steps")
    params = _params(session)
    session.step(params)
    session.step(params)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(AccessError):
        session.step(params)
    assert session.steps_done == 2
    release = session.close()
    assert release.kind == "release"
    after_close = ledger_bytes(ledger.ledger_path)
    assert len(after_close[0]) == len(before[0]) + 1
    for again in (lambda: session.step(params), session.close):
        with pytest.raises(AccessError):
            again()
    # The old attack: a second full training on the receipt of the first.  Neither a second
    # open nor a second release of the same charge is accepted; sealing it twice neither.
    gate = ledger.gate
    with pytest.raises(InvalidReceipt):
        gate.open_release(session.receipt)
    with pytest.raises(InvalidReceipt):
        gate.release(session.receipt, release_digest("a second training"))
    gate.seal([session.receipt], release_digest("model"), purpose="seal once")
    sealed = ledger_bytes(ledger.ledger_path)
    with pytest.raises(InvalidReceipt):
        gate.seal([session.receipt], release_digest("another model"), purpose="seal twice")
    assert ledger_bytes(ledger.ledger_path) == sealed


def test_data_dependent_step_failure_is_not_a_free_bit(ledger):
    """Hole found: parameters chosen so that a record's gradient overflows made `step` raise
    before counting the step, iff the Poisson sample held such a record; retried at will this
    answered "is there a blue row?" exactly, without noise.  Now such a record contributes
    zero (its term has norm 0 <= C) and any failure ends the session."""
    table = table_on(ledger)
    session = table.dpsgd_session(discriminator=TINY, sampling_rate=1.0, noise_multiplier=20.0, steps=20,
                                  max_grad_norm=1.0, purpose="probe")
    layout = session.layout
    answers = []
    for j in range(layout.dim):  # one probe per feature: "does any row have feature j set?"
        params = {n: torch.zeros(s) for n, s in zip(session.parameter_names, _shapes(session))}
        params["hidden.0.weight"][:, j] = 3e38
        params["hidden.0.bias"][:] = 3e38
        params["out.weight"][:] = 1e-10
        out = session.step(params)
        answers.append(all(torch.all(torch.isfinite(t)) for t in out))
    assert all(answers) and session.steps_done == layout.dim, "a step's failure depended on the rows"
    # Parameters finite in float64 but infinite in the network's float32 are refused up front.
    params = {n: torch.zeros(s, dtype=torch.float64) for n, s in zip(session.parameter_names, _shapes(session))}
    params["out.bias"][:] = 1e300
    with pytest.raises(ValueError):
        session.step(params)
    assert session.steps_done == layout.dim
    session.close()


# --------------------------------------------------------------------------- 3. category counts

def test_caller_transformer_for_category_counts_is_refused(ledger):
    table = table_on(ledger, seed=3)
    before = ledger_bytes(ledger.ledger_path)
    # The old attack passed a transformer that turned "age" into a one-column block: the
    # "count" was the exact sum of ages.  There is no transformer argument, and a numeric
    # column is not a category block of the table's own layout.
    with pytest.raises(TypeError):
        table.noisy_category_counts(None, 1.0, purpose="p", transformer=lambda frame: frame[["size"]])
    for columns in (["size"], ["count"], ["colour", "colour"], ["nope"]):
        with pytest.raises(ValueError):
            table.noisy_category_counts(columns, 1.0, purpose="sum of sizes")
    assert ledger_bytes(ledger.ledger_path) == before
    counts = table.noisy_category_counts(None, 10.0, purpose="counts")
    widths = [b.width for b in table.layout().categorical_blocks]
    assert [len(c) for c in counts] == widths
    assert all(np.all(c == np.round(c)) for c in counts), "category counts are integer counts plus integer noise"


def test_category_count_noise_is_scaled_by_root_k(tmp_path):
    """Δ₂ = √k over k blocks: the discrete Gaussian noise has scale z·√k, not z."""
    many = [f"c{i}" for i in range(200)]
    schema = Schema([Column("colour", "categorical", categories=["red", "green", *many]),
                     Column("flag", "boolean")])
    frame = small_frame()[["colour", "flag"]]
    ledger = governed(tmp_path / "l", frame, epsilon=50.0)
    table = PrivateTable(frame, schema, ledger.gate, dataset_key=ledger.dataset_key,
                         random_source=SeededRandomSource(7))
    exact = [frame["colour"].value_counts().reindex(["red", "green", *many], fill_value=0).to_numpy(),
             frame["flag"].value_counts().reindex([False, True], fill_value=0).to_numpy()]
    z = 30.0
    noise = []
    for _ in range(5):
        counts = table.noisy_category_counts(None, z, purpose="counts")
        noise += [c - e for c, e in zip(counts, exact)]
    sd = float(np.std(np.concatenate(noise)))
    assert abs(sd / (z * math.sqrt(2)) - 1) < 0.1, sd  # k = 2 blocks: 42.4, not 30


def test_layout_not_one_hot_per_record_is_refused():
    table = pd.DataFrame({"colour": ["red"], "flag": [True]})
    from dpsynth.nn import TableTransformer

    layout = TableTransformer.from_schema(Schema([Column("colour", "categorical", categories=["red", "green"]),
                                                  Column("flag", "boolean")]))
    blocks = layout.categorical_blocks
    good = layout.transform(table)
    check_one_hot_rows(good, blocks, "counts")
    for bad in (np.array([[1.0, 1.0, 0.0, 1.0]]),      # one record in two cells of a block
                np.array([[0.0, 0.0, 0.0, 1.0]]),      # one record in no cell
                np.array([[37.0, 0.0, 0.0, 1.0]])):    # a value (an age) instead of a one
        with pytest.raises(SensitivityViolation):
            check_one_hot_rows(bad, blocks, "counts")


# --------------------------------------------------------------------------- 4. random sources

def test_random_source_subclass_labelled_secure_is_refused(ledger):
    frame = small_frame()
    before = ledger_bytes(ledger.ledger_path)

    class Replayable(SecureRandomSource):
        is_seeded = False  # the old check read this attribute

        def __init__(self):
            super().__init__()
            self._inner = SeededRandomSource(0)

        def words(self, n):
            return self._inner.words(n)

    class SeededButSecure(SeededRandomSource):
        is_seeded = False

    for source in (Replayable(), SeededButSecure(0), RandomSource, object(), np.random.default_rng(0)):
        with pytest.raises(TypeError):
            PrivateTable(frame, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key, random_source=source)
    assert ledger_bytes(ledger.ledger_path) == before
    table = PrivateTable(frame, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key)
    assert table.noise_source == "secure"
    table.noisy_count(5.0, purpose="count")
    assert all('"noise_source":"secure"' in r for r in ledger_rows(ledger.ledger_path))


def test_seeded_source_under_a_production_policy_is_refused(tmp_path):
    frame = small_frame()
    ledger = governed(tmp_path / "prod", frame, allow_seeded_noise=False)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(PermissionError):
        PrivateTable(frame, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key, random_source=SeededRandomSource(0))
    with pytest.raises(PermissionError):
        PrivateTable.split(frame, SCHEMA, ledger.gate, holdout=0.2, dataset_key=ledger.dataset_key,
                           random_source=SeededRandomSource(0))
    with pytest.raises(PolicyViolation):
        ledger.gate.charge(GaussianEvent(10.0), purpose="p", noise_source="seeded-test")
    assert ledger_bytes(ledger.ledger_path) == before


# --------------------------------------------------------------------------- 10. dataset key, max_records, compare

def test_table_without_dataset_key_is_refused(ledger):
    frame = small_frame()
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(ValueError, match="dataset_key is required"):
        PrivateTable(frame, SCHEMA, ledger.gate)
    with pytest.raises(DatasetMismatch):
        PrivateTable(frame, SCHEMA, ledger.gate, dataset_key=generate_dataset_key())
    with pytest.raises(TypeError):
        PrivateTable(frame, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key.hex())
    other = frame.copy()
    other.loc[7, "size"] = 9.5  # another table under the right key
    with pytest.raises(DatasetMismatch):
        PrivateTable(other, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key)
    with pytest.raises(ValueError, match="dataset_key is required"):
        PrivateTable.split(frame, SCHEMA, ledger.gate, holdout=0.25)
    assert ledger_bytes(ledger.ledger_path) == before


def test_table_above_max_records_is_refused(tmp_path):
    frame = small_frame(60)
    ledger = governed(tmp_path / "l", frame, max_records=50)
    before = ledger_bytes(ledger.ledger_path)
    for make in (lambda: PrivateTable(frame, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key),
                 lambda: PrivateTable.split(frame, SCHEMA, ledger.gate, holdout=0.5, dataset_key=ledger.dataset_key)):
        with pytest.raises(ValueError, match="max_records") as err:
            make()
        assert "60" not in str(err.value), "the error names the private row count"
    assert ledger_bytes(ledger.ledger_path) == before


def test_compare_on_a_ledger_of_its_own_is_refused(tmp_path):
    from typer.testing import CliRunner

    from dpsynth.cli import app
    from dpsynth.compare import compare

    frame = small_frame()
    ledger = governed(tmp_path / "officer", frame, epsilon=5.0)
    before = ledger_bytes(ledger.ledger_path)
    out = tmp_path / "cmp"
    # compare takes no ledger of its own: the gate (the officer's ledger) is required.
    assert inspect.signature(compare).parameters["gate"].default is inspect.Parameter.empty
    # The old attack ran at epsilon 500 under its own ledger; on the officer's it is refused
    # up front, nothing charged, nothing written.
    with pytest.raises(BudgetExceeded):
        compare(frame, SCHEMA, gate=ledger.gate, dataset_key=ledger.dataset_key, generators=["independent"],
                epsilons=[500.0], out=out, seed=0, utility_models=[])
    with pytest.raises(ValueError, match="dataset_key is required"):
        compare(frame, SCHEMA, gate=ledger.gate, dataset_key=None, generators=["independent"], epsilons=[0.1],
                out=out, utility_models=[])
    foreign = governed(tmp_path / "foreign", small_frame(60, seed=5))
    with pytest.raises(DatasetMismatch):
        compare(frame, SCHEMA, gate=foreign.gate, dataset_key=foreign.dataset_key, generators=["independent"],
                epsilons=[0.1], out=out, utility_models=[])
    for eps in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError):
            compare(frame, SCHEMA, gate=ledger.gate, dataset_key=ledger.dataset_key, generators=["independent"],
                    epsilons=[eps], out=out, utility_models=[])
    assert ledger_bytes(ledger.ledger_path) == before
    assert not out.exists()
    # The command has no way to make a ledger for a real table: a job file (the officer's
    # ledger) or --demo (made-up data), nothing else.
    res = CliRunner().invoke(app, ["compare", "--out", str(out)])
    assert res.exit_code == 1 and "--demo" in res.output
    assert not out.exists()


# --------------------------------------------------------------------------- custom code

def test_custom_code_without_policy_permission_is_refused(ledger):
    table = table_on(ledger)
    before = ledger_bytes(ledger.ledger_path)
    called = []

    def mechanism(frame):
        called.append(len(frame))
        return float(frame["size"].sum())

    with pytest.raises(PolicyViolation):
        table.custom_measurement(mechanism, [GaussianEvent(1.0)], purpose="my own sum")
    with pytest.raises(PolicyViolation):
        ledger.gate.charge(GaussianEvent(1.0), purpose="p", code_sha256="0" * 64)
    assert called == []
    assert ledger_bytes(ledger.ledger_path) == before


def test_custom_code_is_recorded_by_its_hash(tmp_path):
    frame = small_frame()
    ledger = governed(tmp_path / "l", frame, allow_custom_code=True)
    table = table_on(ledger)
    from dpsynth.table.custom import code_digest

    def mechanism(rows):
        return 1

    assert table.custom_measurement(mechanism, [GaussianEvent(10.0)], purpose="allowed") == 1
    charge, release = ledger_rows(ledger.ledger_path)
    assert f'"code_sha256":"{code_digest(mechanism)}"' in charge and '"kind":"release"' in release
    with pytest.raises(TypeError):
        table.custom_measurement(len, [GaussianEvent(10.0)], purpose="a builtin has no code to hash")
    assert len(ledger_rows(ledger.ledger_path)) == 2


# --------------------------------------------------------------------------- hostile arguments

BAD_REALS = [float("nan"), float("inf"), -1.0, 0.0, True, "1", None]
# A noise scale of 1e-320 is a legal float whose σ² underflows to 0: the charge's cost is
# infinite and must be refused (it raised ZeroDivisionError inside the gate before).
NOISE_SCALES = ("noisy_count", "measure_marginals", "measure_marginals (list)", "category counts", "pate sigma")


def test_hostile_numbers_are_refused_before_any_charge(ledger):
    table = table_on(ledger, seed=0)
    before = ledger_bytes(ledger.ledger_path)
    calls = {
        "noisy_count": lambda x: table.noisy_count(x, purpose="p"),
        "measure_marginals": lambda x: table.measure_marginals([("colour",)], x, purpose="p", generator="mst",
                                                               run_id="r"),
        "measure_marginals (list)": lambda x: table.measure_marginals([("colour",), ("flag",)], [1.0, x],
                                                                      purpose="p", generator="mst", run_id="r"),
        "select_marginal": lambda x: table.select_marginal([("colour",)], [np.zeros(3)], x, purpose="p",
                                                           generator="aim", run_id="r"),
        "quantiles": lambda x: table.quantiles("size", [0.5], x, lower=0, upper=10, purpose="p"),
        "quantile level": lambda x: table.quantiles("size", [x], 1.0, lower=0, upper=10, purpose="p"),
        "category counts": lambda x: table.noisy_category_counts(None, x, purpose="p"),
        "dpsgd rate": lambda x: table.dpsgd_session(discriminator=TINY, sampling_rate=x, noise_multiplier=5.0,
                                                    steps=1, max_grad_norm=1.0, purpose="p"),
        "dpsgd clip": lambda x: table.dpsgd_session(discriminator=TINY, sampling_rate=0.5, noise_multiplier=5.0,
                                                    steps=1, max_grad_norm=x, purpose="p"),
        "pate sigma": lambda x: table.pate_session(teachers=2, noise_multiplier=x, queries=1, purpose="p"),
    }
    for name, call in calls.items():
        for x in BAD_REALS + ([1e-320] if name in NOISE_SCALES else []):
            try:
                call(x)
            except (TypeError, ValueError, PolicyViolation, BudgetExceeded):
                pass
            else:
                pytest.fail(f"{name}({x!r}) was accepted")
            assert ledger_bytes(ledger.ledger_path) == before, f"{name}({x!r}) wrote to the ledger"
    for steps in (0, -1, True, 1.5, 10**9, "3"):
        with pytest.raises((TypeError, ValueError)):
            table.dpsgd_session(discriminator=TINY, sampling_rate=0.5, noise_multiplier=5.0, steps=steps,
                                max_grad_norm=1.0, purpose="p")
    for teachers, queries in ((1, 1), (True, 1), (2, 0), (2, True), (2.0, 1)):
        with pytest.raises((TypeError, ValueError)):
            table.pate_session(teachers=teachers, noise_multiplier=5.0, queries=queries, purpose="p")
    for purpose in ("", "   ", None, 5, "x" * 5000):
        with pytest.raises((TypeError, ValueError, PolicyViolation)):
            table.noisy_count(5.0, purpose=purpose)
    assert ledger_bytes(ledger.ledger_path) == before


def test_score_overflow_bit_from_selection_is_refused(ledger):
    """Hole found: a caller weight so large that w·||M(D) - e||₁ overflows to inf made the
    exponential mechanism raise after the charge, naming the candidate, iff the estimate was
    not (nearly) the exact marginal: a deterministic, un-noised bit per near-free charge (ε
    tiny).  Scores are now bounded from public facts before anything is charged."""
    table = table_on(ledger, seed=0)
    before = ledger_bytes(ledger.ledger_path)
    for weights, offsets, estimate in (([1e308], None, np.zeros(3)), ([1e300], None, np.zeros(3)),
                                       ([1.0], [1e308], np.zeros(3)), ([1.0], None, np.full(3, 1e308))):
        with pytest.raises(ValueError, match="overflow"):
            table.select_marginal([("colour",)], [estimate], 1e-9, weights=weights, offsets=offsets,
                                  purpose="probe", generator="aim", run_id="r")
    assert ledger_bytes(ledger.ledger_path) == before
    pick = table.select_marginal([("colour",), ("flag",)], [np.zeros(3), np.zeros(2)], 1.0, weights=[1e6, 1.0],
                                 purpose="fine", generator="aim", run_id="r")
    assert pick in (0, 1)


def test_pate_query_and_session_misuse_is_refused(ledger):
    table = table_on(ledger)
    session = table.pate_session(teachers=2, teacher=TeacherSpec((4,), batch_size=8), noise_multiplier=50.0,
                                 queries=3, purpose="pate")
    dim = session.layout.dim
    for rows in (np.zeros((2, dim + 1)), np.zeros(dim), np.full((2, dim), np.nan), np.zeros((0, dim))):
        with pytest.raises(ValueError):
            session.votes(rows)
        with pytest.raises(ValueError):
            session.train(rows)
    session.votes(np.zeros((3, dim), np.float32))
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(AccessError):
        session.votes(np.zeros((1, dim), np.float32))
    for hostile in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            hostile(session)
    assert ledger_bytes(ledger.ledger_path) == before
    session.close()
    for again in (lambda: session.votes(np.zeros((1, dim), np.float32)), lambda: session.train(np.zeros((1, dim))),
                  session.close):
        with pytest.raises(AccessError):
            again()


def test_table_cannot_be_pickled_copied_or_printed(ledger):
    table = table_on(ledger)
    for hostile in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            hostile(table)
    text = repr(table) + str(table)
    assert "red" not in text and "60" not in text
    assert not any(name in dir(table) for name in ("frame", "rows", "data", "codes"))


def test_split_edge_cases_are_refused(ledger):
    frame = small_frame()
    before = ledger_bytes(ledger.ledger_path)
    for holdout in (0.0, 1.0, -0.1, float("nan"), True, "0.2", 0.001, 0.999):
        with pytest.raises((TypeError, ValueError)):
            PrivateTable.split(frame, SCHEMA, ledger.gate, holdout=holdout, dataset_key=ledger.dataset_key)
    assert ledger_bytes(ledger.ledger_path) == before
    table, keep, held = PrivateTable.split(frame, SCHEMA, ledger.gate, holdout=0.25,
                                           dataset_key=ledger.dataset_key, seed=3)
    assert len(keep) + len(held) == len(frame) and len(held) == 15
    both = pd.concat([keep, held]).sort_values(list(frame.columns)).reset_index(drop=True)
    assert both.equals(frame.sort_values(list(frame.columns)).reset_index(drop=True))
    # The fit table holds exactly the kept rows (a charged count of them, with little noise).
    assert abs(table.noisy_count(0.5, purpose="count") - len(keep)) <= 3


def test_caller_parameters_overwriting_the_recorded_measurement_are_refused(ledger):
    """Hole found: the caller's `parameters` were merged last into the entry's parameters, so a
    charge at σ = 2 could be recorded as σ = 1000 (or as another measurement) for the auditor."""
    import json

    table = table_on(ledger, seed=0)
    table.measure_marginals([("colour",)], 2.0, purpose="p", generator="mst", run_id="r",
                            parameters={"sigmas": [1000.0], "measurement": "nothing", "cliques": [], "note": "ok"})
    charge = json.loads(ledger_rows(ledger.ledger_path)[0])
    assert charge["parameters"]["sigmas"] == [2.0] and charge["parameters"]["measurement"] == "marginals"
    assert charge["parameters"]["cliques"] == [["colour"]] and charge["parameters"]["note"] == "ok"
