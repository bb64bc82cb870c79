"""Spark's binding (validate + encode + count the rows) in Spark SQL against Python workers.

    python benchmarks/spark_encoding.py [--parts /tmp/dpsynth-scale-1000000/part-*.parquet]

The table is benchmarks/scale.py's (adult_hd-shaped, 15 columns; build it with
``scale.py --rows 1000000`` first).  One Spark session (local[2]); each repetition binds
the table with ``encode_in_sql=False`` (the in-memory code in ``mapInPandas`` workers,
the encoding before) then ``True`` (Spark SQL).  CPU seconds are summed over the whole
process tree (this process, the JVM, its Python workers: /proc), since the JVM and the
workers do the work; results in benchmarks/results/spark_encoding.{json,md}.
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dpsynth.schema import Column, Schema
from dpsynth.table import SparkSource
from dpsynth.table.spark_source import SparkRows

TICK = os.sysconf("SC_CLK_TCK")
def tree_cpu(root):
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                f = open(f"/proc/{d}/stat").read()
                rest = f[f.rindex(")") + 2:].split()
                procs[int(d)] = (int(rest[1]), (int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])) / TICK)
            except Exception:
                pass
    kids = {}
    for pid, (pp, _) in procs.items():
        kids.setdefault(pp, []).append(pid)
    total, stack = 0.0, [root]
    while stack:
        p = stack.pop()
        total += procs.get(p, (0, 0.0))[1]
        stack.extend(kids.get(p, []))
    return total

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="/tmp/dpsynth-scale-1000000/part-*.parquet")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    domain = json.loads((REPO.parent / "shared" / "data" / "adult_hd" / "adult-domain.json").read_text())
    schema = Schema([Column(c, "categorical", categories=list(range(k))) for c, k in domain.items()])
    s0 = SparkSource.__new__(SparkSource); s0.session, s0.master = None, "local[2]"
    spark = s0.spark()
    out = []
    for rep in range(args.reps):
        for in_sql in (False, True):
            src = SparkSource(args.parts, session=spark, encode_in_sql=in_sql)
            digests, stats = src.file_digests(), src._stats()
            c0, w0, l0 = tree_cpu(os.getpid()), time.perf_counter(), os.getloadavg()[0]
            rows = SparkRows(src, schema, digests, stats)
            c1, w1 = tree_cpu(os.getpid()), time.perf_counter()
            rows.close()
            r = {"encode_in_sql": in_sql, "rep": rep, "cpu_s": round(c1 - c0, 1), "wall_s": round(w1 - w0, 1), "load": round(l0, 1)}
            print(json.dumps(r), flush=True); out.append(r)
    spark.stop()
    n = sum(__import__("pyarrow.parquet", fromlist=["ParquetFile"]).ParquetFile(f).metadata.num_rows for f in src.files)
    results = REPO / "benchmarks" / "results"
    (results / "spark_encoding.json").write_text(json.dumps({"rows": n, "runs": out}, indent=1) + "\n")
    lines = ["# Spark binding: Spark SQL encoding against Python workers", "",
             f"Written by `benchmarks/spark_encoding.py`: {n:,} rows, 15 columns, local[2], one session; CPU s over "
             "the process tree (driver, JVM, Python workers); load: the 1-minute load average at the start (2 cores).", "",
             "| repetition | encoding | wall s | CPU s | load |", "|---:|---|---:|---:|---:|"]
    for r in out:
        lines.append(f"| {r['rep']} | {'Spark SQL' if r['encode_in_sql'] else 'Python workers (before)'} | {r['wall_s']} | "
                     f"{r['cpu_s']} | {r['load']} |")
    for rep in range(args.reps):
        a = [r for r in out if r["rep"] == rep and r["encode_in_sql"]][0]
        b = [r for r in out if r["rep"] == rep and not r["encode_in_sql"]][0]
        lines.append(f"| {rep} | ratio SQL / Python | {a['wall_s'] / b['wall_s']:.2f} | {a['cpu_s'] / b['cpu_s']:.2f} | |")
    lines += ["", f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}."]
    (results / "spark_encoding.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
