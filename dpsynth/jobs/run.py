"""`run_job`: validate everything, then fit, sample, save, evaluate and report — in that order.

`prepare` does every check that can fail on bad input (the files, the keys, the
policy's signature against the ledger, the schema against the data, the
generator's name and parameters, the dataset fingerprint) and builds the
`PrivateTable`; it reads the data but measures nothing, so a job that fails
there leaves the ledger untouched.  From `fit` on, every measurement is charged
by the table through the gate; a run that fails after a charge keeps its entry
(the privacy was spent).
"""

from __future__ import annotations

import inspect
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from accountant.gate import receipts_epsilon  # re-exported: a run's own ε

from .spec import JobError, JobSpec, load_job

__all__ = ["PreparedRun", "RunResult", "prepare", "run_job", "receipts_epsilon"]

Progress = Callable[[str], None]

_ENGINE_NAMES = {"duckdb": "DuckDB", "spark": "Spark", "postgres": "PostgreSQL"}

# The steps of a run, in order (what a progress bar counts).
STEPS = ("fit", "sample", "save", "evaluate", "report")
LEARN_STEP = "learn schema"  # first, when the job has a [schema] section and facts to learn


@dataclass
class PreparedRun:
    """A validated job, ready to measure: the open gate, the private table, the generator."""

    spec: JobSpec
    gate: Any
    schema: Any
    table: Any                    # dpsynth.table.PrivateTable over the training rows
    generator: Any
    real_train: pd.DataFrame | None = field(repr=False)  # None for a DuckDB source (rows stay in the engine)
    holdout: pd.DataFrame | None = field(repr=False)
    learn: bool = False           # [schema]: learn the schema's undeclared facts before the fit
    # output.proportions with its values read as the schema's categories (checked before any charge)
    proportions: dict | None = None

    def close(self) -> None:
        self.gate.close()


@dataclass
class RunResult:
    """What a run spent and wrote."""

    spec: JobSpec
    generator: Any                # the fitted model
    receipts: list
    epsilon_run: float            # full-curve ε (policy δ) of this run's events
    epsilon_ledger: float         # the ledger's filter ε after the run (the guarantee)
    epsilon_budget: float
    delta: float
    evaluation: Any               # dpsynth.evaluate.EvaluationReport
    seconds: dict[str, float]
    budget: Any = None            # accountant.words.BudgetWords after the run: the share used, what remains

    @property
    def synthetic_path(self) -> Path:
        return self.spec.synthetic

    @property
    def model_path(self) -> Path:
        return self.spec.model

    @property
    def report_path(self) -> Path:
        return self.spec.report


# --------------------------------------------------------------------------- validation

def _open_gate(spec: JobSpec):
    from accountant.gate import Gate, LedgerIntegrityError
    from accountant.keys import KeyFileError, load_private_key, load_public_key
    from accountant.ledger.store import LedgerStoreError
    from accountant.policy import PolicyError

    try:
        ledger_key = load_private_key(spec.ledger_key)
    except KeyFileError as exc:
        raise JobError("ledger.key", str(exc)) from None
    officer = None
    if spec.officer_key is not None:
        try:
            officer = load_public_key(spec.officer_key)
        except KeyFileError as exc:
            raise JobError("policy.officer_key", str(exc)) from None
    try:
        return Gate.open(spec.ledger, ledger_key=ledger_key, officer_public_key=officer)
    except PolicyError as exc:
        text = str(exc)
        where = ("ledger.key" if "ledger key" in text else "policy.officer_key" if "officer key" in text
                 else "ledger.path")
        raise JobError(where, text) from None
    except (LedgerStoreError, LedgerIntegrityError, OSError) as exc:
        raise JobError("ledger.path", f"cannot open the ledger: {exc}") from None


def _check_policy_file(spec: JobSpec, gate: Any) -> None:
    """The job's policy must be, byte for byte, the signed policy the ledger was opened under."""
    from accountant.keys import public_key_from_pem
    from accountant.policy import PolicyError, policy_hash, read_signature, verify_policy_signature

    raw = spec.policy.read_bytes()
    md = gate.metadata
    if policy_hash(raw) != md.policy_sha256:
        raise JobError("policy.path", "is not the policy this ledger was opened under (its SHA-256 differs)")
    try:
        sig = read_signature(spec.policy_signature)
        verify_policy_signature(raw, sig, public_key_from_pem(md.officer_public_key))
    except PolicyError as exc:
        raise JobError("policy.signature", str(exc)) from None


def _generator_class(spec: JobSpec, gate: Any):
    try:
        from dpsynth.generators import GENERATORS
    except ImportError as exc:  # a part of dpsynth not installed yet
        raise JobError("generator.name", f"the generators cannot be loaded: {exc}") from None
    if spec.generator not in GENERATORS:
        raise JobError("generator.name", f"unknown generator {spec.generator!r}; choose one of "
                                         f"{', '.join(sorted(GENERATORS))}")
    if not gate.policy.allows_generator(spec.generator):
        raise JobError("generator.name", f"the policy does not allow {spec.generator!r} (it allows "
                                         f"{', '.join(gate.policy.generators)})")
    return GENERATORS[spec.generator]


def build_generator(cls: type, epsilon: float, parameters: dict, *, seed: int | None = None,
                    progress: bool = False, field_prefix: str = "generator.parameters"):
    """`cls(epsilon=..., **parameters)`, with a constructor error turned into a JobError naming the field."""
    kwargs = dict(parameters)
    accepted = inspect.signature(cls.__init__).parameters
    if "progress" in accepted:
        kwargs["progress"] = progress
    if seed is not None and "seed" in accepted:
        kwargs["seed"] = seed
    for key in parameters:
        if key not in accepted and not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            allowed = sorted(k for k in accepted if k not in ("self", "epsilon", "progress", "seed"))
            raise JobError(f"{field_prefix}.{key}", f"{cls.__name__} has no parameter {key!r} "
                                                    f"(it takes {', '.join(allowed)})")
    try:
        return cls(epsilon=epsilon, **kwargs)
    except (TypeError, ValueError) as exc:
        m = re.search(r"^(\w+)", str(exc))
        key = m.group(1) if m and m.group(1) in parameters else None
        raise JobError(f"{field_prefix}.{key}" if key else field_prefix, str(exc)) from None


def _load_data(spec: JobSpec, gate: Any, *, complete: bool = True):
    from accountant.fingerprint import fingerprint_table, load_dataset_key
    from dpsynth.schema import Schema, SchemaError

    try:
        schema = Schema.load(spec.schema)
    except SchemaError as exc:
        raise JobError("data.schema", str(exc)) from None
    for col in schema.columns:
        if complete and not col.is_complete:
            what = "categories" if col.is_discrete else "bins (lower, upper, bins)"
            raise JobError("data.schema", f"column {col.name!r} has no declared {what}; declare them, or add a "
                                          "[schema] section so that the job learns them through the ledger first")
    if spec.target is not None and spec.target not in schema.names:
        raise JobError("evaluate.target", f"the schema has no column {spec.target!r}")
    for col in spec.sensitive:
        if col not in schema.names:
            raise JobError("evaluate.sensitive", f"the schema has no column {col!r}")
        if not schema.column(col).is_discrete or col == spec.target:
            raise JobError("evaluate.sensitive", f"column {col!r} must be categorical (or boolean) and not the "
                                                 "target")
    if spec.sensitive:
        t = schema.column(spec.target)
        if not t.is_discrete or t.n_values != 2:
            raise JobError("evaluate.sensitive", f"the fairness figures need a binary target; {spec.target!r} "
                                                 "has not two categories")
    if spec.engine != "memory":
        # The files stay in the engine: they are fingerprinted and checked by the PrivateTable.
        from dpsynth.table import DuckDBQuerySource, DuckDBSource, PostgresSource, SparkSource

        try:
            if spec.query is not None:
                if spec.postgres is not None:
                    return schema, PostgresSource(spec.postgres, spec.query)
                return schema, DuckDBQuerySource(spec.attach, spec.query, memory_limit=spec.memory_limit)
            if spec.engine == "spark":
                return schema, SparkSource(spec.data, master=spec.spark_master)
            return schema, DuckDBSource(spec.data, memory_limit=spec.memory_limit)
        except (ValueError, OSError) as exc:
            raise JobError("data.path" if spec.query is None else "data.query", str(exc)) from None
    from .tables import read_table

    try:
        frame = read_table(spec.data)
    except ImportError as exc:
        raise JobError("data.path", f"cannot read Parquet: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the parser's message may quote private values
        raise JobError("data.path", f"cannot read the table ({type(exc).__name__})") from None
    for name in schema.names:
        if name not in frame.columns:
            raise JobError("data.path", f"the table has no column {name!r} (named in the schema)")
    extra = [str(c) for c in frame.columns if c not in schema.names]
    if extra:
        raise JobError("data.path", f"column {extra[0]!r} is not in the schema (declare it, or drop it from the "
                                    "table)")
    # Every value against the schema: the error names the column and the problem, never a row
    # or a value (the holder lists the rows with `dpsynth data check`).
    from dpsynth.schema import EncodingError

    try:
        checked = schema.validate(frame)
    except (EncodingError, SchemaError, ValueError) as exc:
        raise JobError("data.path", f"{exc} (the data holder lists the rows with `dpsynth data check "
                                    f"{spec.data.name} --schema {spec.schema.name}`)") from None
    if spec.dataset_key is None:
        raise JobError("data.dataset_key", "is required: the table must be shown to be the dataset the policy "
                                           "governs")
    try:
        key = load_dataset_key(spec.dataset_key)
    except (ValueError, OSError) as exc:
        raise JobError("data.dataset_key", str(exc)) from None
    # The fingerprint is of the table as read (as `dpsynth policy fingerprint` computes it).
    if fingerprint_table(frame, key) != gate.dataset_fingerprint:
        raise JobError("data.dataset_key", "this key and the table (data.path) do not give the keyed "
                                           f"fingerprint the policy governs ({gate.policy.dataset_name!r}): "
                                           "wrong table or wrong key")
    frame = checked
    return schema, frame


def learn_schema_job(job: JobSpec | str | Path, epsilon: float, delta: float | None = None, *,
                     bins: int = 16) -> tuple[Any, dict[str, str], Any]:
    """(the learned schema, {column: what was learned and what could not be}, the budget in
    words after it) for the job's table: the schema file's missing categories and bins learned
    through the job's gate (charged under the purpose "schema", which the policy must allow;
    refused up front, nothing charged, otherwise)."""
    from accountant.fingerprint import load_dataset_key
    from accountant.words import budget_words
    from dpsynth.table import PrivateTable

    spec = job if isinstance(job, JobSpec) else load_job(job)
    gate = _open_gate(spec)
    try:
        _check_policy_file(spec, gate)
        schema, frame = _load_data(spec, gate, complete=False)
        table = PrivateTable(frame, schema, gate, dataset_key=load_dataset_key(spec.dataset_key), actor=spec.actor)
        learned = table.learn_schema(epsilon, delta, bins=bins)
        words = budget_words(gate.filter, gate.spent_costs(), max_epsilon_per_run=gate.policy.max_epsilon_per_run)
        return learned, dict(table.learning_notes), words
    finally:
        gate.close()


def prepare(job: JobSpec | str | Path, *, progress: bool = False) -> PreparedRun:
    """Every check of the job, and the private table; measures nothing (so charges nothing)."""
    spec = job if isinstance(job, JobSpec) else load_job(job)
    gate = _open_gate(spec)
    try:
        _check_policy_file(spec, gate)
        cls = _generator_class(spec, gate)
        cap = gate.policy.max_epsilon_per_run
        if cap is not None and spec.epsilon > cap:
            raise JobError("generator.epsilon", f"{spec.epsilon:g} exceeds the policy's max_epsilon_per_run {cap:g}")
        if spec.seed is not None and not gate.policy.allow_seeded_noise:
            raise JobError("seed", "the policy does not allow seeded test noise (allow_seeded_noise = false); "
                                   "a seed is for tests only")
        if spec.engine != "memory":
            from dpsynth.generators.marginal.base import MarginalGenerator

            engine = _ENGINE_NAMES[spec.engine]
            if not issubclass(cls, MarginalGenerator):
                raise JobError("generator.name", f"{spec.generator} reads the rows one by one (DP-SGD / PATE): it "
                                                 "needs the table in memory (data.engine = \"memory\", one CSV or "
                                                 f"Parquet file); the {engine} engine serves the marginal generators "
                                                 "(mst, aim, independent)")
            if spec.holdout > 0:
                raise JobError("evaluate.holdout", "a holdout split needs the table in memory (data.engine = "
                                                   f"\"memory\"); set holdout = 0 for a {engine} source")
        generator = build_generator(cls, spec.epsilon, dict(spec.parameters), seed=spec.seed, progress=progress)
        learning = spec.learn_epsilon is not None
        schema, frame = _load_data(spec, gate, complete=not learning)
        table, train, holdout = _private_table(frame, schema, gate, spec)
        if learning and table.schema.incomplete():
            if spec.engine != "memory":
                raise JobError("schema", "learning a schema runs on the table in memory; learn it first with "
                                         "`dpsynth schema learn` on an in-memory job, then declare it")
            _check_learning_and_fit(generator, table, gate, spec)
            proportions = None
            if spec.proportions is not None:
                (pcol, _), = spec.proportions.items()
                if pcol in table.schema.incomplete():
                    raise JobError(f"output.proportions.{pcol}", "rebalances a column whose categories the job "
                                                                 "learns: declare them (shares are of known values)")
                proportions = job_proportions(spec, table.schema)
            return PreparedRun(spec, gate, table.schema, table, generator, train, holdout, learn=True,
                               proportions=proportions)
        _preflight(generator, table, spec)
        proportions = job_proportions(spec, table.schema)
        # The table's schema: the file's, with how the table writes its values filled in.
        return PreparedRun(spec, gate, table.schema, table, generator, train, holdout, proportions=proportions)
    except BaseException:
        gate.close()
        raise


def _learning_events(table: Any, spec: JobSpec) -> list:
    from accountant.errors import PolicyViolation

    try:
        return table.learning_events(spec.learn_epsilon, spec.learn_delta, bins=spec.learn_bins)
    except PolicyViolation:
        raise
    except ValueError as exc:
        text = str(exc)
        raise JobError("schema.learn_delta" if "delta" in text else "schema", text) from None


def _planned_run_events(generator: Any, table: Any, gate: Any) -> list:
    """What the fit will charge, from public facts known before the schema is complete."""
    from dpsynth.generators.planned_events import planned_events

    has_categories = True if any(c.is_discrete for c in table.schema.columns) else None
    return planned_events(generator.generator_name, generator.epsilon, ledger_filter=gate.filter,
                          max_records=gate.policy.max_records, relation=gate.relation,
                          has_categories=has_categories, model=generator)


def _check_learning_and_fit(generator: Any, table: Any, gate: Any, spec: JobSpec) -> None:
    """Schema learning and the fit after it, checked together before either measures: the
    ledger must admit both (RDP at α* and the δ reserve), so that a learning charge is never
    followed by a fit the budget refuses."""
    import math as _math

    from accountant.gate import BudgetExceeded
    from accountant.rdp import event_delta
    from accountant.words import budget_words

    try:
        run_events = _planned_run_events(generator, table, gate)
    except ValueError as exc:
        raise JobError("generator.parameters", str(exc)) from None
    learn_events = _learning_events(table, spec)
    f, costs = gate.filter, gate.spent_costs()
    need = _math.fsum(f.cost(e) for e in (*learn_events, *run_events))
    need_delta = _math.fsum(float(event_delta(e)) for e in learn_events)
    if not f.admits(costs, need) or need_delta > gate.remaining_delta():
        words = budget_words(f, costs, max_epsilon_per_run=gate.policy.max_epsilon_per_run)
        raise BudgetExceeded(
            f"privacy budget exceeded: learning the schema (epsilon {spec.learn_epsilon:g}) and then this "
            f"{spec.generator} run (epsilon {spec.epsilon:g}) need more than remains: {words.headline}; "
            f"{words.next_run}; nothing was charged (detail: RDP {need:.6g} at order {f.order:.4g} of "
            f"{f.remaining(costs):.6g} left; delta {need_delta:.3g} of {gate.remaining_delta():.3g} left in the "
            "reserve)", requested=need, remaining=f.remaining(costs), budget=f.budget, order=f.order,
            epsilon_spent=f.epsilon_spent(costs), epsilon_budget=f.epsilon, delta=f.delta)


def job_proportions(spec: JobSpec, schema: Any) -> dict | None:
    """output.proportions with each value (a TOML key, so a string) read as the schema category
    it spells, checked by the sampler's own planner (dpsynth.generators.proportions) before
    anything is measured.  Errors name the field."""
    if spec.proportions is None:
        return None
    from dpsynth.generators.proportions import plan_shares

    (col, shares), = spec.proportions.items()
    where = f"output.proportions.{col}"
    if col not in schema.names:
        raise JobError(where, f"the schema has no column {col!r}")
    column = schema.column(col)
    if not column.is_discrete:
        raise JobError(where, f"column {col!r} is {column.kind}; rebalance a categorical or boolean column")
    by_label = {str(c).lower() if isinstance(c, bool) else str(c): c for c in column.categories}
    converted = {}
    for key, share in shares.items():
        if key not in by_label:
            raise JobError(f"{where}.{key}", f"{key!r} is not a category of column {col!r}")
        converted[by_label[key]] = share
    values = list(column.categories) + ([None] if column.nullable else [])
    try:
        plan_shares(spec.n_samples, {col: converted}, lambda _c: (values, int(column.other_code is not None)))
    except (TypeError, ValueError) as exc:
        raise JobError(where, str(exc)) from None
    return {col: converted}


def _preflight(generator: Any, table: Any, spec: JobSpec) -> None:
    """The generator's own pre-measurement checks (its plan against the schema, the policy
    and what the ledger still admits), so that `--check` catches what `fit` would refuse.
    A refused budget stays BudgetExceeded / PolicyViolation (exit 2: nothing was charged)."""
    check = getattr(generator, "preflight", None)
    if check is None:
        return
    from accountant.gate import BudgetExceeded, PolicyViolation

    try:
        check(table)
    except (BudgetExceeded, PolicyViolation):
        raise
    except (TypeError, ValueError) as exc:
        m = re.search(r"^(\w+)", str(exc))
        key = m.group(1) if m and m.group(1) in spec.parameters else None
        field = f"generator.parameters.{key}" if key else (
            "generator.epsilon" if str(exc).startswith("epsilon") else "generator.parameters")
        raise JobError(field, str(exc)) from None


def _private_table(frame: pd.DataFrame, schema: Any, gate: Any, spec: JobSpec):
    """(the private table of the rows the fit may use, those rows, the held-out rows or None).

    The table is bound to the governed dataset by the dataset key; with a holdout, the
    split is a uniform random permutation independent of the data (`PrivateTable.split`)."""
    from accountant.fingerprint import load_dataset_key
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    if spec.dataset_key is None:
        raise JobError("data.dataset_key", "is required: the table must be shown to be the dataset the policy "
                                           "governs")
    key = load_dataset_key(spec.dataset_key)
    source = SeededRandomSource(spec.seed) if spec.seed is not None else None
    if spec.engine != "memory":
        return _engine_table(frame, schema, gate, spec, key, source), None, None
    try:
        if spec.holdout > 0:
            return PrivateTable.split(frame, schema, gate, holdout=spec.holdout, dataset_key=key, seed=spec.seed,
                                      random_source=source, actor=spec.actor)
        return PrivateTable(frame, schema, gate, dataset_key=key, random_source=source, actor=spec.actor), frame, None
    except (ValueError, KeyError) as exc:
        # Encoding errors name the column, never a row or a value.
        text = str(exc)
        raise JobError("evaluate.holdout" if text.startswith("holdout") else "data.path", text) from None


def _engine_table(files: Any, schema: Any, gate: Any, spec: JobSpec, key: bytes, source: Any):
    """The private table over an engine source (DuckDB, Spark): fingerprinted (the files' bytes),
    then checked in the engine; errors name the field, the column and the problem, never a row
    or a value."""
    from accountant.errors import DatasetMismatch
    from dpsynth.schema import EncodingError
    from dpsynth.table import EngineError, NeedsTableInMemory, PrivateTable, SourceChanged

    data_field = "data.path" if spec.query is None else "data.query"
    try:
        return PrivateTable(files, schema, gate, dataset_key=key, random_source=source, actor=spec.actor)
    except DatasetMismatch as exc:
        if spec.query is not None:
            how = ("a query's fingerprint is of the rows it returns: dpsynth policy fingerprint --query QUERY "
                   + ("--postgres DSN" if spec.postgres is not None else "--attach FILE"))
        else:
            how = ("an engine source's fingerprint is of its files' bytes: dpsynth policy fingerprint --engine "
                   f"{spec.engine}")
        raise JobError("data.dataset_key", f"{exc} ({how})") from None
    except ImportError as exc:
        raise JobError("data.engine", str(exc)) from None
    except (EncodingError, EngineError, NeedsTableInMemory, SourceChanged) as exc:
        raise JobError(data_field if not isinstance(exc, NeedsTableInMemory) else "data.schema", str(exc)) from None
    except ValueError as exc:
        raise JobError(data_field, str(exc)) from None


# --------------------------------------------------------------------------- the run

def run_job(job: JobSpec | str | Path, *, progress: Progress | None = None, show_progress: bool = False,
            evaluate: bool = True) -> RunResult:
    """Run a job end to end (see the module docstring).  `progress(step)` is called as each
    step in `STEPS` starts; `show_progress` turns on the generator's own progress bar."""
    prepared = prepare(job, progress=show_progress)
    try:
        return execute(prepared, progress=progress, evaluate=evaluate)
    finally:
        prepared.close()


def _learn_schema(prepared: PreparedRun) -> None:
    """The job's [schema] step: learn, save the learned schema, then the fit's own checks on it.

    The learned schema is a release of its own (charged under "schema", written to
    schema.save); the fit's checks that need the complete domain (e.g. AIM's model size) can
    only run now, and a refusal says that the schema was learned and saved."""
    import os
    import tempfile

    spec, table = prepared.spec, prepared.table
    learned = table.learn_schema(spec.learn_epsilon, spec.learn_delta, bins=spec.learn_bins)
    target = spec.learned_schema
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:  # never half-written
        learned.save(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    prepared.schema = table.schema
    try:
        _preflight(prepared.generator, table, spec)
    except Exception as exc:
        raise JobError("generator", f"the schema was learned and saved to {spec.learned_schema} (that charge "
                                    f"bought it: declare it as data.schema next time); the fit was refused and "
                                    f"nothing more was charged: {exc}") from None


def execute(prepared: PreparedRun, *, progress: Progress | None = None, evaluate: bool = True) -> RunResult:
    """The measuring part of `run_job`, on a `prepare`d job."""
    from accountant.words import budget_words

    from .quality import evaluate_synthetic
    from .report import write_run_report
    from .tables import atomic_write, write_table

    spec, gate, gen = prepared.spec, prepared.gate, prepared.generator
    step = progress or (lambda _name: None)
    seconds: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        step(name)
        t0 = time.perf_counter()
        out = fn()
        seconds[name] = time.perf_counter() - t0
        return out

    if prepared.learn:
        timed(LEARN_STEP, lambda: _learn_schema(prepared))
    timed("fit", lambda: gen.fit(prepared.table, gate, actor=spec.actor))
    # Rebalanced rows are drawn block by block in memory (dpsynth.generators.proportions).
    streamed = spec.synthetic.suffix.lower() == ".parquet" and hasattr(gen, "sample_to_parquet") and \
        prepared.proportions is None
    if streamed:  # written in chunks: memory bounded whatever n_samples is
        timed("sample", lambda: gen.sample_to_parquet(spec.synthetic, spec.n_samples, seed=spec.seed))
        synthetic = None
        timed("save", lambda: atomic_write(spec.model, gen.save))
    else:
        extra = {} if prepared.proportions is None else {"proportions": prepared.proportions}
        synthetic = timed("sample", lambda: gen.sample(spec.n_samples, seed=spec.seed, **extra))
        timed("save", lambda: (write_table(synthetic, spec.synthetic), atomic_write(spec.model, gen.save)))
    receipts = list(gen.receipts)
    md = gate.metadata
    evaluation = None
    # The evaluation compares with the real rows in memory: not for a DuckDB source.
    evaluate = evaluate and prepared.real_train is not None
    if evaluate and synthetic is None:
        from .tables import read_table

        synthetic = read_table(spec.synthetic)
    if evaluate:
        meta = {"generator": spec.generator, "epsilon (this run)": spec.epsilon, "delta (policy)": md.delta,
                "dataset": gate.policy.dataset_name, "synthetic rows": spec.n_samples,
                "holdout share": spec.holdout}
        if prepared.proportions is not None:
            from dpsynth.generators.proportions import REBALANCE_NOTE

            (pcol, shares), = prepared.proportions.items()
            meta["rebalanced"] = f"{pcol}: {', '.join(f'{v} {s:g}' for v, s in shares.items())} — {REBALANCE_NOTE}"
        evaluation = timed("evaluate", lambda: evaluate_synthetic(
            prepared.real_train, synthetic, prepared.schema, holdout=prepared.holdout, target=spec.target,
            sensitive=spec.sensitive,
            utility_models=spec.models, seed=spec.seed or 0, metadata=meta))
    result = RunResult(
        spec=spec, generator=gen, receipts=receipts,
        epsilon_run=receipts_epsilon(receipts, md.delta),
        epsilon_ledger=float(receipts[-1].epsilon_filter) if receipts else math.nan,
        epsilon_budget=float(md.epsilon), delta=float(md.delta), evaluation=evaluation, seconds=seconds,
        budget=budget_words(gate.filter, gate.spent_costs(), max_epsilon_per_run=gate.policy.max_epsilon_per_run))
    timed("report", lambda: write_run_report(result, spec.report))
    return result
