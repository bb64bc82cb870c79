"""Run synthcity's PATE-GAN plugin ("pategan") once, under synthcity's own Python.

    $SYNTHCITY_PYTHON benchmarks/peers/synthcity_pategan.py --train train.csv --out synth.csv \
        --epsilon 1 --delta 1e-6 --target income --categorical workclass,...,income \
        --samples 32561 --seed 0

Imports the peer's installed package only (synthcity 0.2.12 here); none of its code is
copied.  Prints exactly one line ``RESULT {json}`` on stdout at the end.

PRIVACY CAVEAT -- the ε below is "as claimed by the peer", NOT a guarantee.  Known privacy
bugs of synthcity's ``plugin_pategan.py`` (../shared/research/pategan.md, which cites arXiv
2406.13985 "pategan-audit" and synthcity issues #275-#278):

* A worst-case black-box audit at claimed ε = 1, δ = 1e-5: empirical ε lower bound 4.68
  (distinguisher AUC 1.00).
* ``Teachers.fit`` draws ``np.random.permutation(len(X))`` on every PATE iteration (#275):
  the partitions are re-drawn, so over time every teacher sees all the data and PATE's
  sensitivity argument is broken.
* Accountant: ``np.exp(2 * self.lamda * lidx + 1)`` lacks brackets around ``(lidx + 1)``
  (#276): ε_hat is underestimated.
* ``if np.sum(Y_mb) >= len(X)/2: return zeros`` runs before ``_update_alpha``: a
  data-dependent branch in which the teachers' votes are consulted but never charged.
* The "student" discriminator is trained directly on real records (TabularGAN / GAN.fit
  with gen_true_labels -> ones, real_output = discriminator(real_X)), and the gradient
  penalty uses real samples: the student is not privatised at all.
* Encoders (one-hot category sets, BayesianGMM modes of continuous columns), min / max and
  the synthcity Schema used to filter generated rows (strict=True) are fit on the real data
  without DP (#278).
* Teachers are re-fit from scratch each iteration (#277; a utility issue).
* The stopping rule ``while epsilon_hat < epsilon`` uses the data-dependent moments bound
  and is checked only *after* a full iteration (generator_n_iter epochs over the data), so
  the peer can end far above the requested ε by its own accountant (``eps_hat_final``).

Also observed in 0.2.12 (read from the installed code; see RESULT):

* ``PATEGAN.__init__`` sets ``self.delta = None`` whatever the ``delta`` argument, so the
  caller's δ is silently ignored and 1/(n·√n) is used.  The runner reports both;
  ``--force-delta`` makes the peer use the given δ instead (off by default: the peer's
  behaviour).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def peak_rss_mb() -> float:
    s = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(s, c) / 1024.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True, help="training CSV with a header")
    p.add_argument("--out", required=True, help="output CSV for the synthetic rows")
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--delta", type=float, default=None,
                   help="passed to the peer, which ignores it (uses 1/(n·√n)) unless --force-delta")
    p.add_argument("--force-delta", action="store_true", default=False,
                   help="overwrite the peer's internal δ with --delta (not the peer's behaviour)")
    p.add_argument("--target", required=True,
                   help="target column; the plugin is unconditional, so it is only forced categorical and "
                        "passed as the GenericDataLoader target")
    p.add_argument("--categorical", default="", help="comma-separated categorical columns (read as strings)")
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--seed", type=int, default=0, help="synthcity random_state")
    # The peer's knobs; defaults = synthcity 0.2.12 PATEGANPlugin.__init__'s.
    p.add_argument("--n-iter", type=int, default=200, help="max PATE-GAN outer iterations (peer default 200)")
    p.add_argument("--generator-n-iter", type=int, default=10,
                   help="GAN epochs over the data per PATE iteration (peer default 10)")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--n-teachers", type=int, default=10)
    p.add_argument("--teacher-template", default="xgboost", choices=["xgboost", "linear"])
    p.add_argument("--lamda", type=float, default=1e-3, help="Laplace noise parameter: the noise scale is 1/lamda")
    p.add_argument("--alpha", type=int, default=100, help="moments accountant orders")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--encoder-max-clusters", type=int, default=5)
    p.add_argument("--no-strict", action="store_true", default=False,
                   help="disable the plugin's schema filtering of samples (peer default: strict)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (the peer's XGBoost teachers use nthread=2, hard-coded)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.generator_n_iter < 2:
        # the peer passes n_iter_print = generator_n_iter - 1 and takes `% n_iter_print`
        raise SystemExit("--generator-n-iter must be >= 2 (synthcity 0.2.12 divides by zero at 1)")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))

    from importlib.metadata import version

    import numpy as np
    import pandas as pd
    import synthcity.plugins.privacy.plugin_pategan as sc_pategan
    import torch
    from synthcity.plugins import Plugins
    from synthcity.plugins.core.dataloader import GenericDataLoader

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    cat_cols = [c for c in args.categorical.split(",") if c]
    if args.target not in cat_cols:
        cat_cols.append(args.target)
    df = pd.read_csv(args.train, dtype={c: str for c in cat_cols}, keep_default_na=False,
                     na_values={c: [] for c in cat_cols})
    missing = [c for c in cat_cols if c not in df.columns]
    if missing:
        raise SystemExit(f"categorical columns not in the CSV: {missing}")
    cont_cols = [c for c in df.columns if c not in cat_cols]
    if df[cont_cols].isna().any().any():
        raise SystemExit("NaN in a numeric column is not supported by this runner")

    # Instrumentation: wrappers call the peer's own functions unchanged.
    stats = {"iterations": 0, "label_batches": 0, "label_queries": 0, "charged_batches": 0, "charged_queries": 0}
    orig_teachers_fit = sc_pategan.Teachers.fit
    orig_pate_lamda = sc_pategan.Teachers.pate_lamda
    orig_update_alpha = sc_pategan.PATEGAN._update_alpha
    t0 = time.perf_counter()

    def teachers_fit(self, X, generator):
        stats["iterations"] += 1
        print(f"[synthcity_pategan] PATE iteration {stats['iterations']} t={time.perf_counter() - t0:.1f}s",
              file=sys.stderr, flush=True)
        return orig_teachers_fit(self, X, generator)

    def pate_lamda(self, x):
        out = orig_pate_lamda(self, x)
        stats["label_batches"] += 1
        stats["label_queries"] += int(len(out[0]))
        return out

    def update_alpha(self, n0, n1):
        stats["charged_batches"] += 1
        stats["charged_queries"] += int(len(n0))
        return orig_update_alpha(self, n0, n1)

    sc_pategan.Teachers.fit = teachers_fit
    sc_pategan.Teachers.pate_lamda = pate_lamda
    sc_pategan.PATEGAN._update_alpha = update_alpha

    workspace = Path(tempfile.mkdtemp(prefix="synthcity_ws_"))
    plugin = Plugins(categories=["privacy"]).get(
        "pategan", epsilon=float(args.epsilon), delta=args.delta, n_iter=args.n_iter,
        generator_n_iter=args.generator_n_iter, batch_size=args.batch_size, n_teachers=args.n_teachers,
        teacher_template=args.teacher_template, lamda=args.lamda, alpha=args.alpha, lr=args.lr,
        encoder_max_clusters=args.encoder_max_clusters, random_state=args.seed, device="cpu",
        workspace=workspace, strict=not args.no_strict)
    model = plugin.model  # synthcity's PATEGAN (Serializable)
    delta_after_init = model.delta
    if args.force_delta and args.delta is not None:
        model.delta = float(args.delta)

    loader = GenericDataLoader(df, target_column=args.target)
    n_train = len(df)
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    plugin.fit(loader)
    fit_seconds = time.perf_counter() - t0
    fit_cpu = cpu_seconds() - cpu0

    # ε_hat exactly as the peer computes it (from its own alpha_dict and δ)
    alpha_dict = np.asarray(model.alpha_dict, dtype=float)
    eps_hat_final = float(np.min([(alpha_dict[lv] - np.log(model.delta)) / float(lv + 1)
                                  for lv in range(len(alpha_dict))]))

    t1 = time.perf_counter()
    synth = plugin.generate(count=args.samples).dataframe()
    sample_seconds = time.perf_counter() - t1
    synth = synth[[c for c in df.columns if c in synth.columns]]
    synth.to_csv(args.out, index=False)

    result = {
        "peer": "synthcity pategan", "peer_version": version("synthcity"), "torch_version": torch.__version__,
        "opacus_version": version("opacus"), "xgboost_version": version("xgboost"), "n_train": n_train,
        "claimed_epsilon": float(model.epsilon), "delta_cli": args.delta, "delta_peer_after_init": delta_after_init,
        "delta_effective": float(model.delta),
        "delta_note": ("forced to the CLI delta by the runner" if args.force_delta else
                       "peer ignores the delta argument and uses 1/(n*sqrt(n))"),
        "eps_hat_final": eps_hat_final,
        "eps_hat_note": "peer's own epsilon_hat (data-dependent moments bound with the missing-bracket bug, "
                        "uncharged majority-positive batches); checked only after each full iteration",
        "fit_seconds": round(fit_seconds, 3), "fit_cpu_seconds": round(fit_cpu, 3),
        "sample_seconds": round(sample_seconds, 3), "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": args.threads, "seed": args.seed, "samples": int(len(synth)),
        "hyperparameters": {
            "n_teachers": model.n_teachers, "samples_per_teacher": getattr(model, "samples_per_teacher", None),
            "teacher_template": model.teacher_template, "lamda": model.lamda, "laplace_scale": 1.0 / model.lamda,
            "alpha_orders": model.alpha, "max_iter (n_iter)": model.max_iter,
            "iterations_run": stats["iterations"],
            "generator_n_iter (epochs per iteration)": model.generator_n_iter, "batch_size": model.batch_size,
            "lr": model.lr, "weight_decay": model.weight_decay,
            "generator": [model.generator_n_layers_hidden, model.generator_n_units_hidden],
            "discriminator": [model.discriminator_n_layers_hidden, model.discriminator_n_units_hidden],
            "encoder_max_clusters": model.encoder_max_clusters, "strict_schema_filter": not args.no_strict,
            "teacher_label_batches": stats["label_batches"], "teacher_label_queries": stats["label_queries"],
            "charged_batches": stats["charged_batches"], "charged_queries": stats["charged_queries"],
            "continuous_columns": cont_cols, "categorical_columns": cat_cols,
        },
    }
    print("RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
