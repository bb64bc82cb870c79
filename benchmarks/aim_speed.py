"""AIM's CPU time where it matters most (issue #20): a baseline checkout against this one.

    python benchmarks/aim_speed.py run --label baseline --repo ../w20-base --dataset aim200k --epsilon 1
    python benchmarks/aim_speed.py run --label new --dataset aim200k --epsilon 1
    python benchmarks/aim_speed.py run --label new --dataset aim200k --epsilon 1 --contention
    python benchmarks/aim_speed.py render            # rewrite aim_speed.md from aim_speed.json

Datasets: ``adult_hd`` (``../shared/data``) and ``aim200k`` (200,000 x 15, built at run time by
``benchmarks/aim_table.py`` from salary_hd and msnbc).  δ = 1e-9, as ``marginal.py``.

Each run is one subprocess (``marginal.run_child``): OMP/MKL/OPENBLAS threads = 2, pinned to
two CPUs with taskset where it exists, AIM with its defaults and ``progress=True`` (the log
keeps the rounds).  ``--repo`` names the checkout whose ``dpsynth`` the child imports (the
baseline is a detached worktree of an older commit, measured by this same harness).  We record
the child's CPU seconds (user + system) beside its wall time, its peak RSS, fit and sample
seconds inside it, the 1/2/3-way mean TVD against the real table, and the 1-minute load
average at the start and end (the machine is shared: CPU seconds are the primary figure).

``--contention`` starts a second 2-thread CPU job beside the run (``burn``: two threads of
torch matrix products, pinned to the same two CPUs) for its whole length: the run's CPU time
should not grow much when it shares its cores.

Results are merged into ``benchmarks/results/aim_speed.json`` by (label, dataset, ε, seed,
contention) and rendered to ``aim_speed.md`` with new / baseline ratios.
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
BENCH = REPO / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))

RESULTS = BENCH / "results" / "aim_speed.json"
DELTA = 1e-9
CPUS = "0,1"


def _load(dataset: str):
    import pandas as pd

    if dataset == "aim200k":
        import aim_table

        folder = aim_table.ensure()
    else:
        folder = REPO.parent / "shared" / "data" / dataset
    domain = json.loads(next(folder.glob("*-domain.json")).read_text())
    real = pd.read_csv(next(folder.glob("*.csv")))
    return real[list(domain)], domain


# --------------------------------------------------------------------------- child


def _child(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="aim_speed.py child")
    p.add_argument("--repo", type=Path, required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--meta", type=Path, required=True)
    a = p.parse_args(argv)
    sys.path.insert(0, str(a.repo.resolve()))
    import dpsynth

    from accountant.testing import make_test_gate
    from dpsynth.generators import AIM
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.schema import Column, Schema
    from dpsynth.table import PrivateTable

    real, domain = _load(a.dataset)
    schema = Schema([Column(c, "categorical", categories=list(range(s))) for c, s in domain.items()])
    with tempfile.TemporaryDirectory(prefix="dpsynth-aim-speed-") as tmp:
        ledger = make_test_gate(tmp, epsilon=a.epsilon, delta=DELTA, max_records=1_000_000, frame=real)
        table = PrivateTable(real, schema, ledger.gate, random_source=SeededRandomSource(a.seed),
                             dataset_key=ledger.dataset_key)
        generator = AIM(epsilon=a.epsilon, progress=True)
        t0 = time.perf_counter()
        generator.fit(table)
        t1 = time.perf_counter()
        synth = generator.sample(len(real), seed=a.seed)
        t2 = time.perf_counter()
        ledger_digests = _ledger_digests(ledger.gate)
    synth.to_csv(a.out, index=False)
    rounds = generator.fit_log.get("rounds", [])
    a.meta.write_text(json.dumps({
        "fit_s": t1 - t0, "sample_s": t2 - t1, "fit_sample_s": t2 - t0, "dpsynth": dpsynth.__file__,
        "rounds": len(rounds), "selected": [r["clique"] for r in rounds],
        "model_cells": generator.model.size, "model_cliques": len(generator.model.cliques),
        **ledger_digests}))


def _ledger_digests(gate) -> dict[str, str]:
    """SHA-256 of what the run charged (each charge's event, purpose and parameters: the
    candidates, weights, offsets, σ, ε) and of what it released (each release's commitment
    to its output): two runs with equal digests spent the same budget on the same
    mechanisms and released the same outputs (timestamps, hashes and the seal differ)."""
    import hashlib

    entries = gate.snapshot().entries
    charges = [[e.event, e.purpose, e.parameters, e.cost, e.rho] for e in entries if e.kind == "charge"]
    releases = [e.commitment for e in entries if e.kind == "release"]
    digest = lambda x: hashlib.sha256(json.dumps(x, sort_keys=True).encode()).hexdigest()[:16]  # noqa: E731
    return {"ledger_charges": digest(charges), "ledger_releases": digest(releases), "ledger_entries": len(entries)}


def _burn(argv: list[str]) -> None:
    """A 2-thread CPU job that runs until killed (the contention)."""
    import torch

    torch.set_num_threads(2)
    x = torch.randn(512, 512)
    while True:
        x = torch.tanh(x @ x.T / 512.0)


# --------------------------------------------------------------------------- parent


def _commit(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "dpsynth"],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return head + ("+dirty" if dirty else "")


def _run(argv: list[str]) -> None:
    from marginal import child_env, pin_prefix, run_child, score, tail

    p = argparse.ArgumentParser(prog="aim_speed.py run")
    p.add_argument("--label", required=True, help="baseline | new (or any name)")
    p.add_argument("--repo", type=Path, default=REPO)
    p.add_argument("--dataset", default="adult_hd")
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--contention", action="store_true")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--python", default=sys.executable)
    a = p.parse_args(argv)
    real, domain = _load(a.dataset)
    key = f"{a.label}/{a.dataset}/eps={a.epsilon:g}/seed={a.seed}" + ("/contention" if a.contention else "")
    record = {"label": a.label, "repo": str(a.repo.resolve()), "commit": _commit(a.repo), "dataset": a.dataset,
              "rows": len(real), "columns": len(domain), "epsilon": a.epsilon, "seed": a.seed,
              "contention": a.contention, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "loadavg_start": round(os.getloadavg()[0], 2)}
    logs = BENCH / "results" / "aim_speed_logs"
    logs.mkdir(parents=True, exist_ok=True)
    burner = None
    if a.contention:
        burner = subprocess.Popen(pin_prefix(CPUS) + [a.python, str(Path(__file__).resolve()), "burn"],
                                  env=child_env(), start_new_session=True)
    try:
        with tempfile.TemporaryDirectory(prefix="aim-speed-") as tmp:
            out, meta = Path(tmp) / "synth.csv", Path(tmp) / "meta.json"
            cmd = pin_prefix(CPUS) + [a.python, str(Path(__file__).resolve()), "child", "--repo", str(a.repo),
                                      "--dataset", a.dataset, "--epsilon", repr(a.epsilon), "--seed", str(a.seed),
                                      "--out", str(out), "--meta", str(meta)]
            log = logs / (key.replace("/", "_") + ".log")
            print(f"[start] {key}", flush=True)
            res = run_child(cmd, a.timeout, log)
            record.update(res, log_tail=tail(log, 4))
            record["loadavg_end"] = round(os.getloadavg()[0], 2)
            if burner is not None:
                from procstat import proc_cpu

                record["burner_cpu_s"] = proc_cpu(burner.pid)
            ok = not res["timed_out"] and res["rc"] == 0 and out.exists()
            record["status"] = "ok" if ok else ("DNF" if res["timed_out"] else "failed")
            if ok:
                record.update(json.loads(meta.read_text()))
                record.update(score(out, real, domain))
    finally:
        if burner is not None:
            os.killpg(burner.pid, 9)
            burner.wait()
    print(f"[{record['status']}] {key}: CPU {record['cpu_s']:.1f} s, wall {record['wall_s']:.1f} s, "
          f"RSS {record['peak_rss_mb']:.0f} MB, 3-way TVD {record.get('tvd_3way', float('nan')):.4f}", flush=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    results["runs"][key] = record
    results["machine"] = {"platform": platform.platform(), "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    render()


# --------------------------------------------------------------------------- report


def _f(v, spec=".1f"):
    return "—" if v is None else format(v, spec)


def render() -> None:
    results = json.loads(RESULTS.read_text())
    runs = results["runs"]
    lines = ["# AIM speed: baseline against this checkout (issue #20)", "",
             "Generated by `benchmarks/aim_speed.py` (its docstring says how).  Each run is one subprocess, "
             "2 threads, pinned to 2 CPUs; CPU s = user + system of the child (imports and CSV load "
             "included), wall s beside it; fit+sample s timed inside the child.  TVD = mean half-L1 "
             "distance between real and synthetic marginals.  The machine is a shared 2-core VM: "
             "load averages (1 min) at start and end are given; CPU seconds are the figure to compare.  "
             "*Contention*: a second 2-thread CPU job (torch matrix products) pinned to the same 2 CPUs "
             "for the whole run.", "",
             "| label | commit | dataset | ε | seed | contention | status | CPU s | wall s | fit+sample s | "
             "peak RSS MB | rounds | model cells | 1-way | 2-way | 3-way TVD | load start/end | started (UTC) |",
             "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    order = sorted(runs.values(), key=lambda r: (r["dataset"], r["epsilon"], r["seed"], r["contention"],
                                                 r["label"] != "baseline"))
    for r in order:
        lines.append(f"| {r['label']} | {r.get('commit', '?')} | {r['dataset']} | {r['epsilon']:g} | {r['seed']} | "
                     f"{'yes' if r['contention'] else 'no'} | {r['status']} | {_f(r.get('cpu_s'))} | "
                     f"{_f(r.get('wall_s'))} | {_f(r.get('fit_sample_s'))} | {_f(r.get('peak_rss_mb'), '.0f')} | "
                     f"{r.get('rounds', '—')} | {r.get('model_cells', '—')} | {_f(r.get('tvd_1way'), '.4f')} | "
                     f"{_f(r.get('tvd_2way'), '.4f')} | {_f(r.get('tvd_3way'), '.4f')} | "
                     f"{r.get('loadavg_start')}/{r.get('loadavg_end')} | {r['started_utc']} |")
    lines += ["", "## Ratios new / baseline (same dataset, ε, seed; no burner)", "",
              "| new | baseline | dataset | ε | seed | CPU ratio | wall ratio | RSS ratio | 3-way TVD ratio | "
              "same selections | same ledger |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|"]
    # (new label, baseline label): "-rerun"/"-busy" runs were taken back to back at a similar load.
    pairs = [("new", "baseline"), ("new-rerun", "baseline-rerun"), ("new-rerun", "baseline-busy"),
             ("w20c", "baseline-w20c"), ("w20c-rerun", "prev-w20c")]
    for r in order:
        for new_label, base_label in pairs:
            if r["label"] != new_label or r["contention"] or r["status"] != "ok":
                continue
            b = runs.get(f"{base_label}/{r['dataset']}/eps={r['epsilon']:g}/seed={r['seed']}")
            if not b or b["status"] != "ok":
                continue
            same = "yes" if b.get("selected") == r.get("selected") else "no"
            # Same charges (events, purposes, parameters) and same release commitments; "—"
            # where either run predates the digests.
            ledger = ("—" if not (b.get("ledger_charges") and r.get("ledger_charges")) else
                      "yes" if (b["ledger_charges"], b["ledger_releases"]) == (r["ledger_charges"],
                                                                             r["ledger_releases"]) else "no")
            lines.append(f"| {new_label} | {base_label} | {r['dataset']} | {r['epsilon']:g} | {r['seed']} | "
                         f"{r['cpu_s'] / b['cpu_s']:.3f} | {r['wall_s'] / b['wall_s']:.3f} | "
                         f"{r['peak_rss_mb'] / b['peak_rss_mb']:.3f} | {r['tvd_3way'] / b['tvd_3way']:.3f} | {same} | {ledger} |")
    lines += ["", "## Contention: CPU s with a second 2-thread job beside it / CPU s alone", "",
              "| label | dataset | ε | seed | CPU s alone | CPU s contended | ratio | wall alone | wall contended |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in order:
        if not r["contention"] or r["status"] != "ok":
            continue
        q = runs.get(f"{r['label']}/{r['dataset']}/eps={r['epsilon']:g}/seed={r['seed']}")
        if not q or q["status"] != "ok":
            continue
        lines.append(f"| {r['label']} | {r['dataset']} | {r['epsilon']:g} | {r['seed']} | {q['cpu_s']:.1f} | "
                     f"{r['cpu_s']:.1f} | {r['cpu_s'] / q['cpu_s']:.2f} | {q['wall_s']:.1f} | {r['wall_s']:.1f} |")
    notes = [f"- `{k}`: {r['note']}" for k, r in sorted(runs.items()) if r.get("note")]
    if notes:
        lines += ["", "## Notes on single runs", "", *notes]
    if results.get("reading"):
        lines += ["", "## Reading", "", results["reading"]]
    RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    cmd, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if cmd == "child":
        _child(rest)
    elif cmd == "burn":
        _burn(rest)
    elif cmd == "run":
        _run(rest)
    elif cmd == "render":
        render()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
