"""Ledger throughput at the gate: charges per second with P processes charging one ledger.

Each configuration (backend × P) gets a fresh ledger (a SQLite file, or a named ledger in
a throwaway PostgreSQL server started the way the tests start theirs: initdb into a temp
folder, Unix socket only, fsync on).  P processes are forked, each opens its own gate
(`Gate.open`, verifying the ledger), waits at a common start, then makes its share of
`--charges` charges of a tiny Gaussian event (the budget never refuses one).  Every charge
is the gate's whole path: verify what others appended since its last read (hash, chain,
signature, recomputed cost), check the filter, sign, append, commit durably, update the
witness.

Reported per configuration: wall seconds from the common start to the last charge,
charges per second, the clients' CPU seconds (sum over processes, charging only) and, for
PostgreSQL, the server's CPU seconds (postmaster and every backend, from /proc).  The
ledger is verified afterwards (all charges present, chain intact).

    nice python benchmarks/ledger_throughput.py                 # P = 1, 8, 64; both backends
    python benchmarks/ledger_throughput.py --procs 1 8 --charges 128 --backends postgres

Results: benchmarks/results/ledger_throughput.json (every run, merged by configuration)
and ledger_throughput.md (rendered from it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# procstat.py beside this file (not `benchmarks.procstat`: a site-packages `benchmarks` may shadow it).
if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))

RESULTS = REPO / "benchmarks" / "results"


def _child(location: str, key: str, n: int, start, queue) -> None:
    from accountant.events import GaussianEvent
    from accountant.gate import Gate

    try:
        gate = Gate.open(location, ledger_key=key)
        queue.put(("ready", os.getpid()))
        start.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            gate.charge(GaussianEvent(1000.0), purpose=f"benchmark {i}", generator="mst", actor=f"p{os.getpid()}")
        t1, c1 = time.perf_counter(), time.process_time()
        gate.close()
        queue.put(("done", t0, t1, c1 - c0))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
        raise


def run_one(backend: str, procs: int, charges: int, workdir: Path, server=None) -> dict:
    from procstat import postgres_backends, postgres_cpu
    from accountant.ledger.open_store import open_store
    from accountant.testing import make_test_gate
    from accountant.verify import verify_path

    folder = Path(tempfile.mkdtemp(prefix=f"{backend}-{procs}-", dir=workdir))
    location = None
    if backend == "postgres":
        location = server.url(f"bench_{procs}_{os.getpid()}_{int(time.time() * 1000) % 10**9}")
    tl = make_test_gate(folder, epsilon=10.0, delta=1e-6, ledger=location)
    tl.gate.close()
    location = str(tl.ledger_path)
    share = [charges // procs + (1 if i < charges % procs else 0) for i in range(procs)]
    ctx = mp.get_context("fork")
    start, queue = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_child, args=(location, str(tl.ledger_key), n, start, queue)) for n in share]
    for w in workers:
        w.start()
    for _ in workers:
        msg = queue.get(timeout=600)
        if msg[0] == "error":
            raise RuntimeError(msg[1])
    server_before = postgres_cpu(server) if server is not None else None
    start.set()
    done = []
    for _ in workers:
        msg = queue.get(timeout=1800)
        if msg[0] == "error":
            raise RuntimeError(msg[1])
        done.append(msg)
    for w in workers:
        w.join(60)
    server_after = None
    if server is not None:
        deadline = time.monotonic() + 30  # let the backends of the closed gates exit (and be reaped)
        while postgres_backends(server) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        server_after = postgres_cpu(server)
    wall = max(d[2] for d in done) - min(d[1] for d in done)
    store = open_store(location)
    n_entries = len(store.snapshot().entries)
    store.close()
    ok = verify_path(location).ok and n_entries == charges
    return {
        "backend": backend, "procs": procs, "charges": charges, "wall_s": round(wall, 3),
        "charges_per_s": round(charges / wall, 1), "client_cpu_s": round(sum(d[3] for d in done), 3),
        "server_cpu_s": None if server is None else round(server_after - server_before, 2),
        "verified": ok,
    }


def render(runs: list[dict]) -> str:
    lines = [
        "# Ledger throughput at the gate",
        "",
        "`benchmarks/ledger_throughput.py`: P processes charge one ledger (each its own gate),",
        "each charge verified, signed and committed durably; wall seconds from a common start to",
        "the last charge. Client CPU is the sum over the P processes while charging; server CPU",
        "is PostgreSQL's (postmaster and backends). Every ledger verified afterwards.",
        "",
        "| backend | P | charges | wall s | charges/s | client CPU s | server CPU s | verified | machine | "
        "load avg at start | date |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["backend"], r["procs"])):
        server = "—" if r.get("server_cpu_s") is None else f"{r['server_cpu_s']:.2f}"
        lines.append(f"| {r['backend']} | {r['procs']} | {r['charges']} | {r['wall_s']:.2f} | "
                     f"{r['charges_per_s']:.0f} | {r['client_cpu_s']:.2f} | {server} | "
                     f"{'yes' if r['verified'] else 'NO'} | {r.get('machine', '')} | {r.get('load', '')} | "
                     f"{r.get('date', '')} |")
    lines += [
        "",
        "Reading the figures: with P processes, each charge first verifies the entries the other",
        "P − 1 appended since its last read (Ed25519 signature, hash chain, cost recomputed), so",
        "client CPU per charge grows with P; the exclusive transaction (SQLite's write lock,",
        "PostgreSQL's advisory lock) serialises the commits, each waiting for a durable flush.",
        "Runs on a shared machine: compare rows of one date and load, not across machines.",
        "",
        "Produced by:",
        "",
    ]
    lines += [f"    {c}" for c in dict.fromkeys(r["command"] for r in runs if r.get("command"))]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    ap.add_argument("--procs", nargs="+", type=int, default=[1, 8, 64])
    ap.add_argument("--charges", type=int, default=256, help="charges per configuration, shared by the processes")
    ap.add_argument("--nice", type=int, default=10, help="niceness of this run (0: none)")
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--render-only", action="store_true", help="rewrite the .md from the .json")
    args = ap.parse_args(argv)
    if args.render_only:
        (RESULTS / "ledger_throughput.md").write_text(render(json.loads((RESULTS / "ledger_throughput.json")
                                                                        .read_text())))
        return 0
    if args.nice:
        os.nice(args.nice)
    workdir = Path(tempfile.mkdtemp(prefix="dpsynth-ledger-bench-"))
    os.environ.setdefault("DPSYNTH_WITNESS_DIR", str(workdir / "witness"))
    server = None
    if "postgres" in args.backends:
        from tests.postgres_server import PostgresServer

        server = PostgresServer.start(max_connections=max(100, max(args.procs) + 20))
    runs = []
    try:
        for backend in args.backends:
            for procs in args.procs:
                load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                r = run_one(backend, procs, args.charges, workdir, server if backend == "postgres" else None)
                r.update(machine=f"{platform.machine()} × {os.cpu_count()} CPUs", load=load,
                         date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                         python=platform.python_version(),
                         command="python benchmarks/ledger_throughput.py " + " ".join(sys.argv[1:] if argv is None
                                                                                       else argv))
                print(json.dumps(r), flush=True)
                runs.append(r)
    finally:
        if server is not None:
            server.stop()
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "ledger_throughput.json"
        old = json.loads(path.read_text()) if path.exists() else []
        keep = {(r["backend"], r["procs"], r["charges"]) for r in runs}
        merged = [r for r in old if (r["backend"], r["procs"], r["charges"]) not in keep] + runs
        path.write_text(json.dumps(merged, indent=2) + "\n")
        (RESULTS / "ledger_throughput.md").write_text(render(merged))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
