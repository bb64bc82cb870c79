"""`dpsynth serve` killed with SIGKILL in the middle of charges, N times (the issue asks 100;
tests/serve/test_faults.py runs 30 by default): what each kill left behind, and whether the
ledger held.

The loop is the fault test's own (tests/serve/faults.kill_loop): measurements under fixed
request ids, SIGKILL at a random moment of each (sometimes as the request leaves the
client), restart, retry every unanswered request under the SAME id (at once, or later under
another kill).  After every restart the ledger verifies; an answer received before a kill is
the one its retry gets back; at the end every request id is charged once and released once,
and every answer's release commits to it (tests/serve/ledger_checks.check_ledger).  Any
violation stops the run with an AssertionError naming the seed (rerun it with --seed).

Outcomes, per kill: *answered* (the response got out before the kill), *lost-none* (killed
before the charge), *lost-charged* (charged, no answer kept), *lost-stored* (the answer kept,
not yet released), *lost-released* (released, the response lost).  Every lost one was
answered later by a retry under its request id, charged once.

    nice python benchmarks/service_kills.py                       # 100 kills, SQLite ledger
    python benchmarks/service_kills.py --kills 30 --ledger postgres
    python benchmarks/service_kills.py --render-only

Results: benchmarks/results/service_kills.json (one record per run) and service_kills.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULTS = REPO / "benchmarks" / "results"
OUTCOMES = ("answered", "lost-none", "lost-charged", "lost-stored", "lost-released")


def run(kills: int, seed: int | None, ledger: str, workdir: Path) -> dict:
    from tests.serve.faults import kill_loop
    from tests.serve.support import team_workspace

    server = None
    url = None
    if ledger == "postgres":
        from tests.postgres_server import PostgresServer, fresh_ledger_name

        server = PostgresServer.start()
        url = server.url(fresh_ledger_name("kills"))
    try:
        paths = team_workspace(Path(tempfile.mkdtemp(prefix="kills-", dir=workdir)), ledger_url=url,
                               epsilon_total=50.0, default_cap=50.0)
        t = time.monotonic()
        report = kill_loop(paths, kills, seed=seed, log=lambda line: print(line, flush=True))
        wall = time.monotonic() - t
    finally:
        if server is not None:
            server.stop()
    r = report.to_dict()
    return {"ledger": ledger, "kills": kills, "seed": r["seed"], "outcomes": r["outcomes"], "answers": r["answers"],
            "retried_after_kill": r["retried_after_kill"], "entries": r["entries"], "held": True,
            "wall_s": round(wall, 1),
            "restart_wall_median_s": round(statistics.median(r["restart_wall"]), 2),
            "restart_wall_max_s": round(max(r["restart_wall"]), 2),
            "restart_cpu_median_s": round(statistics.median(r["restart_cpu"]), 2),
            "verify_wall_median_s": round(statistics.median(r["verify_wall"]), 3) if r["verify_wall"] else None,
            "latency_s": {k: round(v, 4) for k, v in r["latency"].items()}}


def render(runs: list[dict]) -> str:
    lines = ["# `dpsynth serve` killed with SIGKILL mid-charge", "",
             "`benchmarks/service_kills.py` (the loop of tests/serve/faults.kill_loop). *held*: after every",
             "restart the ledger verified, and at the end every request id was charged once and released",
             "once, every answer received was the one its release commits to, and a retry returned it",
             "again. Outcomes count what each kill left behind (see the script's docstring); every lost",
             "request was answered later by a retry under its request id.", "",
             "| ledger | kills | " + " | ".join(OUTCOMES) + " | retried under a later kill | requests answered | "
             "entries | held | restart s (median / max) | restart CPU s | run wall s | seed | load avg | date |",
             "|---|---:|" + "---:|" * len(OUTCOMES) + "---:|---:|---:|---|---|---:|---:|---:|---|---|"]
    for r in runs:
        counts = " | ".join(str(r["outcomes"].get(o, 0)) for o in OUTCOMES)
        lines.append(f"| {r['ledger']} | {r['kills']} | {counts} | {r['retried_after_kill']} | {r['answers']} | "
                     f"{r['entries']} | {'yes' if r['held'] else 'NO'} | {r['restart_wall_median_s']:.2f} / "
                     f"{r['restart_wall_max_s']:.2f} | {r['restart_cpu_median_s']:.2f} | {r['wall_s']:.0f} | "
                     f"{r['seed']} | {r.get('load', '')} | {r.get('date', '')} |")
    lines += ["", "Produced by:", ""]
    lines += [f"    {c}" for c in dict.fromkeys(r["command"] for r in runs if r.get("command"))]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None, help="replay a run (default: a fresh seed, recorded)")
    ap.add_argument("--ledger", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--nice", type=int, default=10)
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    path = RESULTS / "service_kills.json"
    if args.render_only:
        (RESULTS / "service_kills.md").write_text(render(json.loads(path.read_text())))
        return 0
    if args.nice:
        os.nice(args.nice)
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    workdir = Path(tempfile.mkdtemp(prefix="dpsynth-kills-"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    r = run(args.kills, args.seed, args.ledger, workdir)
    command = ("python benchmarks/service_kills.py " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()
    r.update(load=load, machine=f"{platform.machine()} × {os.cpu_count()} CPUs",
             date=datetime.now(timezone.utc).strftime("%Y-%m-%d"), python=platform.python_version(), command=command)
    print(json.dumps(r), flush=True)
    if not args.no_save:
        RESULTS.mkdir(parents=True, exist_ok=True)
        runs = json.loads(path.read_text()) if path.exists() else []
        runs.append(r)
        path.write_text(json.dumps(runs, indent=1) + "\n")
        (RESULTS / "service_kills.md").write_text(render(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
