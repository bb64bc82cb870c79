"""JOB.toml: what one synthesis run reads, spends and writes — parsed and checked.

A job file (paths are relative to the job file's folder)::

    actor = "alice"                      # optional; recorded in every ledger entry
    # seed = 0                           # TESTS ONLY: seeded noise, marked "seeded-test"

    [data]
    path = "data.csv"                    # .csv or .parquet, or a glob of Parquet files
                                         # ("parts/*.parquet": read by DuckDB, out of core)
    # engine = "duckdb"                  # "memory" (default for one file), "duckdb" (a glob's
                                         # default) or "spark"; see docs/scale.md
    # spark = "local[2]"                 # the Spark master (engine = "spark"; Parquet only)
    # query = "SELECT … FROM people"     # instead of path: one read-only SELECT, run by the
    # postgres = "postgresql://reader@db/census"   # database (PostgreSQL: password in PGPASSWORD
    # attach = "census.duckdb"           # or ~/.pgpass) or a DuckDB file attached read-only
    # memory_limit = "2GB"               # DuckDB's memory limit (engine = "duckdb")
    schema = "schema.toml"               # the public schema (.toml or .json)
    dataset_key = "keys/dataset.key"     # the data holder's secret key: the table must be the
                                         # dataset the policy governs (its keyed fingerprint)

    [policy]
    path = "policy.toml"                 # the officer's signed policy ...
    signature = "policy.toml.sig"        # ... its signature (default: PATH.sig)
    officer_key = "keys/officer.pub"     # optional: pin the officer's public key

    [ledger]
    path = "ledger.db"
    key = "keys/ledger.key"              # the ledger's private key (signs the entries)

    [generator]
    name = "mst"                         # a key of dpsynth.generators.GENERATORS
    epsilon = 1.0                        # this run's share; delta is the policy's
    parameters = { iters = 500 }         # passed to the generator's constructor

    [output]
    synthetic = "out/synthetic.csv"      # .csv or .parquet (Parquet needs pyarrow, checked first)
    model = "out/model.pt"
    report = "out/report.html"
    n_samples = 5000
    overwrite = false
    # proportions = { sex = { Female = 0.5 } }   # optional: rebalance one categorical column by
                                         # conditional sampling (free; docs/fairness.md)

    [schema]                             # optional: learn what data.schema leaves undeclared
    learn_epsilon = 0.1                  # through the ledger first (purpose "schema"): categories
    learn_delta = 1e-9                   # by key discovery (δ from the policy's delta_reserve),
    bins = 16                            # numeric bins by DP quantiles; checked with the run's
    save = "out/schema.learned.toml"     # own spend before either measures; the learned schema

    [evaluate]                           # optional
    holdout = 0.2                        # share of rows kept out of the fit, for utility
    target = "income"                    # classification target for utility
    models = ["logistic_regression", "gradient_boosting"]   # the default
    sensitive = ["sex", "race"]          # optional: per-group fairness figures (needs target)

`load_job` checks types, ranges, unknown keys, that the input files exist and
that every output can be written (folder writable, Parquet writer installed);
`dpsynth.jobs.run.prepare` then checks everything that needs the files
(signature, ledger key, schema against the data, generator parameters).  Both
run before any measurement; every error is a `JobError` naming its field.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["JobError", "JobSpec", "load_job", "parse_job", "TABLE_SUFFIXES", "parquet_writer_available"]

TABLE_SUFFIXES = (".csv", ".parquet")
ENGINES = ("memory", "duckdb", "spark", "postgres")

_SECTIONS: dict[str, set[str]] = {
    "data": {"path", "schema", "dataset_key", "engine", "memory_limit", "spark", "query", "postgres", "attach"},
    "policy": {"path", "signature", "officer_key"},
    "ledger": {"path", "key"},
    "generator": {"name", "epsilon", "parameters"},
    "output": {"synthetic", "model", "report", "n_samples", "overwrite", "proportions"},
    "evaluate": {"holdout", "target", "models", "sensitive"},
    "schema": {"learn_epsilon", "learn_delta", "bins", "save"},
}
_TOP_LEVEL = {"actor", "seed"} | set(_SECTIONS)
_REQUIRED_SECTIONS = ("data", "policy", "ledger", "generator", "output")


class JobError(ValueError):
    """A job file is invalid.  `field` is the dotted name of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class JobSpec:
    """A validated job.  Paths are absolute."""

    data: Path
    schema: Path
    policy: Path
    policy_signature: Path
    ledger: Path
    ledger_key: Path
    generator: str
    epsilon: float
    synthetic: Path
    model: Path
    report: Path
    n_samples: int
    parameters: Mapping[str, Any] = field(default_factory=dict)
    dataset_key: Path | None = None     # required by parse_job; None only for hand-built specs
    officer_key: Path | None = None
    overwrite: bool = False
    holdout: float = 0.0
    target: str | None = None
    models: tuple[str, ...] = ("logistic_regression", "gradient_boosting")
    seed: int | None = None
    actor: str | None = None
    source: Path | None = None  # the job file, when read from one
    engine: str = "memory"      # "memory" (pandas) or "duckdb" (the files stay in the engine)
    memory_limit: str = "2GB"   # DuckDB's memory limit
    spark_master: str = "local[2]"  # data.spark: the Spark master (engine = "spark")
    data_files: tuple[Path, ...] = ()  # what data.path matched (a glob)
    query: str | None = None    # data.query: one read-only SELECT, run by the database's engine
    postgres: str | None = None  # data.postgres: the PostgreSQL DSN (engine = "postgres"; no password)
    attach: Path | None = None  # data.attach: a DuckDB database file the query reads (read-only)
    learn_epsilon: float | None = None  # [schema]: learn the schema's undeclared facts first
    learn_delta: float | None = None
    learn_bins: int = 16
    learned_schema: Path | None = None  # where the learned schema is written
    sensitive: tuple[str, ...] = ()     # columns whose groups the report measures (fairness)
    proportions: Mapping[str, Mapping[str, float]] | None = None  # {column: {value: share}}


def load_job(path: str | os.PathLike) -> JobSpec:
    """Read and check a JOB.toml (relative paths are resolved against its folder)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise JobError("job", f"cannot read {p}: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise JobError("job", f"{p} is not valid TOML: {exc}") from None
    spec = parse_job(data, base=p.resolve().parent)
    return JobSpec(**{**spec.__dict__, "source": p.resolve()})


def parse_job(data: Mapping[str, Any], *, base: str | os.PathLike = ".") -> JobSpec:
    """Check a job given as a mapping (the parsed TOML); paths relative to `base`."""
    base = Path(base)
    if not isinstance(data, Mapping):
        raise JobError("job", "a job is a TOML table")
    _no_unknown(data, _TOP_LEVEL, "")
    for name in _REQUIRED_SECTIONS:
        if name not in data:
            raise JobError(name, f"the [{name}] section is required")
    sections = {name: _section(data, name) for name in _SECTIONS}
    for name, allowed in _SECTIONS.items():
        _no_unknown(sections[name], allowed, name + ".")

    d, pol, led, gen, out, ev = (sections[k] for k in ("data", "policy", "ledger", "generator", "output",
                                                       "evaluate"))
    query_source = _query_source(d, base)
    if query_source is None:
        data_path, data_files, engine, memory_limit = _data_source(d, base)
        query_fields: dict[str, Any] = {}
    else:
        data_path, data_files, engine, memory_limit, query_fields = query_source
    spark_master = _spark_master(d, engine)
    schema_path = _input_file(d, "data", "schema", base)
    if schema_path.suffix.lower() not in (".toml", ".json"):
        raise JobError("data.schema", f"must end in .toml or .json, got {schema_path.name!r}")
    dataset_key = _input_file(d, "data", "dataset_key", base)

    policy_path = _input_file(pol, "policy", "path", base)
    signature = _input_file(pol, "policy", "signature", base, required=False)
    if signature is None:
        signature = policy_path.with_name(policy_path.name + ".sig")
        if not signature.is_file():
            raise JobError("policy.signature", f"no signature beside the policy ({signature}); sign it first "
                                               "(dpsynth policy sign) or name the file")
    officer_key = _input_file(pol, "policy", "officer_key", base, required=False)

    ledger_path = _input_file(led, "ledger", "path", base)
    ledger_key = _input_file(led, "ledger", "key", base)

    name = _string(gen, "generator.name")
    epsilon = _positive_number(gen, "generator.epsilon")
    parameters = gen.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise JobError("generator.parameters", "must be a table of keyword arguments")
    for key in parameters:
        if key in ("epsilon", "seed", "progress"):
            raise JobError(f"generator.parameters.{key}",
                           "is set by the job itself (generator.epsilon, seed, the command's progress flag)")

    outputs = {}
    for key in ("synthetic", "model", "report"):
        outputs[key] = _output_path(out, key, base)
    if outputs["synthetic"].suffix.lower() not in TABLE_SUFFIXES:
        raise JobError("output.synthetic", f"must end in {' or '.join(TABLE_SUFFIXES)}")
    if outputs["synthetic"].suffix.lower() == ".parquet" and not parquet_writer_available():
        raise JobError("output.synthetic", "a .parquet output needs pyarrow (pip install pyarrow), and it is not "
                                           "installed; nothing was charged")
    if outputs["report"].suffix.lower() not in (".html", ".htm"):
        raise JobError("output.report", "must end in .html")
    seen: dict[Path, str] = {}
    for key, path in outputs.items():
        if path in seen:
            raise JobError(f"output.{key}", f"is the same file as output.{seen[path]}")
        # The officer's key and the ledger's SQLite side files are inputs too: overwriting the
        # first replaces the trust anchor, the others corrupt the ledger under the open gate.
        protected = (data_path, *data_files, schema_path, policy_path, signature, ledger_path, ledger_key, dataset_key,
                     officer_key, *(ledger_path.with_name(ledger_path.name + s) for s in ("-wal", "-shm", "-journal")))
        if path in protected:
            raise JobError(f"output.{key}", "would overwrite one of the job's inputs")
        seen[path] = key
    overwrite = out.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise JobError("output.overwrite", "must be true or false")
    if not overwrite:
        for key, path in outputs.items():
            if path.exists():
                raise JobError(f"output.{key}", f"{path} exists (set output.overwrite = true to replace it)")
    n_samples = out.get("n_samples")
    if n_samples is None:
        raise JobError("output.n_samples", "is required (the number of synthetic rows to write)")
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise JobError("output.n_samples", f"must be an integer >= 1, got {n_samples!r}")

    holdout = ev.get("holdout", 0.0)
    if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not (0 <= holdout < 1):
        raise JobError("evaluate.holdout", f"must be a number in [0, 1), got {holdout!r}")
    target = ev.get("target")
    if target is not None and (not isinstance(target, str) or not target):
        raise JobError("evaluate.target", "must be a column name")
    models = ev.get("models", ["logistic_regression", "gradient_boosting"])
    known = ("logistic_regression", "gradient_boosting")
    if not isinstance(models, list) or any(m not in known for m in models):
        raise JobError("evaluate.models", f"must be a list of {', '.join(known)}, got {models!r}")

    learn = _schema_learning(sections["schema"], base, outputs, overwrite, protected_inputs=protected)

    sensitive = ev.get("sensitive", [])
    if not isinstance(sensitive, list) or any(not isinstance(c, str) or not c for c in sensitive) or \
            len(set(sensitive)) != len(sensitive):
        raise JobError("evaluate.sensitive", f"must be a list of distinct column names, got {sensitive!r}")
    if sensitive and target is None:
        raise JobError("evaluate.sensitive", "needs evaluate.target (the fairness figures are of a classifier)")
    proportions = out.get("proportions")
    if proportions is not None:
        if not isinstance(proportions, Mapping) or len(proportions) != 1:
            raise JobError("output.proportions", "must be a table { column = { value = share, ... } } of one column")
        (pcol, shares), = proportions.items()
        if not isinstance(shares, Mapping) or not shares:
            raise JobError(f"output.proportions.{pcol}", "must be a non-empty table { value = share, ... }")
        for value, share in shares.items():
            if isinstance(share, bool) or not isinstance(share, (int, float)) or not (
                    math.isfinite(share) and 0 <= share <= 1):
                raise JobError(f"output.proportions.{pcol}.{value}", f"must be a number in [0, 1], got {share!r}")
        proportions = {pcol: dict(shares)}

    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise JobError("seed", f"must be a non-negative integer, got {seed!r}")
    actor = data.get("actor")
    if actor is not None and (not isinstance(actor, str) or not actor.strip()):
        raise JobError("actor", "must be a non-empty string")

    return JobSpec(
        data=data_path, schema=schema_path, policy=policy_path, policy_signature=signature,
        ledger=ledger_path, ledger_key=ledger_key, generator=name, epsilon=epsilon,
        synthetic=outputs["synthetic"], model=outputs["model"], report=outputs["report"],
        n_samples=n_samples, parameters=dict(parameters), dataset_key=dataset_key, officer_key=officer_key,
        overwrite=overwrite, holdout=float(holdout), target=target, models=tuple(models), seed=seed, actor=actor,
        engine=engine, memory_limit=memory_limit, data_files=data_files, spark_master=spark_master,
        sensitive=tuple(sensitive), proportions=proportions, **query_fields, **learn)


def _schema_learning(sc: Mapping[str, Any], base: Path, outputs: Mapping[str, Path], overwrite: bool, *,
                     protected_inputs: tuple) -> dict[str, Any]:
    """The [schema] section: learn the schema file's undeclared facts through the ledger before
    the fit (JobSpec's learn_* fields), or {} when the section is absent."""
    if not sc:
        return {}
    eps = sc.get("learn_epsilon")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
        raise JobError("schema.learn_epsilon", f"must be a finite number > 0 (the ε schema learning may spend), "
                                               f"got {eps!r}")
    dlt = sc.get("learn_delta")
    if dlt is not None and (isinstance(dlt, bool) or not isinstance(dlt, (int, float)) or not 0 < dlt < 1):
        raise JobError("schema.learn_delta", f"must be a number in (0, 1), got {dlt!r}")
    bins = sc.get("bins", 16)
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= 1000:
        raise JobError("schema.bins", f"must be an integer from 1 to 1000, got {bins!r}")
    if "save" not in sc:
        raise JobError("schema.save", "is required: where the learned schema is written (.toml or .json), so "
                                      "that later runs declare it instead of learning it again")
    save = _output_path(sc, "save", base, field="schema.save")
    if save.suffix.lower() not in (".toml", ".json"):
        raise JobError("schema.save", f"must end in .toml or .json, got {save.name!r}")
    if save in outputs.values() or save in protected_inputs:
        raise JobError("schema.save", "would overwrite one of the job's inputs or outputs")
    if not overwrite and save.exists():
        raise JobError("schema.save", f"{save} exists (set output.overwrite = true to replace it)")
    return {"learn_epsilon": float(eps), "learn_delta": None if dlt is None else float(dlt), "learn_bins": bins,
            "learned_schema": save}


def _data_source(d: Mapping[str, Any], base: Path) -> tuple[Path, tuple[Path, ...], str, str]:
    """(data.path, the files it matches, the engine, DuckDB's memory limit)."""
    import glob as _glob
    import re

    engine = d.get("engine")
    if engine is None and "spark" in d:
        engine = "spark"  # naming a Spark master names the engine
    if engine is not None and engine not in ENGINES:
        raise JobError("data.engine", f"must be \"memory\", \"duckdb\", \"spark\" or \"postgres\", got {engine!r}")
    if engine == "postgres":
        raise JobError("data.engine", "\"postgres\" runs data.query in the database data.postgres names")
    memory_limit = d.get("memory_limit", "2GB")
    if not isinstance(memory_limit, str) or not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*",
                                                               memory_limit, flags=re.I):
        raise JobError("data.memory_limit", f"must be a size such as \"2GB\", got {memory_limit!r}")
    raw = d.get("path")
    if isinstance(raw, str) and re.search(r"[*?\[]", raw):
        p = _path(d, "data", "path", base, True)
        if p.suffix.lower() != ".parquet":
            raise JobError("data.path", "a glob must name Parquet files (end in .parquet)")
        if engine == "memory":
            raise JobError("data.engine", "a glob of Parquet files is read by an engine (engine = \"duckdb\" or "
                                          "\"spark\")")
        files = tuple(sorted(Path(f).resolve() for f in _glob.glob(str(p), recursive=True)))
        if not files:
            raise JobError("data.path", f"no file matches {p}")
        return p, files, engine or "duckdb", memory_limit
    data_path = _input_file(d, "data", "path", base)
    if data_path.suffix.lower() not in TABLE_SUFFIXES:
        raise JobError("data.path", f"must end in {' or '.join(TABLE_SUFFIXES)}, got {data_path.name!r}")
    if engine == "spark" and data_path.suffix.lower() != ".parquet":
        raise JobError("data.path", "the Spark engine reads Parquet files (convert the CSV, or use engine = "
                                    "\"duckdb\")")
    return data_path, (data_path,), engine or "memory", memory_limit


def _query_source(d: Mapping[str, Any], base: Path) -> tuple | None:
    """data.query with data.postgres (a DSN) or data.attach (a DuckDB database file): (the
    data path — the attached file, or the job's folder for PostgreSQL —, its files, the engine,
    DuckDB's memory limit, the JobSpec's query fields); None when the job names no query."""
    import re

    if not any(k in d for k in ("query", "postgres", "attach")):
        return None
    if "path" in d:
        raise JobError("data.path", "a job reads data.path or data.query (with data.postgres or data.attach), "
                                    "not both")
    if "query" not in d:
        raise JobError("data.query", "data.postgres and data.attach name a database: data.query says what to read "
                                     "(one SELECT)")
    from dpsynth.table.query_source import check_query

    try:
        query = check_query(d["query"])
    except ValueError as exc:
        raise JobError("data.query", str(exc)) from None
    if ("postgres" in d) == ("attach" in d):
        raise JobError("data.query", "needs exactly one database: data.postgres (a PostgreSQL DSN) or data.attach "
                                     "(a DuckDB database file)")
    engine = d.get("engine")
    memory_limit = d.get("memory_limit", "2GB")
    if not isinstance(memory_limit, str) or not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*",
                                                               memory_limit, flags=re.I):
        raise JobError("data.memory_limit", f"must be a size such as \"2GB\", got {memory_limit!r}")
    if "postgres" in d:
        if engine not in (None, "postgres"):
            raise JobError("data.engine", "a PostgreSQL query runs in PostgreSQL (engine = \"postgres\")")
        dsn = d["postgres"]
        if not isinstance(dsn, str) or not dsn.strip() or "\x00" in dsn:
            raise JobError("data.postgres", "must be a PostgreSQL connection string (postgresql://USER@HOST/DB or "
                                            "key=value …)")
        from accountant.ledger.postgres import _password_forms

        if _password_forms(dsn):
            raise JobError("data.postgres", "holds a password: a job file is shared and kept; give the password in "
                                            "PGPASSWORD or a passfile (~/.pgpass, PGPASSFILE) instead")
        return base, (), "postgres", memory_limit, {"query": query, "postgres": dsn}
    if engine not in (None, "duckdb"):
        raise JobError("data.engine", "a query over a DuckDB database file runs in DuckDB (engine = \"duckdb\")")
    attach = _input_file(d, "data", "attach", base)
    return attach, (attach,), "duckdb", memory_limit, {"query": query, "attach": attach}


def _spark_master(d: Mapping[str, Any], engine: str) -> str:
    """data.spark: the Spark master for engine = "spark" (default local[2])."""
    master = d.get("spark", "local[2]")
    if "spark" in d and engine != "spark":
        raise JobError("data.spark", "names a Spark master: it needs engine = \"spark\"")
    from dpsynth.table.spark_source import valid_master

    if not valid_master(master):
        raise JobError("data.spark", f"must be local[N], local[*], spark://HOST:PORT, yarn or "
                                     f"k8s://https://HOST:PORT, got {master!r}")
    return master


# --------------------------------------------------------------------------- helpers

def parquet_writer_available() -> bool:
    """True when pandas can write Parquet (pyarrow installed and importable).

    Imported, not only looked up: a pyarrow that is found but fails to import would pass a
    lookup and then crash the writer after the run's charges (attack 11)."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except Exception:  # noqa: BLE001 - any failure to import means no writer
        return False
    return True


def _no_unknown(table: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in table:
        if key not in allowed:
            raise JobError(f"{prefix}{key}", f"unknown field (allowed here: {', '.join(sorted(allowed))})")


def _section(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, Mapping):
        raise JobError(name, f"must be a [{name}] table")
    return value


def _string(table: Mapping[str, Any], name: str) -> str:
    key = name.rsplit(".", 1)[-1]
    if key not in table:
        raise JobError(name, "is required")
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise JobError(name, "must be a non-empty string")
    return value


def _positive_number(table: Mapping[str, Any], name: str) -> float:
    key = name.rsplit(".", 1)[-1]
    if key not in table:
        raise JobError(name, "is required")
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise JobError(name, f"must be a finite number > 0, got {value!r}")
    return float(value)


def _path(table: Mapping[str, Any], section: str, key: str, base: Path, required: bool) -> Path | None:
    name = f"{section}.{key}"
    if key not in table:
        if required:
            raise JobError(name, "is required")
        return None
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise JobError(name, "must be a path (a non-empty string)")
    p = Path(value).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def _input_file(table: Mapping[str, Any], section: str, key: str, base: Path, *, required: bool = True
                ) -> Path | None:
    p = _path(table, section, key, base, required)
    if p is not None and not p.is_file():
        raise JobError(f"{section}.{key}", f"no such file: {p}")
    return p


def _output_path(table: Mapping[str, Any], key: str, base: Path, *, field: str | None = None) -> Path:
    field = field or f"output.{key}"
    section, _, key = field.rpartition(".")
    p = _path(table, section, key, base, True)
    parent = p.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise JobError(field, f"cannot create {p}: {parent} is not a writable folder")
    if p.is_dir():
        raise JobError(field, f"{p} is a folder; name a file")
    return p
