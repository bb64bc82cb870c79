"""`dpsynth audit` on every dpsynth generator at ε ∈ {1, 4}, and the same audit on peers.

For each dpsynth generator and ε: `dpsynth.audit.audit` (worst-case pair of its family, every
fit through the real gate on audit ledgers, black-box and white-box statistics, the verdict
at α = 0.05).  For the peers — smartnoise-synth's MST (documented usage) and PATE-GAN, and
synthcity's PATE-GAN — `benchmarks/peers/audit_peer.py` fits them in their own Python
environments on the same pair and the same black-box statistics are bounded by the same
code (`dpsynth.audit.verdict.summarize`).

    python benchmarks/audit.py --runs 200 --jobs 2                      # dpsynth generators
    python benchmarks/audit.py --generators --peers snsynth-mst --peer-runs 36 --out benchmarks/results/audit_peers

Writes benchmarks/results/audit.{json,md}; each configuration's fits are kept (resumable)
under --work (default /tmp/dpsynth-audit-bench), and one report page is copied next to the
results as an example.  Wall and CPU seconds are recorded per configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # this checkout's dpsynth, not an installed one
    sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
GENERATORS = ("independent", "mst", "aim", "dpctgan", "pategan")
PEERS = {"snsynth-mst": ("SNSYNTH_PYTHON", "/work/venv-snsynth/bin/python"),
         "snsynth-pategan": ("SNSYNTH_PYTHON", "/work/venv-snsynth/bin/python"),
         "synthcity-pategan": ("SYNTHCITY_PYTHON", "/work/venv-synthcity/bin/python")}
PEER_NOTES = {
    "snsynth-mst": "smartnoise-synth MSTSynthesizer, categorical columns, preprocessor_eps=0 (documented usage)",
    "snsynth-pategan": "smartnoise-synth PATEGAN (needs n ≥ 1000 for its n/1000 teachers: both worlds padded "
                       "with 2000 rows (0,0,0))",
    "synthcity-pategan": "synthcity pategan plugin, n_teachers=2, n_iter=3, generator_n_iter=2, target c",
}


def children_cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def audit_ours(generator: str, epsilon: float, runs: int, jobs: int, work: Path) -> dict[str, Any]:
    from dpsynth.audit import audit

    out = work / f"{generator}-eps{epsilon:g}"
    resume = (out / "results.jsonl").exists()
    t0, c0 = time.perf_counter(), children_cpu()
    r = audit(generator, epsilon=epsilon, runs=runs, out=out, jobs=jobs, resume=resume, progress=False)
    s = r.summary
    return {"who": "dpsynth", "generator": generator, "epsilon": epsilon, "runs_per_world": s["runs_per_world"],
            "wall_seconds": time.perf_counter() - t0, "cpu_seconds": children_cpu() - c0,
            "fit_cpu_seconds": s["fit_cpu_seconds"], "resumed": resume, "report": str(r.report),
            "summary": _plain(s), "params": r.config.to_dict()["params"]}


def _plain(s: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in s.items() if k != "statistics"}
    out["statistics"] = {k: {kk: vv for kk, vv in v.items() if kk not in ("out", "in")}
                         for k, v in s["statistics"].items()}
    return out


def _peer_chunk(peer: str, world: str, a: int, b: int, epsilon: float, n_synth: int) -> list[dict[str, Any]]:
    env, default = PEERS[peer]
    python = os.environ.get(env, default)
    cmd = [python, str(ROOT / "benchmarks" / "peers" / "audit_peer.py"), "--peer", peer, "--world", world,
           "--runs", f"{a}:{b}", "--epsilon", str(epsilon), "--n-synth", str(n_synth)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/tmp",
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    fits = [json.loads(line[4:]) for line in proc.stdout.splitlines() if line.startswith("FIT ")]
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR ")]
    if errors or proc.returncode != 0:
        raise RuntimeError(f"{peer}: {errors[:1] or proc.stderr[-800:]}")
    return fits


def audit_peer(peer: str, epsilon: float, runs: int, jobs: int, work: Path, n_synth: int = 1000) -> dict[str, Any]:
    from dpsynth.audit.verdict import summarize

    store = work / f"peer-{peer}-eps{epsilon:g}.jsonl"
    fits = [json.loads(x) for x in store.read_text().splitlines()] if store.exists() else []
    done = {(f["world"], f["run"]) for f in fits}
    chunk = 5
    tasks = [(w, a, min(runs, a + chunk)) for a in range(0, runs, chunk) for w in ("out", "in")  # worlds in step
             if any((w, r) not in done for r in range(a, min(runs, a + chunk)))]
    t0, c0 = time.perf_counter(), children_cpu()
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # each task is its own peer process
        for new in pool.map(lambda t: _peer_chunk(peer, t[0], t[1], t[2], epsilon, n_synth), tasks):
            new = [f for f in new if (f["world"], f["run"]) not in done]
            with open(store, "a") as fh:
                fh.writelines(json.dumps(f) + "\n" for f in new)
            fits += new
            done |= {(f["world"], f["run"]) for f in new}
    fits = [f for f in fits if f["run"] < runs]
    s = summarize({"epsilon": epsilon, "delta": 1e-5, "alpha": 0.05}, fits)
    return {"who": "peer", "generator": peer, "epsilon": epsilon, "runs_per_world": s["runs_per_world"],
            "wall_seconds": time.perf_counter() - t0, "cpu_seconds": children_cpu() - c0,
            "fit_cpu_seconds": s["fit_cpu_seconds"], "note": PEER_NOTES[peer], "summary": _plain(s)}


def render(report: dict[str, Any]) -> str:
    lines = [
        "# `dpsynth audit`: every generator, and peers, on the worst-case pair",
        "",
        "Written by `benchmarks/audit.py` from `audit.json` (do not edit by hand). Pair (dpsynth/audit/worlds.py, "
        "add/remove-one): D′ = 4 × (0,0,0), D = D′ + (1,1,1), three binary columns; δ = 1e-5; α = 0.05 in all, "
        "split over the bounds that count. Statistics: *score* = synthetic rows equal to the target, *values* = "
        "synthetic cells holding a target value (black-box, 1000 rows per fit), *white* = the likelihood-ratio "
        "statistic of the noisy marginal measurements (white-box, marginal generators). ε_lb: the largest "
        "Clopper–Pearson lower bound over the statistics; GDP ε: the Gaussian-DP bound of the white-box statistic "
        "at δ (counted only for it); ceiling: the largest ε bound the evaluation fits could give. CPU s: fits' CPU "
        "seconds summed (worker processes); wall s: this configuration's wall time.",
        "",
        "| who | generator | claimed ε | fits/world | ε_lb (CP) | ceiling | μ_lb white / μ claim | GDP ε (white) | "
        "AUC (score, values) | verdict | wall s | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        s = row["summary"]
        st = s["statistics"]
        white = st.get("white")
        mu = f"{white['mu_lb']:.3f} / {s['claim']['mu']:.3f}" if white else "—"
        gdp = f"{white['eps_lb_gdp']:.3f}" if white else "—"
        aucs = ", ".join(f"{st[k]['auc']:.2f}" for k in ("score", "values") if k in st)
        verdict = "**FLAGGED**" if s["flagged"] else "passed"
        lines.append(f"| {row['who']} | {row['generator']} | {row['epsilon']:g} | {row['runs_per_world']} | "
                     f"**{s['eps_lb']:.3f}** | {s['ceiling']:.3f} | {mu} | {gdp} | {aucs} | {verdict} | "
                     f"{row['wall_seconds']:.0f} | {row['fit_cpu_seconds']:.0f} |")
    peers = [r["generator"] for r in report["rows"] if r["who"] == "peer"]
    if peers:
        lines += ["", "Peers as run:", ""] + [f"* {k}: {r['note']}" for k in PEER_NOTES for r in report["rows"]
                                              if r["who"] == "peer" and r["generator"] == k]
    if report.get("notes"):
        lines += ["", "Notes:", ""] + [f"* {n}" for n in report["notes"]]
    lines += ["", f"Machine: {report['machine']}; started {report['started']}.", "", "Reproduce:", "", "```sh",
              *report["commands"], "```", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generators", nargs="*", default=list(GENERATORS))
    p.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 4.0])
    p.add_argument("--runs", type=int, default=200, help="fits per world for dpsynth generators")
    p.add_argument("--runs-for", nargs="*", default=[], help="GENERATOR:RUNS overrides")
    p.add_argument("--peers", nargs="*", default=[], choices=sorted(PEERS))
    p.add_argument("--peer-runs", type=int, default=40)
    p.add_argument("--peer-epsilons", nargs="+", type=float, default=[1.0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/dpsynth-audit-bench"))
    p.add_argument("--out", type=Path, default=RESULTS / "audit")
    p.add_argument("--note", action="append", default=[], help="a line for the results' notes")
    p.add_argument("--render-only", action="store_true", help="re-render OUT.md from OUT.json (with --note)")
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    report = json.loads(json_path.read_text()) if json_path.exists() else {"rows": [], "commands": []}
    report.setdefault("notes", [])
    report["notes"] += [n for n in args.note if n not in report["notes"]]
    if args.render_only:
        json_path.write_text(json.dumps(report, indent=1))
        md_path.write_text(render(report))
        return 0
    report.setdefault("started", time.strftime("%Y-%m-%d %H:%M:%S"))
    report["machine"] = (f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other work), load "
                         f"{os.getloadavg()[0]:.2f} at the last start, {args.jobs} worker processes")
    report["commands"].append(" ".join(["python", "benchmarks/audit.py", *(argv if argv is not None else sys.argv[1:])]))
    overrides = dict((g, int(r)) for g, r in (x.split(":") for x in args.runs_for))

    def keep(row: dict[str, Any]) -> None:
        report["rows"] = [r for r in report["rows"] if (r["who"], r["generator"], r["epsilon"]) !=
                          (row["who"], row["generator"], row["epsilon"])] + [row]
        json_path.write_text(json.dumps(report, indent=1))
        md_path.write_text(render(report))
        s = row["summary"]
        print(f"{row['who']} {row['generator']} eps {row['epsilon']:g}: eps_lb {s['eps_lb']:.3f} (ceiling "
              f"{s['ceiling']:.3f}) flagged {s['flagged']}; {row['runs_per_world']} fits/world, wall "
              f"{row['wall_seconds']:.0f} s, fit CPU {row['fit_cpu_seconds']:.0f} s", flush=True)

    for g in args.generators:
        for e in args.epsilons:
            row = audit_ours(g, e, overrides.get(g, args.runs), args.jobs, args.work)
            if g == "mst" and e == 1.0:
                shutil.copy(row["report"], RESULTS / "audit_mst_eps1_report.html")
            keep(row)
    for peer in args.peers:
        for e in args.peer_epsilons:
            try:
                keep(audit_peer(peer, e, args.peer_runs, args.jobs, args.work))
            except RuntimeError as exc:
                print(f"{peer}: {exc}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
