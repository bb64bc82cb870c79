"""DP-CTGAN on UCI Adult (raw, official train/test split): utility, speed, memory, ε spent.

    python benchmarks/dpctgan_adult.py                 # ε ∈ {1, 3, 10}, δ = 1e-6
    python benchmarks/dpctgan_adult.py --epochs 2 --epsilons 1 --threads 2

Each run happens in its own subprocess (so its peak RSS is its own), on a fresh
test ledger (make_test_gate: real keys, signed policy, SQLite).  The schema is
public: categories from the UCI documentation (adult.names), numeric bounds
declared (census code ranges, not read from the data).  Utility is
train-on-synthetic, test-on-real (TSTR) on adult.test with logistic regression
and histogram gradient boosting (accuracy, ROC-AUC), beside train-on-real.
The ε reported is the one the ledger recorded for the run.

Optional peer: smartnoise-synth's DP-CTGAN in its own venv ($SNSYNTH_PYTHON,
default /work/venv-snsynth/bin/python), skipped when absent.

Results go to benchmarks/results/dpctgan_adult.json (and a table on stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "adult" / "raw"
COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]
# Declared public bounds (census code ranges), never read from the data.
BOUNDS = {"age": (17, 90), "fnlwgt": (0, 1_500_000), "education-num": (1, 16), "capital-gain": (0, 99_999),
          "capital-loss": (0, 4_356), "hours-per-week": (1, 99)}
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


def load():
    import pandas as pd

    kw = dict(names=COLUMNS, skipinitialspace=True, na_values="?")
    train = pd.read_csv(RAW / "adult.data", **kw)
    test = pd.read_csv(RAW / "adult.test", skiprows=1, **kw)
    test["income"] = test["income"].str.rstrip(".")
    return train, test


def tstr(train, test):
    """Accuracy and ROC-AUC of LR and gradient boosting trained on `train`, tested on `test`."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    num = list(BOUNDS)
    cat = [c for c in COLUMNS[:-1] if c not in BOUNDS]

    def xy(df):
        x = df[COLUMNS[:-1]].copy()
        for c in cat:
            x[c] = x[c].astype(object).where(x[c].notna(), "missing").astype(str)
        for c in num:
            x[c] = pd.to_numeric(x[c]).astype(float).fillna(0.0)
        return x, (df["income"] == ">50K").astype(int).to_numpy()

    xtr, ytr = xy(train)
    xte, yte = xy(test)
    out = {}
    if len(np.unique(ytr)) < 2:
        return {m: {"accuracy": float("nan"), "roc_auc": float("nan")} for m in ("logistic", "gboost")}
    pre = lambda: ColumnTransformer([("num", StandardScaler(), num),  # noqa: E731
                                     ("cat", OneHotEncoder(handle_unknown="ignore"), cat)])
    models = {"logistic": make_pipeline(pre(), LogisticRegression(max_iter=2000)),
              "gboost": make_pipeline(ColumnTransformer([("num", "passthrough", num),
                                                         ("cat", OneHotEncoder(handle_unknown="ignore",
                                                                               sparse_output=False), cat)]),
                                      HistGradientBoostingClassifier(random_state=0))}
    for name, model in models.items():
        model.fit(xtr, ytr)
        p = model.predict_proba(xte)[:, 1]
        out[name] = {"accuracy": float(accuracy_score(yte, p > 0.5)), "roc_auc": float(roc_auc_score(yte, p))}
    return out


def run_one(epsilon: float, epochs: int, threads: int, device: str) -> dict:
    """Fit, sample, score one ε (called in a subprocess)."""
    sys.path.insert(0, str(REPO))
    import torch

    torch.set_num_threads(threads)
    from accountant.testing import make_test_gate
    from dpsynth.generators import DPCTGAN
    from dpsynth.generators.dpctgan.access import FrameAccess

    train, test = load()
    with tempfile.TemporaryDirectory() as tmp:
        gate = make_test_gate(tmp, epsilon=epsilon, delta=DELTA, max_records=MAX_RECORDS).gate
        model = DPCTGAN(epsilon=epsilon, epochs=epochs, batch_size=500, device=device, progress=True)
        t0 = time.perf_counter()
        model.fit(FrameAccess(train, schema()), gate)
        fit_s = time.perf_counter() - t0
        synthetic = model.sample(len(train))
        receipts = model.receipts
        ledger_eps_curve = receipts[-1].epsilon_curve
        ledger_eps_filter = receipts[-1].epsilon_filter
    return {
        "system": "dpsynth DPCTGAN", "epsilon_target": epsilon, "delta": DELTA, "epochs": epochs,
        "steps": model.plan.steps, "sampling_rate": model.plan.sampling_rate,
        "noise_multiplier": model.plan.noise_multiplier, "fit_seconds": fit_s,
        "seconds_per_epoch": fit_s / epochs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "epsilon_spent_curve": ledger_eps_curve, "epsilon_spent_filter": ledger_eps_filter,
        "tstr": tstr(synthetic, test), "device": str(model.device),
    }


SNSYNTH = r'''
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
from snsynth import Synthesizer
eps, epochs, path = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
train = pd.read_pickle(path)
cats = [c for c in train.columns if train[c].dtype == object]
conts = [c for c in train.columns if c not in cats]
synth = Synthesizer.create("dpctgan", epsilon=eps, epochs=epochs, verbose=False)
t0 = time.perf_counter()
synth.fit(train, categorical_columns=cats, continuous_columns=conts, preprocessor_eps=0.0 if not conts else 0.1 * eps)
fit_s = time.perf_counter() - t0
spent = getattr(synth, "epsilon_list", None) or [float("nan")]
sample = synth.sample(len(train))
sample.to_pickle(path + ".out")
print(json.dumps({"fit_seconds": fit_s, "epsilon_reported": float(spent[-1]),
                  "preprocessor_eps": 0.0 if not conts else 0.1 * eps,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def run_snsynth(python: str, epsilon: float, epochs: int) -> dict | None:
    if not Path(python).exists():
        return None
    train, test = load()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.pkl")
        frame = train.copy()
        for c in frame.columns:
            if frame[c].dtype == object:
                frame[c] = frame[c].fillna("missing")
        frame.to_pickle(path)
        script = os.path.join(tmp, "run.py")
        Path(script).write_text(SNSYNTH)
        proc = subprocess.run([python, script, str(epsilon), str(epochs), path], capture_output=True, text=True,
                              timeout=3600)
        if proc.returncode != 0:
            return {"system": "smartnoise-synth DPCTGAN", "epsilon_target": epsilon, "error": proc.stderr[-2000:]}
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        import pandas as pd

        synthetic = pd.read_pickle(path + ".out")
    return {"system": "smartnoise-synth DPCTGAN", "epsilon_target": epsilon, "epochs": epochs, **info,
            "seconds_per_epoch": info["fit_seconds"] / epochs, "tstr": tstr(synthetic, test)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--snsynth-python", default=os.environ.get("SNSYNTH_PYTHON", "/work/venv-snsynth/bin/python"))
    ap.add_argument("--snsynth-epochs", type=int, default=None)
    ap.add_argument("--one", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dpctgan_adult.json"))
    args = ap.parse_args()
    if args.one is not None:
        print("RESULT " + json.dumps(run_one(args.one, args.epochs, args.threads, args.device)))
        return
    if not RAW.exists():
        sys.exit(f"needs {RAW}")
    results = []
    train, test = load()
    results.append({"system": "real data (train on real)", "tstr": tstr(train, test)})
    for eps in args.epsilons:
        proc = subprocess.run([sys.executable, __file__, "--one", str(eps), "--epochs", str(args.epochs),
                               "--threads", str(args.threads), "--device", args.device],
                              capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        results.append(json.loads(line[-1][7:]) if line else {"system": "dpsynth DPCTGAN", "epsilon_target": eps,
                                                               "error": proc.stderr[-2000:]})
        print(json.dumps(results[-1]), flush=True)
    for eps in args.epsilons:
        peer = run_snsynth(args.snsynth_python, eps, args.snsynth_epochs or args.epochs)
        if peer is None:
            print(f"smartnoise-synth: no interpreter at {args.snsynth_python}; skipped")
            break
        results.append(peer)
        print(json.dumps(peer), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"\n{'system':28} {'eps':>5} {'spent':>7} {'s/epoch':>8} {'RSS MB':>7} "
          f"{'LR acc':>7} {'LR AUC':>7} {'GB acc':>7} {'GB AUC':>7}")
    for r in results:
        t = r.get("tstr", {})
        spent = r.get("epsilon_spent_curve", r.get("epsilon_reported", float("nan")))
        print(f"{r['system'][:28]:28} {r.get('epsilon_target', float('nan')):5.3g} {spent:7.3f} "
              f"{r.get('seconds_per_epoch', float('nan')):8.1f} {r.get('peak_rss_mb', float('nan')):7.0f} "
              f"{t.get('logistic', {}).get('accuracy', float('nan')):7.3f} "
              f"{t.get('logistic', {}).get('roc_auc', float('nan')):7.3f} "
              f"{t.get('gboost', {}).get('accuracy', float('nan')):7.3f} "
              f"{t.get('gboost', {}).get('roc_auc', float('nan')):7.3f}")


if __name__ == "__main__":
    main()
