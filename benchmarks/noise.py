"""Time 10^6 exact discrete Gaussian draws (dpsynth) against diffprivlib's
``GaussianDiscrete`` (CKS rejection sampler in floats, one Python call per sample).

dpsynth is timed on the full 10^6 draws; diffprivlib's per-sample ``randomise(0)``
loop on ``--dpl-draws`` (default 10^4) and extrapolated linearly to 10^6 (its cost per
sample does not depend on the batch).  Both sides use a CSPRNG (dpsynth: ChaCha20 keyed
from os.urandom; diffprivlib: ``secrets.SystemRandom`` when unseeded), and the same σ
(diffprivlib's calibrated ``_scale`` is overwritten with σ).  Wall and CPU seconds are
both printed because shared machines make wall time noisy; the 1-minute load average
is printed too.

Run:  python benchmarks/noise.py [--repeats 5] [--dpl-draws 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from dpsynth.noise import SecureRandomSource, sample_discrete_gaussian  # noqa: E402

DRAWS = 1_000_000
SIGMAS = (1, 10, 1000)


def _diffprivlib_gaussian_discrete():
    """diffprivlib's mechanism class.  diffprivlib 0.6.6's package __init__ imports its
    models, which fail against current scikit-learn; the mechanisms do not need them,
    so stub ``diffprivlib.models`` before importing."""
    sys.modules.setdefault("diffprivlib.models", types.ModuleType("diffprivlib.models"))
    from diffprivlib.mechanisms import GaussianDiscrete

    return GaussianDiscrete


def time_call(fn, repeats: int) -> tuple[float, float]:
    """(median wall s, median CPU s) of ``fn()`` over ``repeats`` runs."""
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dpl-draws", type=int, default=10_000)
    args = parser.parse_args()

    source = SecureRandomSource()
    GaussianDiscrete = _diffprivlib_gaussian_discrete()
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'sigma':>6} | {'dpsynth 1e6 wall':>16} {'cpu':>7} | "
          f"{'diffprivlib 1e6 (extrap.) wall':>30} {'cpu':>8} | {'ratio wall':>10} {'cpu':>7}")
    for sigma in SIGMAS:
        ours_wall, ours_cpu = time_call(lambda: sample_discrete_gaussian(sigma, DRAWS, source), args.repeats)

        mech = GaussianDiscrete(epsilon=1.0, delta=1e-6, sensitivity=1)
        mech._scale = float(sigma)  # same σ as ours, not its (ε, δ) calibration
        n = args.dpl_draws
        dpl_wall, dpl_cpu = time_call(lambda: [mech.randomise(0) for _ in range(n)], max(1, args.repeats // 2))
        factor = DRAWS / n
        print(f"{sigma:>6} | {ours_wall:>15.3f}s {ours_cpu:>6.3f}s | "
              f"{dpl_wall * factor:>29.1f}s {dpl_cpu * factor:>7.1f}s | "
              f"{dpl_wall * factor / ours_wall:>9.0f}x {dpl_cpu * factor / ours_cpu:>6.0f}x")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
