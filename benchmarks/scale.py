"""MST at ε = 1 on a large table: the DuckDB engine against the in-memory path.

    python benchmarks/scale.py                       # 10^7 rows, both backends
    python benchmarks/scale.py --rows 1000000 --backends duckdb memory
    python benchmarks/scale.py --rows 100000000 --backends duckdb --memory-limit 1GB

1. Build the table (seeded): fit MST (ε = 1, in memory) on ``../shared/data/adult_hd``
   (15 integer-coded columns, 48,842 rows) and sample ``--rows`` rows from it into
   ``--parts`` Parquet files with ``sample_to_parquet`` (bounded memory).  Reused when the
   folder already holds the same number of rows.
2. For each backend, one child process: a test ledger governing the table (the DuckDB
   source's files fingerprint, or the frame's), a ``PrivateTable`` (a ``DuckDBSource`` on
   the glob; or the parts read into one pandas frame), ``MST(epsilon=1)`` fitted, seeded.
   The child reports the bind time (fingerprint + validation), the fit time and the
   sampling of ``--sample`` rows to Parquet; the parent records the child's wall time, CPU
   seconds (user + system, from ``wait4``) and peak RSS.
3. The results go to ``benchmarks/results/scale.json`` (merged by (rows, backend)) and
   ``scale.md``.

Every child runs with 2 threads (DuckDB and torch) on the 2-core target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
RESULTS = REPO / "benchmarks" / "results"


def adult_schema():
    from dpsynth.schema import Column, Schema

    domain = json.loads((SHARED / "data" / "adult_hd" / "adult-domain.json").read_text())
    return Schema([Column(c, "categorical", categories=list(range(k))) for c, k in domain.items()])


def build(folder: Path, rows: int, parts: int, seed: int) -> list[Path]:
    """The table as Parquet parts (reused when present with the same size)."""
    import pandas as pd
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("part-*.parquet"))
    if files and sum(pq.ParquetFile(f).metadata.num_rows for f in files) == rows:
        return files
    for f in files:
        f.unlink()
    from accountant.testing import make_test_gate
    from dpsynth.generators import MST
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    schema = adult_schema()
    real = pd.read_csv(SHARED / "data" / "adult_hd" / "adult.csv")[list(schema.names)]
    tl = make_test_gate(Path(tempfile.mkdtemp(prefix="scale-build-")), epsilon=10.0, delta=1e-9, frame=real)
    table = PrivateTable(real, schema, tl.gate, dataset_key=tl.dataset_key, random_source=SeededRandomSource(seed))
    model = MST(epsilon=1.0, iters=500, device="cpu").fit(table)
    per = -(-rows // parts)
    left = rows
    for i in range(parts):
        m = min(per, left)
        if m <= 0:
            break
        model.sample_to_parquet(folder / f"part-{i:03d}.parquet", m, seed=seed * 1000 + i, chunk_rows=1_000_000)
        left -= m
    return sorted(folder.glob("part-*.parquet"))


CHILD = r'''
import json, sys, time, os, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(2)
from dpsynth.schema import Column, Schema
from accountant.fingerprint import generate_dataset_key
from accountant.testing import make_test_gate
from dpsynth.generators import AIM, MST
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.table import DuckDBSource, PrivateTable, SparkSource
backend, folder, rows, memory_limit, n_sample = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
domain = json.loads(Path(sys.argv[7]).read_text())
schema = Schema([Column(c, "categorical", categories=list(range(k))) for c, k in domain.items()])
t0 = time.perf_counter()
tmp = Path(tempfile.mkdtemp(prefix="scale-run-"))
if backend == "duckdb":
    source = DuckDBSource(str(folder / "part-*.parquet"), memory_limit=memory_limit, threads=2)
    key = generate_dataset_key()
    tl = make_test_gate(tmp / "l", epsilon=10.0, delta=1e-11, max_records=2 * rows,
                        dataset_fingerprint=source.fingerprint(key))
    data = source
elif backend in ("spark", "spark-python"):  # encoded in Spark SQL, or by pandas in Python workers (before)
    source = SparkSource(str(folder / "part-*.parquet"), master="local[2]", encode_in_sql=backend == "spark")
    key = generate_dataset_key()
    tl = make_test_gate(tmp / "l", epsilon=10.0, delta=1e-11, max_records=2 * rows,
                        dataset_fingerprint=source.fingerprint(key))
    data = source
else:
    import pandas as pd
    data = pd.concat([pd.read_parquet(f) for f in sorted(folder.glob("part-*.parquet"))], ignore_index=True)
    tl = make_test_gate(tmp / "l", epsilon=10.0, delta=1e-11, max_records=2 * rows, frame=data)
    key = tl.dataset_key
table = PrivateTable(data, schema, tl.gate, dataset_key=key, random_source=SeededRandomSource(0))
t1 = time.perf_counter()
method = sys.argv[9]
model = (MST(epsilon=1.0, iters=1000, device="cpu") if method == "mst" else AIM(epsilon=1.0, device="cpu")).fit(table)
t2 = time.perf_counter()
model.sample_to_parquet(tmp / "synthetic.parquet", n_sample, seed=0)
t3 = time.perf_counter()
edges = model.fit_log.get("edges") or [list(m.clique) for m in model.measurements]
Path(sys.argv[8]).write_text(json.dumps({"bind_s": t1 - t0, "fit_s": t2 - t1, "sample_s": t3 - t2, "edges": edges}))
'''


class _LoadWatch:
    """The machine's 1-minute load average, sampled every 15 s while a child runs (the
    machine is shared: the load says how much of the 2 cores the child could have had)."""

    def __init__(self) -> None:
        import threading

        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(15):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        return {"load_mean": sum(self.samples) / len(self.samples), "load_max": max(self.samples)}


SAMPLE_CHILD = r'''
import json, sys, time, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(2)
import pandas as pd
from accountant.testing import make_test_gate
from dpsynth.generators import MST
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.table import PrivateTable
n, out, data = int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
if sys.argv[6] == "lexsort":  # the sampler before: one lexsort on (group, a random key) per draw
    import numpy as np
    import dpsynth.pgm.model as pgm_model

    def lexsort_uniforms(group, n_groups, rng):
        m = group.size
        order = np.lexsort((rng.random(m), group))
        sizes = np.bincount(group, minlength=n_groups)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        sorted_group = group[order]
        rank = np.arange(m) - starts[sorted_group]
        offset = rng.random(n_groups)
        u = np.empty(m)
        u[order] = (rank + offset[sorted_group]) / sizes[sorted_group]
        return u

    pgm_model._systematic_uniforms = lexsort_uniforms
domain = json.loads((data / "adult-domain.json").read_text())
schema = Schema([Column(c, "categorical", categories=list(range(k))) for c, k in domain.items()])
real = pd.read_csv(data / "adult.csv")[list(schema.names)]
tl = make_test_gate(Path(tempfile.mkdtemp(prefix="scale-sample-")), epsilon=10.0, delta=1e-9, frame=real)
table = PrivateTable(real, schema, tl.gate, dataset_key=tl.dataset_key, random_source=SeededRandomSource(0))
t0 = time.perf_counter(); c0 = time.process_time()
model = MST(epsilon=1.0, iters=500, device="cpu").fit(table)
t1 = time.perf_counter(); c1 = time.process_time()
model.sample_to_parquet(out, n, seed=0, chunk_rows=1_000_000)
t2 = time.perf_counter(); c2 = time.process_time()
import pyarrow.parquet as pq
rows = pq.ParquetFile(out).metadata.num_rows
out.unlink()
Path(sys.argv[5]).write_text(json.dumps({"bind_s": 0.0, "fit_s": t1 - t0, "sample_s": t2 - t1,
                                         "sample_cpu_s": c2 - c1, "written_rows": rows}))
'''


def run_sample_child(n: int, out: Path, sampler: str = "radix") -> dict:
    """Sample n rows of an adult_hd MST model to one Parquet file (chunks of 10^6 rows)."""
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    work = Path(tempfile.mkdtemp(prefix="scale-child-"))
    t0 = time.perf_counter()
    loads = _LoadWatch()
    with open(work / "stderr", "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-c", SAMPLE_CHILD, str(REPO), str(n), str(out),
                                 str(SHARED / "data" / "adult_hd"), str(work / "result.json"), sampler],
                                stdout=subprocess.DEVNULL, stderr=err_file, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    backend = "sample_to_parquet" if sampler == "radix" else "sample_to_parquet (lexsort, before)"
    result = {"method": "sample", "backend": backend, "rows": n, "wall_s": wall,
              "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
              "memory_limit": None, "sample_rows": n, "ok": os.waitstatus_to_exitcode(status) == 0,
              **loads.stop()}
    if result["ok"]:
        result.update(json.loads((work / "result.json").read_text()))
    else:
        err = (work / "stderr").read_text()
        result["error"] = err.strip().splitlines()[-1:] if err.strip() else ["exit " + str(status)]
    return result


def run_child(backend: str, folder: Path, rows: int, memory_limit: str, n_sample: int, method: str = "mst") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="2", MKL_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2")
    work = Path(tempfile.mkdtemp(prefix="scale-child-"))
    t0 = time.perf_counter()
    loads = _LoadWatch()
    with open(work / "stderr", "w") as err_file:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(REPO), backend, str(folder), str(rows),
                                 memory_limit, str(n_sample), str(SHARED / "data" / "adult_hd" / "adult-domain.json"),
                                 str(work / "result.json"), method], stdout=subprocess.DEVNULL, stderr=err_file, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    load = loads.stop()
    err = (work / "stderr").read_text()
    result = {"method": method, "backend": backend, "rows": rows, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
              "peak_rss_mb": usage.ru_maxrss / 1024, "memory_limit": memory_limit if backend == "duckdb" else None,
              "sample_rows": n_sample, "ok": os.waitstatus_to_exitcode(status) == 0, **load}
    if result["ok"]:
        result.update(json.loads((work / "result.json").read_text()))
    else:
        result["error"] = err.strip().splitlines()[-1:] if err.strip() else ["exit " + str(status)]
    return result


def render(results: list[dict]) -> str:
    lines = ["# MST and AIM at ε = 1: the DuckDB and Spark engines against the in-memory path", "",
             "Written by `benchmarks/scale.py` (adult_hd MST model sampled to Parquet parts; 15 columns). "
             "Wall and CPU seconds are the child's whole life (imports, fingerprint, validation, fit, sampling); "
             "peak RSS is the child's. Spark (local[2]): the child is the Python driver; its JVM and Python "
             "workers are counted in CPU s only as far as the driver reaps them, and not in peak RSS — read its "
             "CPU and memory as lower bounds; its wall time is the figure. Rows of one (rows) group may come from "
             "different sessions: the 10^6 pair ran back to back (machine load ~14), Spark at 10^7 at load ~10-14, "
             "DuckDB and memory at 10^7 in an earlier session at load ~5. "
             "Rows with a load column ran later (AIM at 10^7, the sampling runs, Spark SQL against Spark with Python "
             "workers — `spark-python`, the encoding before — back to back at 10^6).", "",
             "| method | rows | backend | wall s | CPU s | peak RSS MB | bind s | fit s | sample s (rows) | same choices "
             "| load mean / max |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|"]
    by_rows: dict[tuple, dict[str, dict]] = {}
    for r in results:
        by_rows.setdefault((r.get("method", "mst"), r["rows"]), {})[r["backend"]] = r
    for method, rows in sorted(by_rows):
        group = by_rows[(method, rows)]
        for backend in ("duckdb", "memory", "spark", "spark-python", "sample_to_parquet (lexsort, before)",
                        "sample_to_parquet"):
            r = group.get(backend)
            if r is None:
                continue
            if not r.get("ok"):
                lines.append(f"| {method} | {rows:,} | {backend} | failed: {r.get('error')} |  |  |  |  |  |  |")
                continue
            other = group.get("memory" if backend == "duckdb" else "duckdb")  # spark: compared with duckdb
            load = f"{r['load_mean']:.1f} / {r['load_max']:.1f}" if "load_mean" in r else "—"
            cpu = f"; {r['sample_cpu_s']:.0f} CPU s" if "sample_cpu_s" in r else ""
            same = "yes" if other and other.get("ok") and other.get("edges") == r.get("edges") else "—"
            lines.append(f"| {method} | {rows:,} | {backend}{' (' + r['memory_limit'] + ')' if r.get('memory_limit') else ''} "
                         f"| {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['bind_s']:.1f} | "
                         f"{r['fit_s']:.1f} | {r['sample_s']:.1f} ({r['sample_rows']:,}{cpu}) | {same} | {load} |")
        for a, b in (("duckdb", "memory"), ("spark", "duckdb"), ("spark-python", "duckdb"), ("spark", "spark-python"),
                     ("sample_to_parquet", "sample_to_parquet (lexsort, before)")):
            if group.get(a, {}).get("ok") and group.get(b, {}).get("ok"):
                x, y = group[a], group[b]
                lines.append(f"| {method} | {rows:,} | ratio {a} / {b} | {x['wall_s'] / y['wall_s']:.2f} | "
                             f"{x['cpu_s'] / y['cpu_s']:.2f} | {x['peak_rss_mb'] / y['peak_rss_mb']:.2f} |  |  |  |  |")
    lines += ["", "load: the machine's 1-minute load average, sampled every 15 s during the child (2 cores, "
              "shared with other sessions' jobs: at load L the child had about 2/L cores, so read CPU s, not wall s). "
              "`sample` rows: an MST model fitted on adult_hd, then `sample_to_parquet` of that many rows into one "
              "Parquet file in chunks of 10^6 rows (fit s: the model; sample s: the writing).",
              "", f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--parts", type=int, default=10)
    ap.add_argument("--backends", nargs="+", default=["duckdb", "memory"], choices=["duckdb", "memory", "spark", "spark-python"])
    ap.add_argument("--memory-limit", default="1GB")
    ap.add_argument("--sample", type=int, default=1_000_000, help="synthetic rows written to Parquet per run")
    ap.add_argument("--folder", type=Path, default=None, help="where the table's parts go (default: a temp dir)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", choices=["mst", "aim"], default="mst", help="AIM: all-3-way workload (its default)")
    ap.add_argument("--sample-only", type=int, default=None, metavar="N",
                    help="only sample N rows of an adult_hd MST model to one Parquet file (peak RSS, time)")
    ap.add_argument("--sampler-baseline", action="store_true",
                    help="with --sample-only: also the sampler before (lexsort per draw), in the same run")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.sample_only is not None:
        out = (args.folder or Path(tempfile.gettempdir())) / f"dpsynth-sample-{args.sample_only}.parquet"
        for sampler in (("lexsort", "radix") if args.sampler_baseline else ("radix",)):
            r = run_sample_child(args.sample_only, out, sampler)
            print(json.dumps(r), flush=True)
            _store(r)
        return
    folder = args.folder or Path(tempfile.gettempdir()) / f"dpsynth-scale-{args.rows}"
    t0 = time.perf_counter()
    build(folder, args.rows, args.parts, args.seed)
    print(f"table: {args.rows:,} rows in {folder} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for backend in args.backends:
        r = run_child(backend, folder, args.rows, args.memory_limit, args.sample, args.method)
        print(json.dumps(r), flush=True)
        _store(r)


def _store(r: dict) -> None:
    """Merge one result into scale.json (by method, rows, backend; re-read first: several runs
    may finish in any order) and render scale.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    store = RESULTS / "scale.json"
    results = json.loads(store.read_text()) if store.exists() else []
    key = lambda x: (x.get("method", "mst"), x["rows"], x["backend"])  # noqa: E731
    results = [x for x in results if key(x) != key(r)] + [r]
    store.write_text(json.dumps(results, indent=1) + "\n")
    (RESULTS / "scale.md").write_text(render(results))


if __name__ == "__main__":
    main()
