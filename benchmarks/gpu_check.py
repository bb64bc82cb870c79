"""The GPU path of dpsynth.pgm and AIM, measured (issue #20): one short script for a GPU machine.

    python benchmarks/gpu_check.py [--out DIR] [--rows N]
    python benchmarks/gpu_check.py --device cpu --rows 5000     # a dry run of the script itself
    python benchmarks/gpu_check.py --smoke                      # the same, tiny, on the CPU (~1 min)

Needs torch with CUDA; runs in about 2-4 minutes on one H100 and writes ``gpu_check.json``
and ``gpu_check.md`` to ``--out`` (default ``$OUT`` if set, else ``benchmarks/results``).
It needs no data files: the table is drawn from a random graphical model.

1. Oracle: one belief-propagation + projection call (what estimation repeats) on a
   ~1.5M-cell junction tree (the size AIM reaches on a 200k-row table at ε = 1), float64 and
   float32, CPU (1 thread and all threads) against CUDA: seconds per call, and the largest
   float32-vs-float64 difference of the marginals.
2. estimate(): the same 30 noisy measurements fitted on CPU and CUDA (float64, 200
   iterations): time and the largest difference of the fitted marginals (same algorithm,
   so they should agree to ~1e-9 relative).
3. AIM end to end on a 200,000-row, 15-column table sampled from a random model, ε = 1,
   ``device="cuda"``: fit and sample seconds, rounds, model size, 3-way TVD (``--rows``).

A run that fails prints the error and still writes what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import dpsynth  # noqa: E402,F401  (before torch: OpenMP idle threads sleep)
import numpy as np  # noqa: E402
import torch  # noqa: E402

ACCEL = "cuda"
SMOKE = False  # --smoke: every step small, on the CPU (checks the script runs, measures nothing)
SIZES = [33, 3, 3, 33, 33, 33, 33, 76, 18, 18, 18, 18, 18, 18, 18]
CLIQUES = [(1, 2, 7), (1, 2, 3), (1, 9, 10), (2, 10, 11), (0, 1, 2), (1, 11, 12), (3, 6, 7), (4, 6),
           (8, 9, 10), (5, 6), (11, 12, 13), (13, 14), (0, 3, 6), (8, 12)]


def _domain():
    from dpsynth.pgm import Domain

    return Domain([f"c{i}" for i in range(len(SIZES))], SIZES)


def _model(device, seed=0, scale=1.0, total=200_000.0):
    from dpsynth.pgm import CliqueVector, Factor, GraphicalModel

    d = _domain()
    g = torch.Generator().manual_seed(seed)
    cliques = [tuple(d.attrs[i] for i in cl) for cl in CLIQUES]
    pots = {cl: Factor(d.project(cl), scale * torch.randn(d.project(cl).shape, generator=g, dtype=torch.float64))
            for cl in cliques}
    return GraphicalModel(d, CliqueVector(pots), total, device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def oracle_timing(report):
    rows = []
    reference = None
    for device_name, threads in (("cpu", 1), ("cpu", torch.get_num_threads()), (ACCEL, None)):
        device = torch.device(device_name)
        if threads:
            torch.set_num_threads(threads)
        model = _model(device)
        pm = model.parameter_map
        theta = pm.flatten([model.potentials[c].values for c in model.cliques])
        for dtype in (torch.float64, torch.float32):
            th = theta.to(dtype)

            def call():
                probs, _ = pm.bp.calibrate_probabilities(pm.potentials_flat(th))
                return pm.project_flat(probs)

            mu = call()
            _sync(device)
            reps = 20 if device.type == "cuda" else 1 if SMOKE else 3
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(reps):
                mu = call()
            _sync(device)
            wall, cpu = (time.perf_counter() - t0) / reps, (time.process_time() - c0) / reps
            mu = mu.double().cpu()
            if reference is None:
                reference = mu
            rows.append({"device": device_name, "threads": threads, "dtype": str(dtype).split(".")[-1],
                         "model_cells": model.size, "wall_s_per_call": wall, "cpu_s_per_call": cpu,
                         "max_abs_diff_vs_cpu_float64": float((mu - reference).abs().max())})
            print(f"oracle {rows[-1]}", flush=True)
    report["oracle"] = rows


def estimate_agreement(report):
    from dpsynth.pgm import Measurement, estimate

    d = _domain()
    truth = _model("cpu", seed=1, scale=0.7)
    rng = np.random.default_rng(1)
    cliques = [tuple(d.attrs[i] for i in cl) for cl in CLIQUES] + [(a,) for a in d.attrs]
    ms = [Measurement(cl, truth.project(cl) + rng.normal(0, 20.0, d.project(cl).shape), 20.0) for cl in cliques]
    out = {}
    fitted = {}
    for device in ("cpu", ACCEL):
        t0 = time.perf_counter()
        m = estimate(d, ms, iters=20 if SMOKE else 200, tol=0, device=device)
        _sync(torch.device(device))
        out[device] = {"seconds": time.perf_counter() - t0, "loss": m.fit_info["loss"]}
        fitted[device] = m
    diff = max(float(np.abs(fitted["cpu"].project(cl) - fitted[ACCEL].project(cl)).max()) for cl in cliques)
    out["max_abs_marginal_diff"] = diff
    print(f"estimate {out}", flush=True)
    report["estimate"] = out


def aim_end_to_end(report, rows):
    import pandas as pd

    from accountant.testing import make_test_gate
    from dpsynth.generators import AIM
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.schema import Column, Schema
    from dpsynth.table import PrivateTable

    d = _domain()
    codes = _model("cpu", seed=2, scale=1.2).sample(rows, rng=np.random.default_rng(2))
    real = pd.DataFrame(codes, columns=list(d.attrs))
    schema = Schema([Column(a, "categorical", categories=list(range(n))) for a, n in zip(d.attrs, d.shape)])
    with tempfile.TemporaryDirectory() as tmp:
        led = make_test_gate(tmp, epsilon=1.0, delta=1e-9, max_records=1_000_000, frame=real)
        table = PrivateTable(real, schema, led.gate, random_source=SeededRandomSource(0), dataset_key=led.dataset_key)
        small = {"rounds": len(SIZES) + 5, "iters": 20, "final_iters": 50} if SMOKE else {}
        gen = AIM(epsilon=1.0, device=ACCEL, progress=True, **small)
        t0 = time.perf_counter()
        gen.fit(table)
        t1 = time.perf_counter()
        synth = gen.sample(rows, seed=0)
        t2 = time.perf_counter()
    from dpsynth.evaluate import mean_tvds

    tvd = mean_tvds(real, synth[list(d.attrs)].astype(np.int64), dict(zip(d.attrs, d.shape)), (1, 2, 3))
    out = {"rows": rows, "fit_s": t1 - t0, "sample_s": t2 - t1, "rounds": len(gen.fit_log["rounds"]),
           "model_cells": gen.model.size, "tvd_3way": tvd[3]}
    print(f"aim {out}", flush=True)
    report["aim"] = out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "benchmarks" / "results"))
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--device", default="cuda", help="the accelerator (cpu: a dry run of the script)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny and on the CPU (2,000 rows, few iterations, output to a temporary folder "
                        "unless --out is given): checks that the script runs")
    a = p.parse_args()
    global ACCEL, SMOKE
    ACCEL = a.device
    if a.smoke:
        SMOKE, ACCEL = True, "cpu"
        a.rows = min(a.rows, 2000)
        if "--out" not in sys.argv:
            a.out = Path(tempfile.mkdtemp(prefix="gpu-check-smoke-"))
    report = {"torch": torch.__version__, "cuda": torch.cuda.is_available(),
              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "cpu_threads": torch.get_num_threads(), "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if ACCEL == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        sys.exit(2)
    for step in (oracle_timing, estimate_agreement, lambda r: aim_end_to_end(r, a.rows)):
        try:
            step(report)
        except Exception:  # keep what the other steps measured
            report.setdefault("errors", []).append(traceback.format_exc())
            traceback.print_exc()
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "gpu_check.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# GPU check (benchmarks/gpu_check.py)", "", f"{report['device']}, torch {report['torch']}, "
             f"{report['cpu_threads']} CPU threads; started {report['started_utc']}", "",
             "| device | threads | dtype | model cells | wall s / oracle call | CPU s / call | max |Δ| vs CPU float64 |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in report.get("oracle", []):
        lines.append(f"| {r['device']} | {r['threads'] or '—'} | {r['dtype']} | {r['model_cells']} | "
                     f"{r['wall_s_per_call']:.4f} | {r['cpu_s_per_call']:.4f} | {r['max_abs_diff_vs_cpu_float64']:.2e} |")
    lines += ["", f"estimate(): {json.dumps(report.get('estimate'))}", "", f"AIM: {json.dumps(report.get('aim'))}"]
    if report.get("errors"):
        lines += ["", "Errors:", "", *("    " + line for e in report["errors"] for line in e.splitlines())]
    (a.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {a.out / 'gpu_check.md'}", flush=True)
    if report.get("errors"):
        sys.exit(1)


if __name__ == "__main__":
    main()
