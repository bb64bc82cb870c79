"""Record and replay: the deterministic privacy test (issue 4; Re:cord-play, PETS 2026).

    from dpsynth.testing.replay import record_and_replay
    record_and_replay(lambda: MST(epsilon=1.0), frame, schema)      # raises ReplayFailure

1. Record: fit a fresh generator on D = frame + a worst-case target record through a
   `RecordingTable` (seeded test noise, a test ledger), release its output
   (default: `G.sample(n, seed=sample_seed)`), and log every measurement.
2. Replay on each neighbour D' of D for each relation (add/remove-one: the target
   removed, a second copy added; replace-one: the target replaced by a record that
   differs from it in every column) with a `ReplayTable`: every measurement returns
   its recorded noisy output, and the same post-processing seed is used.
3. Assert (each failure is a `Problem` naming its check):
   - "divergence": the same measurements in the same order (no data-dependent
     control flow, nothing more and nothing less);
   - "sensitivity": at each measurement, the distance between the exact answers on D
     and D' is within the declared sensitivity (L2 for counts, max-abs for scores);
   - "ledger": each recorded measurement has a receipt that the gate verifies, whose
     entry is exactly the measurement's declared events, used once, marked seeded-test;
   - "uncharged": no private row was read outside a charged measurement;
   - "output": the released outputs are byte-identical.
   Any difference means private data reached the output outside a mechanism.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from accountant.errors import InvalidReceipt
from accountant.events import NeighbouringRelation
from accountant.testing import make_test_gate

from ..schema import Schema
from ..table.rows import UnchargedAccess
from .recording import Record, RecordingTable, ReplayDivergence, ReplayTable, composed_json

__all__ = ["record_and_replay", "ReplayFailure", "ReplayReport", "Problem", "worst_case_record", "other_record",
           "neighbours", "canonical_bytes", "measured_distance"]

ADD_OR_REMOVE = NeighbouringRelation.ADD_OR_REMOVE_ONE
REPLACE = NeighbouringRelation.REPLACE_ONE
_TOL = 1e-9


@dataclass(frozen=True)
class Problem:
    check: str          # "divergence" | "sensitivity" | "ledger" | "uncharged" | "output" | "error"
    neighbour: str      # "record", "remove", "add", "replace"
    message: str


@dataclass
class ReplayReport:
    """What was checked and what failed."""

    problems: list[Problem] = field(default_factory=list)
    measurements: dict[str, int] = field(default_factory=dict)       # relation -> measurements recorded
    max_ratio: dict[str, float] = field(default_factory=dict)        # neighbour -> max measured/declared
    records: dict[str, list[Record]] = field(default_factory=dict)   # relation -> the recorded log

    @property
    def ok(self) -> bool:
        return not self.problems

    def checks_failed(self) -> set[str]:
        return {p.check for p in self.problems}


class ReplayFailure(AssertionError):
    def __init__(self, report: ReplayReport) -> None:
        lines = [f"[{p.check}] {p.neighbour}: {p.message}" for p in report.problems]
        super().__init__("record-and-replay found private data reaching the output outside a mechanism:\n  "
                         + "\n  ".join(lines))
        self.report = report


# -- bytes --------------------------------------------------------------------------------------------
def canonical_bytes(obj: Any) -> bytes:
    """Bytes that are equal iff the released objects are (DataFrames by dtypes and CSV text)."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj)
    if isinstance(obj, pd.DataFrame):
        head = json.dumps({"columns": [str(c) for c in obj.columns], "dtypes": [str(t) for t in obj.dtypes],
                           "index": [str(i) for i in obj.index[:0]]}).encode()
        return head + b"\n" + obj.to_csv(index=False, lineterminator="\n").encode()
    if isinstance(obj, np.ndarray):
        return f"{obj.dtype}|{obj.shape}|".encode() + np.ascontiguousarray(obj).tobytes()
    if isinstance(obj, (list, tuple)):
        return b"[" + b",".join(canonical_bytes(o) for o in obj) + b"]"
    return json.dumps(obj, sort_keys=True, default=repr).encode()


# -- neighbours ---------------------------------------------------------------------------------------
def _counts_discrete(col: Any, values: pd.Series) -> list[int]:
    present = values.dropna().astype(object)
    return [int((present == c).sum()) for c in col.categories]


def _bin_counts(col: Any, values: pd.Series) -> np.ndarray:
    from ..schema.encode import missing_mask, numeric_axis

    isna = missing_mask(values)
    x = numeric_axis(col, values, isna)[~isna]
    edges = np.asarray(col.edges)
    codes = np.clip(np.searchsorted(edges, np.clip(x, edges[0], edges[-1]), side="right") - 1, 0, len(edges) - 2)
    return np.bincount(codes, minlength=len(edges) - 1)


def _bin_value(col: Any, i: int, outer: bool = False) -> Any:
    """A value in bin i: its midpoint, or for the first/last bin with `outer` its outer edge."""
    edges = col.edges
    mid = (edges[i] + edges[i + 1]) / 2
    if outer and i == len(edges) - 2:
        mid = edges[-1]
    elif outer and i == 0:
        mid = edges[0]
    if col.kind == "integer":
        lo, hi = math.ceil(edges[i]), math.floor(edges[i + 1])
        return int(min(max(round(mid), lo), hi))
    if col.kind == "datetime":
        return pd.Timestamp(int(mid * 1e9))
    return float(mid)


def _pick(col: Any, values: pd.Series, rarest: bool, avoid: Any = None) -> Any:
    if col.is_discrete and col.categories is not None:
        counts = _counts_discrete(col, values)
        order = sorted(range(len(counts)), key=lambda i: (counts[i] if rarest else -counts[i], i))
        for i in order:
            if avoid is None or col.categories[i] != avoid:
                return col.categories[i]
        return col.categories[order[0]]
    if col.is_discrete:  # categories to be learned: a brand-new key is the worst case
        fresh = "\u2063canary-key"
        return fresh if rarest else values.dropna().mode().iloc[0]
    if col.is_complete:
        counts = _bin_counts(col, values)
        k = len(counts)
        if rarest:
            # An outer edge of the rarer extreme bin: it moves a min/max leak and a tail bin.
            return _bin_value(col, 0 if counts[0] < counts[k - 1] else k - 1, outer=True)
        order = sorted(range(k), key=lambda i: (-counts[i], i))
        for i in order:
            v = _bin_value(col, i)
            if avoid is None or v != avoid:
                return v
        return _bin_value(col, order[0])
    present = values.dropna()
    return present.max() if rarest else present.min()


def worst_case_record(schema: Schema, frame: pd.DataFrame) -> dict[str, Any]:
    """A worst-case record: the rarest declared category of each categorical column (an unseen
    one first), a brand-new key where categories are still to be learned, and the outer edge of
    the rarer extreme bin (or the data's maximum) of each numeric column, which moves any
    min/max read from the data.  Reads the frame: tests only."""
    return {c.name: _pick(c, frame[c.name], rarest=True) for c in schema.columns}


def other_record(schema: Schema, frame: pd.DataFrame, target: Mapping[str, Any]) -> dict[str, Any]:
    """A record that differs from `target` in every column (the replace-one partner)."""
    return {c.name: _pick(c, frame[c.name], rarest=False, avoid=target[c.name]) for c in schema.columns}


def _append(frame: pd.DataFrame, row: Mapping[str, Any]) -> pd.DataFrame:
    extra = pd.DataFrame([{c: row[c] for c in frame.columns}])
    out = pd.concat([frame, extra.astype(frame.dtypes.to_dict(), errors="ignore")], ignore_index=True)
    return out


def neighbours(frame: pd.DataFrame, target: Mapping[str, Any], other: Mapping[str, Any],
               relation: NeighbouringRelation) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """D = frame + target, and its neighbours under `relation` (name -> table)."""
    d = _append(frame, target)
    if relation is REPLACE:
        return d, {"replace": _append(frame, other)}
    return d, {"remove": frame.reset_index(drop=True), "add": _append(d, target)}


# -- sensitivity ----------------------------------------------------------------------------------------
def _components(answer: Any) -> list[Any]:
    return list(answer) if isinstance(answer, list) else [answer]


def measured_distance(norm: str, a: Any, b: Any) -> list[float]:
    """Per-component distance between exact answers on D and D' (see Measurement.norm)."""
    if norm == "keys":
        keys = set(a) | set(b)
        return [math.sqrt(sum((a.get(k, 0) - b.get(k, 0)) ** 2 for k in keys))]
    out = []
    for x, y in zip(_components(a), _components(b)):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape:
            return [math.inf]
        d = x - y
        out.append(float(np.sqrt(np.sum(d * d))) if norm == "l2" else float(np.max(np.abs(d), initial=0.0)))
    return out


def _keys_one_sided(a: dict, b: dict) -> bool:
    """Keys on one side only: at most one per side, held by a single record (the threshold's premise)."""
    only_a = [k for k in a if k not in b]
    only_b = [k for k in b if k not in a]
    return len(only_a) <= 1 and len(only_b) <= 1 and all(a[k] == 1 for k in only_a) and all(
        b[k] == 1 for k in only_b)


# -- the harness ----------------------------------------------------------------------------------------
def _default_fit(generator: Any, table: Any) -> None:
    generator.fit(table)


_SESSION_STEPS = ("dpsgd_step", "pate_votes", "pate_label_votes")


def _ledger_problems(records: Sequence[Record], gate: Any, table: Any, where: str) -> list[Problem]:
    """Each measurement's receipt verifies and charged exactly its events; a charge pays for one
    release (the steps of a session share their session's charge, and nothing else does)."""
    problems: list[Problem] = []
    used: dict[int, str] = {}
    for i, rec in enumerate(records):
        r = rec.receipt
        name = f"measurement #{i} ({rec.measurement.kind})"
        try:
            gate.verify_receipt(r)
        except Exception as exc:  # noqa: BLE001 - any failure to verify is the finding
            problems.append(Problem("ledger", where, f"{name}: no ledger entry verifies its receipt ({exc})"))
            continue
        if r.event != composed_json(rec.measurement.events):
            problems.append(Problem("ledger", where, f"{name}: the ledger entry charged {r.event}, the measurement "
                                                     f"declares {composed_json(rec.measurement.events)}"))
        step = rec.measurement.kind in _SESSION_STEPS
        previous = used.get(r.sequence)
        if previous is not None and not (step and previous == "session"):
            problems.append(Problem("ledger", where, f"{name}: reuses the ledger entry #{r.sequence}"))
        used[r.sequence] = "session" if step else "single"
    releases = [x for x in table.receipts if x.kind in ("open", "release")]
    seen: dict[int, list[str]] = {}
    for x in releases:
        seen.setdefault(x.refs[0], []).append(x.kind)
    for seq, kinds in seen.items():
        if kinds not in (["release"], ["open", "release"], ["open"]):
            problems.append(Problem("ledger", where, f"charge #{seq} was released as {kinds}: a charge pays for one "
                                                     "release"))
    return problems


def _run(make_generator: Callable[[], Any], table: Any, fit: Callable[[Any, Any], None],
         release: Callable[[Any], Any], where: str, problems: list[Problem]) -> bytes | None:
    try:
        generator = make_generator()
        fit(generator, table)
        return canonical_bytes(release(generator))
    except ReplayDivergence as exc:
        problems.append(Problem("divergence", where, str(exc)))
    except UnchargedAccess as exc:
        problems.append(Problem("uncharged", where, str(exc)))
    except InvalidReceipt as exc:
        problems.append(Problem("ledger", where, f"the gate refused a release: {exc}"))
    return None


def _governed(folder: Path, frame: pd.DataFrame, schema: Schema, backend: str, **gate_args: Any) -> tuple:
    """(a test ledger governing the table, the table's data for a PrivateTable, its dataset key)."""
    if backend == "memory":
        tl = make_test_gate(folder, frame=schema.validate(frame), **gate_args)
        return tl, frame, tl.dataset_key
    from accountant.fingerprint import generate_dataset_key
    from dpsynth.table import DuckDBSource

    folder.mkdir(parents=True, exist_ok=True)
    if backend == "duckdb-query":  # a DuckDB database file, read through a query
        import duckdb

        from dpsynth.table import DuckDBQuerySource

        with duckdb.connect(str(folder / "table.duckdb")) as con:
            con.register("frame", frame)
            con.execute("CREATE TABLE t AS SELECT * FROM frame")
        source = DuckDBQuerySource(folder / "table.duckdb", "SELECT * FROM t", memory_limit="256MB", threads=1)
    elif backend == "spark":  # Spark in local mode (the process's running session when there is one)
        from dpsynth.table import SparkSource

        frame.to_parquet(folder / "table.parquet", index=False)
        source = SparkSource(folder / "table.parquet", master="local[2]")
    else:
        frame.to_parquet(folder / "table.parquet", index=False)
        source = DuckDBSource(folder / "table.parquet", memory_limit="256MB", threads=1)
    key = generate_dataset_key()
    tl = make_test_gate(folder / "ledger", dataset_fingerprint=source.fingerprint(key), **gate_args)
    return tl, source, key


def record_and_replay(make_generator: Callable[[], Any], frame: pd.DataFrame, schema: Schema, *,
                      target: Mapping[str, Any] | None = None, other: Mapping[str, Any] | None = None,
                      relations: Sequence[NeighbouringRelation] = (ADD_OR_REMOVE, REPLACE),
                      fit: Callable[[Any, Any], None] | None = None,
                      release: Callable[[Any], Any] | None = None, n_samples: int = 200, sample_seed: int = 0,
                      noise_seed: int = 0, epsilon: float = 50.0, delta: float = 1e-6,
                      delta_reserve: float | None = None, mixins: Sequence[type] = (), directory: str | Path | None = None,
                      raise_on_failure: bool = True, max_records: int | None = None,
                      backend: str = "memory") -> ReplayReport:
    """Run the record-and-replay test of a generator; raise `ReplayFailure` on any problem.

    Args:
        make_generator: returns a fresh, unfitted generator (e.g. ``lambda: MST(epsilon=1.0)``);
            any randomness it uses outside the table must come from fixed seeds.
        frame, schema: the base table (a small one; the target is added to it).
        target / other: the worst-case record and its replace-one partner (default:
            `worst_case_record` and `other_record`).
        relations: neighbouring relations to test (each gets its own test ledger).
        fit: how to fit (default ``G.fit(table)``); release: what is released (default
            ``G.sample(n_samples, seed=sample_seed)``), compared as canonical bytes.
        epsilon, delta: the test ledgers' budget (large: this is not a privacy run).
        delta_reserve: the ledgers' budget.delta_reserve for approximate mechanisms such as
            key discovery (default δ/2).
        mixins: classes mixed into the recording/replay tables (to test table-level bugs).
        max_records: the test policies' public bound on n (default: from δ).
        backend: "memory" (the tables hold frames), "duckdb-query" (a DuckDB database file read
            through a query, as a database source) or "duckdb" (each table, D and every
            neighbour, is written to a Parquet file and read through a `DuckDBSource`), "spark"
            (the same, read through a `SparkSource` in local mode).
    """
    if backend not in ("memory", "duckdb", "duckdb-query", "spark"):
        raise ValueError("backend must be 'memory', 'duckdb', 'duckdb-query' or 'spark'")
    fit = fit or _default_fit
    reserve = delta / 2 if delta_reserve is None else delta_reserve
    release = release or (lambda g: g.sample(n_samples, seed=sample_seed))
    target = dict(target) if target is not None else worst_case_record(schema, frame)
    other = dict(other) if other is not None else other_record(schema, frame, target)
    from dpsynth.noise.randomness import SeededRandomSource

    rec_cls = type("RecordingTable", (*mixins, RecordingTable), {})
    rep_cls = type("ReplayTable", (*mixins, ReplayTable), {})
    report = ReplayReport()
    root = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="dpsynth-replay-"))
    for relation in relations:
        relation = NeighbouringRelation(relation)
        d, nbrs = neighbours(frame, target, other, relation)
        tl, data, key = _governed(root / f"{relation.value}-record", d, schema, backend, epsilon=epsilon,
                                  delta=delta, relation=relation, delta_reserve=reserve, max_records=max_records)
        gate = tl.gate
        table = rec_cls(data, schema, gate, random_source=SeededRandomSource(noise_seed), dataset_key=key)
        out = _run(make_generator, table, fit, release, "record", report.problems)
        log = table.log
        report.records[relation.value] = log
        report.measurements[relation.value] = len(log)
        report.problems.extend(_ledger_problems(log, gate, table, "record"))
        if out is None:
            continue
        for name, d2 in nbrs.items():
            tl2, data2, key2 = _governed(root / f"{relation.value}-{name}", d2, schema, backend, epsilon=epsilon,
                                         delta=delta, relation=relation, delta_reserve=reserve,
                                         max_records=max_records)
            rep = rep_cls(data2, schema, tl2.gate, recording=log, random_source=SeededRandomSource(noise_seed),
                          dataset_key=key2)
            out2 = _run(make_generator, rep, fit, release, name, report.problems)
            if out2 is None:
                continue
            if rep.consumed != len(log):
                report.problems.append(Problem("divergence", name, f"the replayed run made {rep.consumed} "
                                                                    f"measurements, the recorded run {len(log)}"))
            worst = 0.0
            for i, (rec, exact2) in enumerate(zip(log, rep.exact)):
                m = rec.measurement
                dist = measured_distance(m.norm, rec.exact, exact2)
                bounds = m.sensitivities(len(dist))
                for j, (x, s) in enumerate(zip(dist, bounds)):
                    worst = max(worst, x / s if s > 0 else math.inf if x > 0 else 0.0)
                    if x > s * (1 + m.tolerance) + _TOL:
                        report.problems.append(Problem(
                            "sensitivity", name, f"measurement #{i} ({m.kind}) component {j}: measured "
                                                 f"{x:.6g} > declared {s:.6g}"))
                if m.norm == "keys" and not _keys_one_sided(rec.exact, exact2):
                    report.problems.append(Problem("sensitivity", name, f"measurement #{i} (keys): more than one "
                                                                        "key, or a key with count > 1, on one side"))
            report.max_ratio[f"{relation.value}/{name}"] = worst
            if out2 != out:
                report.problems.append(Problem("output", name, "the released bytes differ between D and its "
                                                               "neighbour with every noisy output frozen"))
    if raise_on_failure and report.problems:
        raise ReplayFailure(report)
    return report
