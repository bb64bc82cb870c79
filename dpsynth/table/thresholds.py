"""Threshold for DP key discovery with discrete Gaussian noise (proofs/key_discovery.md).

A key held by a single record has exact count 1; it is released when
1 + Z >= τ with Z ~ N_Z(0, σ²).  We pick the smallest integer τ with
P[Z >= τ - 1] <= δ_thr, using an upper bound on the discrete Gaussian tail so
the guarantee holds without trusting a numerical series:

    P[Z >= t] = Σ_{k>=t} e^{-k²/2σ²} / Σ_{k∈Z} e^{-k²/2σ²}
             <= ( e^{-t²/2σ²} + ∫_t^∞ e^{-x²/2σ²} dx ) / (σ √(2π))
              = φ(t/σ)/σ + Q(t/σ)                          (t >= 0)

(numerator: the sum of a decreasing function is at most its first term plus
its integral; denominator: by Poisson summation Σ_k e^{-k²/2σ²} =
σ√(2π) Σ_j e^{-2π²σ²j²} >= σ√(2π)).
"""

from __future__ import annotations

import math

__all__ = ["discrete_gaussian_tail_bound", "key_threshold"]


def discrete_gaussian_tail_bound(t: int, sigma: float) -> float:
    """An upper bound on P[Z >= t] for Z ~ discrete Gaussian N_Z(0, σ²), t >= 0 an integer."""
    if t < 0:
        raise ValueError("the bound is for t >= 0")
    z = t / sigma
    return math.exp(-0.5 * z * z) / (sigma * math.sqrt(2 * math.pi)) + 0.5 * math.erfc(z / math.sqrt(2))


def key_threshold(sigma: float, delta: float) -> int:
    """Smallest integer τ >= 1 such that a count-1 key survives (1 + Z >= τ) with probability <= δ."""
    t = 0
    # The bound decreases in t; step up in doubling strides, then bisect.
    hi = 1
    while discrete_gaussian_tail_bound(hi, sigma) > delta:
        hi *= 2
    lo = t
    while lo < hi:
        mid = (lo + hi) // 2
        if discrete_gaussian_tail_bound(mid, sigma) <= delta:
            hi = mid
        else:
            lo = mid + 1
    return max(1, lo + 1)
