"""ε of a 10,000-step DP-SGD run over a (q, σ) grid: dpsynth's accountant beside
opacus' RDP accountant and dp_accounting's RDP accountant, in one run.

Each evaluation is cold (no cache): build the accountant, compose the run,
ask ε at δ.  Prints a table with each library's ε, time, and time ratios.
Run:  python benchmarks/accountant.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# This file is named like the package it measures; keep its folder off the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from accountant import PoissonSubsampledGaussianEvent, RDPAccountant
from accountant import rdp as our_rdp

STEPS = 10_000
DELTA = 1e-5
GRID = [(q, s) for q in (0.001, 0.01, 0.1) for s in (0.6, 1.0, 2.0)]


def ours(q: float, sigma: float) -> float:
    our_rdp._sgm_curve.cache_clear()
    return RDPAccountant().compose(PoissonSubsampledGaussianEvent(q, sigma, STEPS)).get_epsilon(DELTA)


def opacus_rdp(q: float, sigma: float) -> float:
    from opacus.accountants import RDPAccountant as OpacusRDP

    acc = OpacusRDP()
    acc.history = [(sigma, q, STEPS)]  # the state STEPS calls of step() produce
    return acc.get_epsilon(delta=DELTA)


def dp_accounting_rdp(q: float, sigma: float) -> float:
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    acc.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), STEPS
        )
    )
    return acc.get_epsilon(DELTA)


def timed(fn, q, s, repeats):
    times, eps = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        eps = fn(q, s)
        times.append(time.perf_counter() - t0)
    return eps, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)  # dp_accounting logs each order it gives up on
    peers = {"opacus": opacus_rdp, "dp_accounting": dp_accounting_rdp}
    available = {}
    for name, fn in peers.items():
        try:
            fn(0.01, 1.0)
            available[name] = fn
        except ImportError:
            print(f"# {name} not installed: its columns are skipped")
    head = ["q", "sigma", "eps ours", "ms ours"]
    for name in available:
        head += [f"eps {name}", f"ms {name}", f"x faster vs {name}"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    worst_ms, all_faster, never_looser = 0.0, True, True
    for q, s in GRID:
        eps, t = timed(ours, q, s, args.repeats)
        worst_ms = max(worst_ms, t * 1e3)
        row = [f"{q:g}", f"{s:g}", f"{eps:.6g}", f"{t * 1e3:.2f}"]
        for name, fn in available.items():
            e2, t2 = timed(fn, q, s, args.repeats)
            row += [f"{e2:.6g}", f"{t2 * 1e3:.2f}", f"{t2 / t:.1f}"]
            all_faster &= t < t2
            never_looser &= eps <= e2 * (1 + 1e-9)
        print("| " + " | ".join(row) + " |")
    print()
    print(f"worst time per evaluation (ours): {worst_ms:.2f} ms (target <= 10 ms)")
    if available:
        print(f"faster than every peer on every cell: {all_faster}")
        print(f"epsilon never looser than any peer: {never_looser}")


if __name__ == "__main__":
    main()
