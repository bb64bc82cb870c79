"""Run smartnoise-synth's PATE-GAN once, under smartnoise-synth's own Python.

    $SNSYNTH_PYTHON benchmarks/peers/snsynth_pategan.py --train train.csv --out synth.csv \
        --epsilon 1 --delta 1e-6 --target income --categorical workclass,...,income \
        --bounds '{"age": [17, 90], ...}' --samples 32561 --seed 0

Imports the peer's installed package only (smartnoise-synth 1.0.8 here); none of its code
is copied.  Prints exactly one line ``RESULT {json}`` on stdout at the end (the peer also
prints to stdout / stderr).

PRIVACY CAVEAT -- the ε below is "as claimed by the peer", NOT a guarantee.  Known privacy
bugs of this implementation (../shared/research/pategan.md, which cites arXiv 2406.13985
"pategan-audit" and upstream issues):

* A worst-case black-box audit at claimed ε = 1, δ = 1e-5 found an empirical ε lower bound
  of 4.68 (distinguisher AUC 1.00) for smartnoise's PATE-GAN.
* ``snsynth/pytorch/nn/privacy_utils.py`` ``moments_acc``: ``t = t_one + t_two`` with the
  ``log`` missing (opendp/smartnoise-sdk issue #596): the moments accountant is wrong.  (With
  the hard-coded lap_scale 1e-3 the clamp ``2·lap²·l·(l+1)`` always wins, so in practice the
  data-independent clamp is what gets charged.)
* The stopping rule ``while eps < epsilon`` uses the data-dependent moments bound (q from
  the actual vote counts), so the number of iterations is a function of the private data;
  and the check happens *before* an iteration, so the accountant's final ε overshoots the
  target by one iteration (reported as ``eps_hat_final``).
* Preprocessing: the category sets of categorical columns are read from the real data
  without DP.  Continuous bounds are DP (opendp approx_bounds, charged through
  ``preprocessor_eps``) unless public bounds are passed (``--bounds``: what the benchmark
  does, with the same declared bounds as ours); older versions (the audit's copy) used
  non-DP min / max.
* ``num_teachers = int(len(data) / 1000)`` (fails for n < 1000; reads n) and
  ``noise_multiplier = 1e-3`` hard-coded, i.e. Laplace scale 1000 on the vote count:
  labels are close to coin flips.
* Training draws the latent z with ``torch.rand`` (uniform) but ``generate()`` uses
  ``torch.randn`` (normal): a train / sample mismatch (a utility bug, not a privacy one).
* Noise comes from numpy's global RNG (``np.random.laplace``), not a cryptographic RNG.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import time


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
    p.add_argument("--delta", type=float, default=None, help="the peer's default when omitted: 1/(n·√n)")
    p.add_argument("--target", required=True,
                   help="target column; this PATE-GAN is unconditional, so it is only forced categorical")
    p.add_argument("--categorical", default="",
                   help="comma-separated categorical columns; every other column is continuous")
    p.add_argument("--samples", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    # The peer's knobs; defaults = smartnoise-synth 1.0.8 PATEGAN.__init__'s.
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--teacher-iters", type=int, default=5)
    p.add_argument("--student-iters", type=int, default=5)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--binary", action="store_true", default=False)
    p.add_argument("--preprocessor-eps", type=float, default=None,
                   help="ε the peer spends on DP bounds of continuous columns (subtracted from --epsilon by "
                        "the peer).  Its own default (0.0) raises on continuous columns without public bounds, "
                        "so this runner defaults to 0.1·ε when such columns exist and to 0 otherwise.")
    p.add_argument("--bounds", default=None,
                   help='public bounds as JSON {"col": [lo, hi], ...}; those columns need no preprocessor budget')
    p.add_argument("--max-iterations", type=int, default=0,
                   help="runner-side cap on PATE-GAN iterations (0 = none, the peer's behaviour: train until its "
                        "accountant reaches ε)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return p.parse_args(argv)


class StopTraining(Exception):
    pass


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("MKL_NUM_THREADS", str(args.threads))

    from importlib.metadata import version

    import numpy as np
    import pandas as pd
    import snsynth
    import snsynth.pytorch.nn.pategan as sn_pategan
    import torch
    from snsynth.transform import MinMaxTransformer
    from snsynth.transform.table import TableTransformer

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)

    df = pd.read_csv(args.train)
    cat_cols = [c for c in args.categorical.split(",") if c]
    if args.target not in cat_cols:
        cat_cols.append(args.target)
    missing = [c for c in cat_cols if c not in df.columns]
    if missing:
        raise SystemExit(f"categorical columns not in the CSV: {missing}")
    cont_cols = [c for c in df.columns if c not in cat_cols]
    for c in cat_cols:  # snsynth's LabelTransformer(nullable=False) cannot take NaN
        df[c] = df[c].astype(str)
    if df[cont_cols].isna().any().any():
        raise SystemExit("NaN in a continuous column is not supported by this runner")

    bounds = json.loads(args.bounds) if args.bounds else {}
    unbounded = [c for c in cont_cols if c not in bounds]
    if args.preprocessor_eps is None:
        preprocessor_eps = 0.1 * args.epsilon if unbounded else 0.0
    else:
        preprocessor_eps = args.preprocessor_eps

    transformer = None
    if bounds:
        constraints = {c: MinMaxTransformer(lower=float(lo), upper=float(hi)) for c, (lo, hi) in bounds.items()}
        transformer = TableTransformer.create(df, style="gan", categorical_columns=list(cat_cols),
                                              continuous_columns=list(unbounded), constraints=constraints)

    synth = snsynth.Synthesizer.create("pategan", epsilon=float(args.epsilon), delta=args.delta, binary=args.binary,
                                       latent_dim=args.latent_dim, batch_size=args.batch_size,
                                       teacher_iters=args.teacher_iters, student_iters=args.student_iters)

    # Instrument the peer's accountant (a read-only wrapper: same return value).
    acct = {"calls": 0, "alphas": None, "alphas_iter_start": None, "l_list": None, "lap_scale": None,
            "votes_seen": 0}
    orig_moments_acc = sn_pategan.moments_acc

    def moments_acc_spy(num_teachers, votes, lap_scale, l_list, device="cpu"):
        if args.max_iterations and acct["calls"] >= args.max_iterations * args.student_iters:
            raise StopTraining()
        if acct["calls"] % args.student_iters == 0:  # the first student step of an iteration
            acct["alphas_iter_start"] = None if acct["alphas"] is None else acct["alphas"].clone()
        out = orig_moments_acc(num_teachers, votes, lap_scale, l_list, device)
        acct["calls"] += 1
        acct["votes_seen"] += int(votes.shape[0])
        acct["alphas"] = out.clone() if acct["alphas"] is None else acct["alphas"] + out
        acct["l_list"] = l_list
        acct["lap_scale"] = lap_scale
        return out

    sn_pategan.moments_acc = moments_acc_spy
    n_train = len(df)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    capped = False
    try:
        synth.fit(df, transformer=transformer, categorical_columns=list(cat_cols),
                  continuous_columns=list(cont_cols), preprocessor_eps=preprocessor_eps)
    except StopTraining:
        capped = True
    fit_seconds = time.perf_counter() - t0
    fit_cpu = cpu_seconds() - cpu0
    sn_pategan.moments_acc = orig_moments_acc

    # ε as the peer's own accountant computes it: min_l (α_l − log δ) / l.
    eps_hat_final = eps_hat_last_check = None
    iterations = acct["calls"] // max(args.student_iters, 1)
    if acct["alphas"] is not None:
        alphas = acct["alphas"].double()
        l_list = acct["l_list"].double()
        eps_hat_final = float(torch.min((alphas - math.log(synth.delta)) / l_list))
        # the value the peer's loop checked (and accepted) before its last iteration
        a0 = acct["alphas_iter_start"]
        a0 = torch.zeros_like(alphas) if a0 is None else a0.double()
        eps_hat_last_check = float(torch.min((a0 - math.log(synth.delta)) / l_list))
    fitted_bounds: dict = {}
    try:
        for col, t in zip(list(df.columns), synth._transformer.transformers):
            if hasattr(t, "fit_lower"):
                fitted_bounds[col] = [float(t.fit_lower), float(t.fit_upper)]
    except Exception as e:  # informational only
        fitted_bounds = {"error": repr(e)}
    t1 = time.perf_counter()
    samples = synth.sample(args.samples)
    sample_seconds = time.perf_counter() - t1
    if not isinstance(samples, pd.DataFrame):
        samples = pd.DataFrame(samples, columns=list(df.columns))
    samples.to_csv(args.out, index=False)

    result = {
        "peer": "smartnoise-synth PATEGAN", "peer_version": version("smartnoise-synth"),
        "torch_version": torch.__version__, "opacus_version": version("opacus"), "n_train": n_train,
        "claimed_epsilon": args.epsilon, "preprocessor_eps": preprocessor_eps,
        "training_epsilon": float(synth.epsilon),  # after the peer subtracts the preprocessor's share
        "delta": float(synth.delta),
        "delta_source": "cli" if args.delta is not None else "peer default 1/(n*sqrt(n))",
        "eps_hat_final": eps_hat_final, "eps_hat_last_check": eps_hat_last_check,
        "eps_hat_note": "peer's moments accountant (data-dependent q, missing-log bug) over all student queries "
                        "actually made; the peer stops when this first exceeds training_epsilon, so it overshoots "
                        "by <= one iteration",
        "capped_by_runner": capped, "fit_seconds": round(fit_seconds, 3), "fit_cpu_seconds": round(fit_cpu, 3),
        "sample_seconds": round(sample_seconds, 3), "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": args.threads, "seed": args.seed, "samples": len(samples),
        "hyperparameters": {
            "num_teachers": int(getattr(synth, "num_teachers", 0)),
            "num_teachers_rule": "int(n/1000) (hard-coded in peer)",
            "laplace_scale": (1.0 / acct["lap_scale"]) if acct["lap_scale"] else None,
            "lap_scale_param (lambda)": acct["lap_scale"],
            "iterations": iterations, "max_iterations_cap": args.max_iterations or None,
            "student_queries": acct["votes_seen"], "batch_size": args.batch_size,
            "teacher_iters": args.teacher_iters, "student_iters": args.student_iters,
            "latent_dim": args.latent_dim, "binary": args.binary,
            "moments_orders": int(acct["l_list"].numel()) if acct["l_list"] is not None else None,
            "optimizer": "Adam lr=1e-4 (G, student, teachers)",
            "continuous_columns": cont_cols, "categorical_columns": cat_cols,
            "public_bounds": bounds or None, "fitted_continuous_bounds": fitted_bounds,
        },
    }
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
