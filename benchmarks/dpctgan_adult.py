"""DP-CTGAN on UCI Adult (raw, official train/test split): utility, speed, memory, ε spent.

    python benchmarks/dpctgan_adult.py                 # ε ∈ {1, 3, 10}, δ = 1e-6, 8 epochs, 2 threads
    python benchmarks/dpctgan_adult.py --epochs 2 --epsilons 1 --only ours
    # side by side on a busy machine, then merged:
    python benchmarks/dpctgan_adult.py --only ours --out R/ours.json & \
    python benchmarks/dpctgan_adult.py --only peer --out R/peer.json; wait
    python benchmarks/dpctgan_adult.py --merge R/ours.json R/peer.json

Each run happens in its own subprocess (so its peak RSS is its own), one at a time per part,
on a fresh test ledger (make_test_gate: real keys, signed policy, SQLite) whose
public bound on n is max_records = 50,000 (Adult train has 32,561 rows).  The
schema is public: categories from the UCI documentation (adult.names), numeric
bounds declared (census code ranges, not read from the data).  Utility is
train-on-synthetic, test-on-real (TSTR) on adult.test with logistic regression
and histogram gradient boosting (accuracy, ROC-AUC; dpsynth.evaluate.utility),
beside train-on-real.  The ε reported for our runs is the one the ledger
recorded (the last receipt's full-curve ε at δ; the ledger is fresh per run).

Budget of the run: the default 8 epochs × 100 steps (batch 500 at max_records
50,000, so q = 0.01) takes about 2.5 minutes per run on 2 quiet CPU threads
(smartnoise-synth's 8 epochs about 3.5 minutes; AIM 3-9 minutes per ε).

Peer: smartnoise-synth's DP-CTGAN (snsynth, old Opacus 0.14) in its own venv
($SNSYNTH_PYTHON, default /work/venv-snsynth/bin/python) as a subprocess with a
timeout, at the same ε, δ, batch size and epochs.  snsynth takes a fixed σ and
stops when its accountant passes ε at the start of an epoch; to give it the same
settings its σ is set (by its own accountant, inside its venv) so that its last
epoch ends at the target ε.  Its ε is reported as it reports it (the ε checked
at the start of its last epoch) and, beside it, its own accountant after the last
step it took.  `peer_accounting` replays its stopping rule, accounting only,
with its default σ = 5 and with σ = 1, to show its overshoot.

Results go to benchmarks/results/dpctgan_adult.json and .md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from statistics import fmean
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "adult" / "raw"
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]
# Declared public bounds (census code ranges), never read from the data.
BOUNDS = {"age": (17, 90), "fnlwgt": (0, 1_500_000), "education-num": (1, 16), "capital-gain": (0, 99_999),
          "capital-loss": (0, 4_356), "hours-per-week": (1, 99)}
# Public bin edges for the marginal generators (MST, AIM): round numbers over the census
# code ranges above, never read from the data.  Integer bins are [e_i, e_{i+1}) (the last
# one closed); decoding draws an integer uniformly within the bin.
BINS = {
    "age": [17] + list(range(20, 90, 5)) + [90],                              # 5-year bins
    "fnlwgt": list(range(0, 500_001, 25_000)) + [750_000, 1_000_000, 1_500_000],
    "education-num": [k + 0.5 for k in range(0, 17)],                          # one bin per code
    "capital-gain": [0, 1, 2_000, 3_000, 4_000, 5_000, 7_500, 10_000, 15_000, 20_000, 50_000, 99_999],
    "capital-loss": [0, 1, 1_000, 1_500, 1_750, 2_000, 2_250, 2_500, 3_000, 4_356],
    "hours-per-week": [1] + list(range(5, 99, 5)) + [99],                      # 5-hour bins
}
MAX_RECORDS = 50_000  # the policy's public bound on n (Adult train has 32,561 rows)
DELTA = 1e-6


def schema():
    """Categories from adult.names (public documentation), '?' = missing."""
    text = (RAW / "adult.names").read_text()
    cols = []
    for name in COLUMNS[:-1]:
        if name in BOUNDS:
            lo, hi = BOUNDS[name]
            cols.append({"name": name, "kind": "integer", "lower": lo, "upper": hi})
        else:
            m = re.search(rf"^{re.escape(name)}: (.*)\.$", text, flags=re.M)
            cats = [c.strip() for c in m.group(1).split(",")]
            cols.append({"name": name, "kind": "categorical", "categories": cats,
                         "nullable": name in ("workclass", "occupation", "native-country")})
    cols.append({"name": "income", "kind": "categorical", "categories": ["<=50K", ">50K"]})
    return cols


def marginal_schema():
    """The same public schema for MST / AIM: the numeric columns binned by `BINS`."""
    sys.path.insert(0, str(REPO))
    from dpsynth.schema import Column, Schema

    cols = []
    for c in schema():
        if c["name"] in BINS:
            cols.append(Column(c["name"], "integer", bins=BINS[c["name"]]))
        else:
            cols.append(Column(c["name"], "categorical", categories=c["categories"],
                               nullable=c.get("nullable", False)))
    return Schema(cols)


def load():
    import pandas as pd

    kw = dict(names=COLUMNS, skipinitialspace=True, na_values="?")
    train = pd.read_csv(RAW / "adult.data", **kw)
    test = pd.read_csv(RAW / "adult.test", skiprows=1, **kw)
    test["income"] = test["income"].str.rstrip(".")
    return train, test


def tstr(train, test) -> dict:
    """Accuracy and ROC-AUC of logistic regression and gradient boosting trained on `train`,
    tested on the real `test` (dpsynth.evaluate.utility)."""
    sys.path.insert(0, str(REPO))
    from dpsynth.evaluate.columns import ColumnSpec
    from dpsynth.evaluate.utility import evaluate_classifier

    spec = ColumnSpec(categorical=tuple(c for c in COLUMNS if c not in BOUNDS), numeric=tuple(BOUNDS),
                      target="income")
    out = {}
    for key, model in (("logistic", "logistic_regression"), ("gboost", "gradient_boosting")):
        score = evaluate_classifier(train, test, spec, model)
        out[key] = {"accuracy": score.accuracy, "roc_auc": score.roc_auc}
        if score.note:
            out[key]["note"] = score.note
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> float:
    """CPU time of this process (all threads): robust to other load on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fit_and_sample(model, fit, gate, n: int) -> tuple[dict, object]:
    """Time `fit()` (wall, CPU, load around it), sample n rows, read the run's spend from its
    ledger; returns (figures, synthetic table)."""
    load_before = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), cpu_seconds()
    fit()
    fit_s, fit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    load_after = os.getloadavg()[0]
    t0 = time.perf_counter()
    synthetic = model.sample(n)
    figures = {
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "load_average_1min": [load_before, load_after],
        "sample_seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb(),
        # The ledger's ε after the run's last charge (fresh ledger per run), and its filter's.
        "epsilon_spent": [r for r in model.receipts if r.kind == "charge"][-1].epsilon_curve,
        "epsilon_spent_filter": gate.filter.epsilon_spent(gate.spent_costs()),
        "ledger_charges": len(gate.spent_costs()),
        "ledger_entries": len(model.receipts),
    }
    return figures, synthetic


def run_one(epsilon: float, epochs: int, batch_size: int, threads: int, device: str) -> dict:
    """Fit, sample, score one ε (called in a subprocess)."""
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(threads)
    from accountant.testing import make_test_gate
    from dpsynth.generators import DPCTGAN
    from dpsynth.schema import Schema
    from dpsynth.table import PrivateTable

    train, test = load()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = make_test_gate(tmp, epsilon=epsilon, delta=DELTA, max_records=MAX_RECORDS, frame=train)
        gate = ledger.gate
        # Real (CSPRNG) noise; the private steps run inside the table.
        table = PrivateTable(train, Schema.from_dict({"columns": schema()}), gate, dataset_key=ledger.dataset_key)
        model = DPCTGAN(epsilon=epsilon, epochs=epochs, batch_size=batch_size, device=device, progress=True)
        figures, synthetic = fit_and_sample(model, lambda: model.fit(table), gate, len(train))
    plan = model.plan
    return {
        "system": "dpsynth DPCTGAN", "epsilon_target": epsilon, "delta": DELTA, "epochs": epochs,
        "batch_size": batch_size, "max_records": MAX_RECORDS, "steps": plan.steps,
        "sampling_rate": plan.sampling_rate, "noise_multiplier": plan.noise_multiplier,
        "frequency_noise_multiplier": plan.frequency_noise_multiplier, **figures,
        "seconds_per_epoch": figures["fit_seconds"] / epochs,
        "cpu_seconds_per_epoch": figures["fit_cpu_seconds"] / epochs,
        "final_losses": list(model.log.epoch_losses[-1]), "threads": threads, "device": str(model.device),
        "tstr": tstr(synthetic, test),
    }


def run_marginal(method: str, epsilon: float, threads: int, aim: dict) -> dict:
    """Fit our MST or AIM on a fresh test ledger, sample n = len(train), score (in a subprocess)."""
    sys.path.insert(0, str(REPO))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass
    from accountant.testing import make_test_gate
    from dpsynth.generators import AIM, MST
    from dpsynth.table import PrivateTable

    train, test = load()
    kwargs = {k: v for k, v in aim.items() if v is not None} if method == "aim" else {}
    with tempfile.TemporaryDirectory() as tmp:
        ledger = make_test_gate(tmp, epsilon=epsilon, delta=DELTA, max_records=MAX_RECORDS, frame=train)
        gate = ledger.gate
        table = PrivateTable(train, marginal_schema(), gate, dataset_key=ledger.dataset_key)   # real (CSPRNG) noise
        model = (AIM if method == "aim" else MST)(epsilon=epsilon, **kwargs)
        figures, synthetic = fit_and_sample(model, lambda: model.fit(table), gate, len(train))
    return {
        "system": f"dpsynth {method.upper()}", "epsilon_target": epsilon, "delta": DELTA,
        "max_records": MAX_RECORDS, "settings": {k: v for k, v in kwargs.items()}, "bins": BINS,
        **figures, "epsilon_spent_receipts": model.epsilon_spent(), "threads": threads,
        "fit_log": {k: v for k, v in getattr(model, "fit_log", {}).items() if isinstance(v, (int, float, str))},
        "tstr": tstr(synthetic, test),
    }


# Runs inside smartnoise-synth's venv (Opacus 0.14).  Prints one JSON line.
SNSYNTH = r"""
import json, math, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd, torch
from opacus import privacy_analysis as pa
from snsynth import Synthesizer
from snsynth.transform.minmax import MinMaxTransformer
from snsynth.transform.table import TableTransformer

eps, epochs, batch, delta, threads, path = (float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                            float(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
bounds = json.loads(sys.argv[7])
torch.set_num_threads(threads)
ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))   # snsynth's orders

def sn_eps(q, sigma, steps):
    return pa.get_privacy_spent(ALPHAS, pa.compute_rdp(q, sigma, steps, ALPHAS), delta)[0] if steps else 0.0

train = pd.read_csv(path)
n = len(train)
q = batch / n                        # snsynth: batch_size / sample_size (the private n)
per_epoch = 2 * max(n // batch, 1)   # two optimiser steps per iteration (fake, real), both accounted
# sigma so that its accountant reaches eps exactly at the end of the last epoch (bisection).
lo, hi = 0.3, 200.0
for _ in range(60):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if sn_eps(q, mid, per_epoch * epochs) > eps else (lo, mid)
sigma = hi

def stop_epoch(sigma, eps):
    # snsynth's rule: at the start of each epoch, break if its accountant's eps > target.
    # The first such epoch e (eps grows with e): exponential, then binary search.
    hi = 1
    while sn_eps(q, sigma, per_epoch * hi) <= eps:
        hi *= 2
    lo = hi // 2   # eps(lo) <= target (lo = 0 trivially)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if sn_eps(q, sigma, per_epoch * mid) <= eps else (lo, mid)
    return hi, sn_eps(q, sigma, per_epoch * hi)

overshoot = {}
for s in (5.0, 1.0):
    e, before = stop_epoch(s, eps)
    overshoot[f"sigma_{s:g}"] = {"epochs_trained": e, "epsilon_reported": before,
                                 "epsilon_after_last_step": sn_eps(q, s, per_epoch * e)}
cats = [c for c in train.columns if c not in bounds]
conts = list(bounds)
constraints = {c: MinMaxTransformer(lower=lo_, upper=hi_, negative=True) for c, (lo_, hi_) in bounds.items()}
synth = Synthesizer.create("dpctgan", epsilon=eps, epochs=epochs, batch_size=batch, sigma=sigma, delta=delta,
                           verbose=False, cuda=False)
load_before = __import__("os").getloadavg()[0]
r0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
synth.fit(train, categorical_columns=cats, continuous_columns=conts, transformer=constraints,
          preprocessor_eps=0.0)
fit_s = time.perf_counter() - t0
r1 = resource.getrusage(resource.RUSAGE_SELF)
fit_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
load_after = __import__("os").getloadavg()[0]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
gan = getattr(synth, "gan", synth)
# epsilon_list holds the eps checked at the start of each epoch; a final entry over the
# target means it broke there without training that epoch.
trained = len(gan.epsilon_list) - (1 if gan.epsilon_list[-1] > eps else 0)
sample = synth.sample(n)
sample.to_csv(path + ".out", index=False)
print(json.dumps({"fit_seconds": fit_s, "epochs_trained": trained, "fit_cpu_seconds": fit_cpu,
                  "load_average_1min": [load_before, load_after], "noise_multiplier": sigma,
                  "sampling_rate": q, "optimizer_steps": per_epoch * trained,
                  "epsilon_reported": float(gan.epsilon_list[-1]),
                  "epsilon_after_last_step": float(sn_eps(q, sigma, per_epoch * trained)),
                  "peak_rss_mb": rss, "threads": threads, "overshoot_accounting": overshoot}))
"""


def run_snsynth(python: str, epsilon: float, epochs: int, batch_size: int, threads: int,
                timeout: float) -> dict | None:
    import pandas as pd

    if not Path(python).exists():
        return None
    train, test = load()
    base = {"system": "smartnoise-synth DPCTGAN", "epsilon_target": epsilon, "delta": DELTA, "epochs": epochs,
            "batch_size": batch_size}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.csv")
        frame = train.copy()
        for c in frame.columns:
            if c not in BOUNDS:
                frame[c] = frame[c].astype(object).fillna("missing")  # snsynth: no missing categories
            else:
                frame[c] = frame[c].astype(float)
        frame.to_csv(path, index=False)
        script = os.path.join(tmp, "run.py")
        Path(script).write_text(SNSYNTH)
        try:
            proc = subprocess.run([python, script, str(epsilon), str(epochs), str(batch_size), str(DELTA),
                                   str(threads), path, json.dumps(BOUNDS)],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {**base, "error": f"timed out after {timeout:g} s"}
        if proc.returncode != 0:
            return {**base, "error": proc.stderr[-2000:]}
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        synthetic = pd.read_csv(path + ".out", keep_default_na=False, na_values=[""])
    for c in synthetic.columns:
        if c not in BOUNDS:
            synthetic[c] = synthetic[c].astype(object).where(synthetic[c] != "missing", None)
        else:
            synthetic[c] = pd.to_numeric(synthetic[c], errors="coerce")
    trained = max(info["epochs_trained"], 1)
    return {**base, **info, "seconds_per_epoch": info["fit_seconds"] / trained,
            "cpu_seconds_per_epoch": info["fit_cpu_seconds"] / trained,
            "tstr": tstr(synthetic, test)}


def fmt(x, spec: str) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _aim_settings(results: list[dict]) -> str:
    got = {json.dumps(r.get("settings", {}), sort_keys=True) for r in results if r.get("system") == "dpsynth AIM"}
    if not got:
        return "–"
    return ", ".join("defaults" if g == "{}" else g for g in sorted(got))


def _repeat_summary(results: list[dict]) -> list[str]:
    """Mean and range over repeated runs of one (system, epochs, ε): GAN utility varies run to run."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        if "tstr" in r and "error" not in r and not r.get("accounting_only"):
            groups.setdefault((r["system"], r.get("epochs"), r.get("epsilon_target")), []).append(r)
    if not any(len(g) > 1 for g in groups.values()):
        return []

    def spread(runs: list[dict], model: str) -> str:
        xs = [r["tstr"][model]["roc_auc"] for r in runs]
        return f"{fmean(xs):.3f}" + (f" ({min(xs):.3f}–{max(xs):.3f})" if len(xs) > 1 else "")

    lines = ["", "Mean over the runs of each setting (range in brackets):", "",
             "| system | epochs | ε target | runs | LR AUC | GB AUC | CPU s / epoch |", "|---|---:|---:|---:|---:|---:|---:|"]
    for (system, epochs, eps), runs in groups.items():
        cpu = [r["cpu_seconds_per_epoch"] for r in runs if r.get("cpu_seconds_per_epoch")]
        lines.append(f"| {system} | {fmt(epochs, 'd')} | {fmt(eps, 'g')} | {len(runs)} | {spread(runs, 'logistic')} "
                     f"| {spread(runs, 'gboost')} | {fmt(fmean(cpu) if cpu else None, '.1f')} |")
    return lines


def markdown(results: list[dict], args) -> str:
    lines = [
        "# DP-CTGAN on UCI Adult (raw; official train/test)",
        "",
        f"δ = {DELTA:g}; batch {args.batch_size}; {args.threads} CPU threads "
        f"(`torch.set_num_threads({args.threads})`), one run at a time; public bound max_records = "
        f"{MAX_RECORDS:,} for dpsynth (q = {args.batch_size / MAX_RECORDS:g}).  TSTR on adult.test (16,281 rows), "
        "synthetic table of 32,561 rows; LR = logistic regression, GB = histogram gradient boosting "
        "(dpsynth.evaluate.utility).",
        "",
        "| system | epochs | ε target | ε spent | σ | fit s (wall) | s / epoch (wall) | CPU s / epoch "
        "| peak RSS MB | load (1-min) | LR acc | LR AUC | GB acc | GB AUC |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.get("accounting_only"):  # rendered in the overshoot table below
            continue
        t = r.get("tstr", {})
        if "error" in r:
            lines.append(f"| {r['system']} | {fmt(r.get('epochs'), 'd')} | {fmt(r.get('epsilon_target'), 'g')} | error: "
                         f"{r['error'].strip().splitlines()[-1][:80] if r['error'].strip() else '?'} |||||||||||")
            continue
        if r["system"].startswith("smartnoise"):
            spent = f"{r['epsilon_reported']:.3f} reported / {r['epsilon_after_last_step']:.3f} after last step"
        else:
            spent = (f"{r['epsilon_spent_filter']:.3f} ledger filter / {r['epsilon_spent']:.3f} full curve"
                     if "epsilon_spent" in r else "–")
        la = r.get("load_average_1min")
        load = f"{la[0]:.1f}–{la[1]:.1f}" if la else "–"
        lines.append(
            f"| {r['system']} | {fmt(r.get('epochs'), 'd')} | {fmt(r.get('epsilon_target'), 'g')} | {spent} | {fmt(r.get('noise_multiplier'), '.3f')} "
            f"| {fmt(r.get('fit_seconds'), '.0f')} "
            f"| {fmt(r.get('seconds_per_epoch'), '.1f')} | {fmt(r.get('cpu_seconds_per_epoch'), '.1f')} "
            f"| {fmt(r.get('peak_rss_mb'), '.0f')} | {load} "
            f"| {fmt(t.get('logistic', {}).get('accuracy'), '.3f')} | {fmt(t.get('logistic', {}).get('roc_auc'), '.3f')} "
            f"| {fmt(t.get('gboost', {}).get('accuracy'), '.3f')} | {fmt(t.get('gboost', {}).get('roc_auc'), '.3f')} |")
    loads = [x for r in results for x in r.get("load_average_1min", [])]
    lines += ["", "Notes:", "",
              "* dpsynth's ε spent, both read from the run's ledger (a fresh one per run): *ledger filter* is "
              "what the gate's Rényi filter counted against the budget at its fixed order α* (the plan is "
              "calibrated so that this lands at or under the target); *full curve* is the run's own guarantee, "
              "its events' RDP curve converted at δ over all orders (tighter).",
              "* smartnoise-synth runs at the same ε, δ, batch size, with σ set by its own accountant so its last "
              "epoch ends at the target (its stopping rule would not fire), "
              f"{'/'.join(sorted({str(r.get('epochs')) for r in results if r['system'].startswith('smartnoise') and not r.get('accounting_only')})) or '?'} "
              "epochs (it pins Opacus 0.14).  Its epoch is n / batch iterations of two discriminator optimiser "
              "steps each (two passes over the real rows); ours is 1/q Poisson steps (one expected pass), so "
              "compare time per optimiser step or per pass, not per epoch.  *Reported* is its `epsilon_list[-1]`, the ε checked at "
              "the start of its last epoch, i.e. one epoch stale; *after last step* is its own accountant "
              "(Opacus 0.14 RDP, two optimiser steps per iteration) after every step it took.  Its accountant "
              "assumes Poisson sampling, but it draws real rows by conditional category sampling from exact, "
              "un-noised frequencies and reads the category lists from the data, none of it charged: its figures "
              "are not a guarantee.",
              "* CPU s / epoch is the process's CPU time (all threads) per epoch" + (
                  f"; 1-minute load average {min(loads):.1f}–{max(loads):.1f} on 2 cores during the fits" if loads
                  else "") + (" (other jobs shared the machine: wall time per epoch overstates the cost)."
                              if loads and max(loads) > 3 else " (each run used 2 threads; nothing else heavy ran)."),
              "* Peak RSS is the process's high-water mark after fitting and sampling (data, torch, model).",
              "* MST and AIM (dpsynth.generators, real CSPRNG noise, a fresh ledger per run) see the same public "
              "schema with the numeric columns binned by declared census-range edges (`BINS` in the script; never "
              "read from the data): age in 5-year bins, hours-per-week in 5-hour bins, education-num one bin per "
              "code, fnlwgt in 25,000-wide bins to 500,000 then 750k / 1M / 1.5M, capital-gain and capital-loss "
              "at a few round edges with 0 alone.  Decoding draws an integer uniformly within the bin, so the "
              "classifiers see within-bin noise that the DP-CTGAN rows do not have.  They have no epochs: "
              "their cost is the fit time (fit s).  AIM settings: " + _aim_settings(results) + "."]
    ours = [r for r in results if r.get("system", "").startswith("dpsynth") and "epsilon_spent" in r]
    if ours:
        worst = max(max(r["epsilon_spent"], r["epsilon_spent_filter"]) / r["epsilon_target"] for r in ours)
        ok = all(max(r["epsilon_spent"], r["epsilon_spent_filter"]) <= r["epsilon_target"] * (1 + 1e-9)
                 for r in ours)
        lines.append(f"* Budget check: every dpsynth run spent at most its target ε "
                     f"({'yes' if ok else 'NO'}; largest spent / target = {worst:.4f}, ledger filter or full "
                     "curve, whichever is larger).")
    peers = list({r["epsilon_target"]: r for r in results
                  if r.get("system", "").startswith("smartnoise") and "epsilon_after_last_step" in r}.values())
    if peers:
        lines.append("* smartnoise-synth's own accountant after its last step: " + "; ".join(
            f"target {r['epsilon_target']:g} → {r['epsilon_after_last_step']:.3f} "
            f"({100 * (r['epsilon_after_last_step'] / r['epsilon_target'] - 1):+.1f} %)" for r in peers) + ".")
    dnf = [r for r in results if "error" in r]
    if dnf:
        lines.append("* DNF / error rows: " + "; ".join(
            f"{r['system']} ε={r.get('epsilon_target', '?'):g}: {r['error'].strip().splitlines()[-1][:120]}"
            for r in dnf) + ".")
    lines += _repeat_summary(results)
    lines += ["", "How to reproduce (from the repository root, one part at a time on a quiet machine; each part "
              "writes its own JSON and the merge renders this file; repeat a part into another file for "
              "another run — the noise is fresh each time):", "", "```",
              "export OMP_NUM_THREADS=2 R=/tmp/dpc",
              "python benchmarks/dpctgan_adult.py --only ours --epsilons 1 3 10 --epochs 8 --out $R/ours.json",
              "python benchmarks/dpctgan_adult.py --only mst --marginal-timeout 600 --skip-real --out $R/mst.json",
              "python benchmarks/dpctgan_adult.py --only aim --marginal-timeout 1500 --skip-real --out $R/aim.json",
              "python benchmarks/dpctgan_adult.py --only peer --epsilons 1 3 10 --peer-epochs 8 --peer-timeout 900 "
              "--skip-real --out $R/peer.json",
              "python benchmarks/dpctgan_adult.py --merge $R/*.json",
              "```"]
    over = [r for r in results if "overshoot_accounting" in r]
    seen: set = set()
    if over:
        lines += ["", "smartnoise-synth's stopping rule replayed with its own accountant (accounting only, no "
                  "training): it checks ε at the start of each epoch and trains the whole epoch, so it ends "
                  "past its target.", "",
                  "| target ε | σ | epochs it trains | ε it reports | ε after its last step |", "|---:|---:|---:|---:|---:|"]
        for r in over:
            for key, o in r["overshoot_accounting"].items():
                if (r["epsilon_target"], key) in seen:
                    continue
                seen.add((r["epsilon_target"], key))
                lines.append(f"| {r['epsilon_target']:g} | {key.split('_')[1]} | {o['epochs_trained']} | "
                             f"{o['epsilon_reported']:.3f} | {o['epsilon_after_last_step']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    ap.add_argument("--epochs", type=int, nargs="+", default=[8, 2])
    ap.add_argument("--peer-epochs", type=int, default=8, help="smartnoise-synth's epochs (each two passes)")
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--snsynth-python", default=os.environ.get("SNSYNTH_PYTHON", "/work/venv-snsynth/bin/python"))
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--marginal-timeout", type=float, default=1200.0, help="per MST / AIM run (DNF after)")
    ap.add_argument("--aim-rounds", type=int, default=None, help="AIM's T (default: its own, 16 x columns)")
    ap.add_argument("--aim-iters", type=int, default=None, help="AIM's estimation iterations per round")
    ap.add_argument("--aim-final-iters", type=int, default=None)
    ap.add_argument("--only", choices=("all", "ours", "peer", "mst", "aim", "marginal"), default="all",
                    help="run part of the benchmark (two parts can run side by side; then --merge)")
    ap.add_argument("--merge", nargs="+", default=None, help="merge result JSON files into --out (and .md)")
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--one-marginal", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip-real", action="store_true", help="leave out the train-on-real row (another part has it)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dpctgan_adult.json"))
    args = ap.parse_args()
    aim = {"rounds": args.aim_rounds, "iters": args.aim_iters, "final_iters": args.aim_final_iters}
    if args.one is not None and args.one_marginal:
        print("RESULT " + json.dumps(run_marginal(args.one_marginal, args.one, args.threads, aim)))
        return
    if args.one is not None:
        print("RESULT " + json.dumps(run_one(args.one, args.epochs[0], args.batch_size, args.threads, args.device)))
        return
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []

    def save() -> None:  # after every run: a partial result survives an interrupted benchmark
        out.write_text(json.dumps(results, indent=2))
        out.with_suffix(".md").write_text(markdown(results, args))

    if args.merge:
        seen = set()
        for f in args.merge:
            for r in json.loads(Path(f).read_text()):
                key = json.dumps(r, sort_keys=True)
                if key not in seen:  # the train-on-real row appears in every part
                    seen.add(key)
                    results.append(r)
        save()
        print(markdown(results, args))
        return
    if not RAW.exists():
        sys.exit(f"needs {RAW}")
    train, test = load()
    if not args.skip_real:  # the train-on-real row (the same in every part; --merge keeps one)
        results.append({"system": "real data (train on real)", "tstr": tstr(train, test)})
        save()
    if args.only in ("all", "ours"):
        for epochs, eps in ((e, x) for e in args.epochs for x in args.epsilons):
            proc = subprocess.run([sys.executable, __file__, "--one", str(eps), "--epochs", str(epochs),
                                   "--batch-size", str(args.batch_size), "--threads", str(args.threads),
                                   "--device", args.device], capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            results.append(json.loads(line[-1][7:]) if line else {
                "system": "dpsynth DPCTGAN", "epsilon_target": eps, "epochs": epochs, "error": proc.stderr[-2000:]})
            print(json.dumps(results[-1]), flush=True)
            save()
    methods = {"all": ("mst", "aim"), "marginal": ("mst", "aim"), "mst": ("mst",), "aim": ("aim",)}
    for method in methods.get(args.only, ()):
        for eps in args.epsilons:
            cmd = [sys.executable, __file__, "--one", str(eps), "--one-marginal", method, "--threads", str(args.threads)]
            for flag, v in (("--aim-rounds", args.aim_rounds), ("--aim-iters", args.aim_iters),
                            ("--aim-final-iters", args.aim_final_iters)):
                cmd += [flag, str(v)] if v is not None else []
            env = {**os.environ, **{v: str(args.threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                                  "OPENBLAS_NUM_THREADS")}}
            base = {"system": f"dpsynth {method.upper()}", "epsilon_target": eps}
            t0 = time.perf_counter()
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.marginal_timeout)
                line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                results.append(json.loads(line[-1][7:]) if line else {**base, "error": proc.stderr[-2000:]})
            except subprocess.TimeoutExpired:
                results.append({**base, "error": f"DNF: timed out after {time.perf_counter() - t0:.0f} s"})
            print(json.dumps(results[-1]), flush=True)
            save()
    if args.only in ("all", "peer"):
        for eps in args.epsilons:
            peer = run_snsynth(args.snsynth_python, eps, args.peer_epochs, args.batch_size, args.threads,
                               args.peer_timeout)
            if peer is None:
                print(f"smartnoise-synth: no interpreter at {args.snsynth_python}; skipped")
                break
            results.append(peer)
            print(json.dumps(peer), flush=True)
            save()
    print(markdown(results, args))


if __name__ == "__main__":
    main()
