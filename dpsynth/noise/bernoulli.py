"""Exact, vectorised Bernoulli(exp(-γ)) trials for rational γ >= 0.

This is Canonne, Kamath & Steinke 2020 (arXiv:2004.00010), Algorithm 1, run over many
independent lanes at once with NumPy integer arithmetic instead of one Python
``Fraction`` per coin:

* γ = k + f with integer k >= 0 and f in [0, 1).  exp(-γ) = exp(-1)^k · exp(-f), so a lane
  succeeds iff k independent Bernoulli(exp(-1)) trials and one Bernoulli(exp(-f)) trial
  all succeed (CKS Alg. 1, the γ > 1 branch).
* Bernoulli(exp(-f)), f in [0, 1]: K = 1, 2, ...; draw A ~ Bernoulli(f/K) until A = 0;
  succeed iff the final K is odd (CKS Alg. 1).
* Bernoulli(p) for rational p is decided exactly against an infinitely precise uniform
  U = (u + V) / 2**W, u a uniform W-bit integer and V in [0, 1) drawn only when needed:
  with q = floor(p·2**W), u < q means U < p, u > q means U > p, and only on the tie
  u == q (probability 2**-W per coin) is V compared with the exact residual
  p·2**W - q, using Python integers.  The vectorised comparison therefore never rounds.

Each lane carries ``whole`` = k (int64) and ``frac_scaled`` = floor(f·2**W) (uint64,
<= 2**W), plus a callback giving the exact f of a lane for the ties.  W is
:data:`PRECISION_BITS` (32); tests lower it to force the tie path.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from dpsynth.noise.randomness import RandomSource

#: Bits of the uniform compared per coin in the vectorised step.  Any value is exact
#: (ties, probability 2**-W per coin, are resolved with Python integers); 32 halves the
#: random words needed against 64 while a tie stays a one-in-four-billion event.
PRECISION_BITS = 32

#: Exact fractional parts of the lanes named by an index array (only called on ties).
ExactFraction = Callable[[np.ndarray], "list[Fraction]"]


def split_rational(gamma: Fraction) -> tuple[int, int]:
    """``(k, floor(f·2**W))`` for γ = k + f, k = floor(γ), f in [0, 1)."""
    whole, rest = divmod(gamma.numerator, gamma.denominator)
    return whole, (rest << PRECISION_BITS) // gamma.denominator


def scaled_quotient(numerators: np.ndarray, denominator: int) -> np.ndarray:
    """``floor(n · 2**W / denominator)`` for integer arrays ``0 <= n < denominator``, exact.

    Vectorised long division in chunks of <= 32 bits when ``denominator < 2**31`` (every
    intermediate stays below 2**63); beyond that, exact Python integers per distinct n.
    """
    numerators = np.asarray(numerators, dtype=np.int64)
    if denominator < 2**31:
        den = np.uint64(denominator)
        remainder = numerators.astype(np.uint64)
        quotient = np.zeros(numerators.shape, dtype=np.uint64)
        left = PRECISION_BITS
        while left:
            chunk = np.uint64(min(32, left))
            shifted = remainder << chunk
            quotient = (quotient << chunk) + shifted // den
            remainder = shifted % den
            left -= int(chunk)
        return quotient
    distinct, inverse = np.unique(numerators, return_inverse=True)
    table = np.array(
        [(int(n) << PRECISION_BITS) // denominator for n in distinct], dtype=np.uint64
    )
    return table[inverse.reshape(numerators.shape)]


def bernoulli_exp_neg(
    whole: np.ndarray,
    frac_scaled: np.ndarray,
    frac_exact: ExactFraction,
    source: RandomSource,
) -> np.ndarray:
    """One independent Bernoulli(exp(-(whole_i + f_i))) trial per lane; bool array.

    Phase 1 runs the ``whole_i`` Bernoulli(exp(-1)) stages of the lanes that have any, all
    such lanes in lock-step (one coin per lane per round, each lane with its own
    Algorithm-1 counter k); a lane drops out at its first failed stage.  Phase 2 runs the
    Bernoulli(exp(-f_i)) stage of the survivors, which all start at k = 1 together, so k
    is shared and each round is a handful of vector operations on a shrinking set.
    """
    whole = np.asarray(whole, dtype=np.int64)
    frac_scaled = np.asarray(frac_scaled, dtype=np.uint64)
    success = _integer_stages(whole, source)
    survivors = np.flatnonzero(success)
    success[survivors] = _fractional_stage(
        frac_scaled[survivors], lambda idx: frac_exact(survivors[idx]), source
    )
    return success


def geometric_exp_neg(
    whole: int, frac_scaled: int, frac_exact: Fraction, count: int, source: RandomSource
) -> np.ndarray:
    """``count`` draws of the number of successes of independent Bernoulli(exp(-γ))
    trials before the first failure, γ = whole + f the same for every lane:
    P[V = v] = (1 - e^-γ)·e^(-γ·v).  int64 array."""
    counts = np.zeros(count, dtype=np.int64)
    lanes = np.arange(count)
    while lanes.size:
        ok = bernoulli_exp_neg(
            np.full(lanes.size, whole, dtype=np.int64),
            np.full(lanes.size, frac_scaled, dtype=np.uint64),
            lambda idx: [frac_exact] * len(idx),
            source,
        )
        lanes = lanes[ok]
        counts[lanes] += 1
    return counts


def _integer_stages(whole: np.ndarray, source: RandomSource) -> np.ndarray:
    """True where all ``whole_i`` independent Bernoulli(exp(-1)) stages pass.  Stage j of
    every lane that still needs one runs at once, so Algorithm 1's k is shared."""
    success = np.ones(whole.shape[0], dtype=bool)
    lane = np.flatnonzero(whole > 0)
    stage = 0
    while lane.size:
        stage += 1
        passed = _exp_minus_one(lane.size, source)
        success[lane[~passed]] = False
        lane = lane[passed]
        lane = lane[whole[lane] > stage]
    return success


def _exp_minus_one(count: int, source: RandomSource) -> np.ndarray:
    """``count`` Bernoulli(exp(-1)) trials (CKS Alg. 1 with γ = 1; A ~ Bernoulli(1/k))."""
    bits = PRECISION_BITS
    result = np.zeros(count, dtype=bool)
    active = np.arange(count)
    k = 2  # at k = 1 the coin is Bernoulli(1): always continue
    while active.size:
        threshold = (1 << bits) // k
        u = source.random_bits(bits, active.size)
        coin = u < np.uint64(threshold)
        ties = np.flatnonzero(u == np.uint64(threshold))
        if ties.size:
            residual = Fraction(1 << bits, k) - threshold
            for i in ties.tolist():
                coin[i] = source.randbelow(residual.denominator) < residual.numerator
        result[active[~coin]] = k % 2 == 1
        active = active[coin]
        k += 1
    return result


def _fractional_stage(
    frac_scaled: np.ndarray, frac_exact: ExactFraction, source: RandomSource
) -> np.ndarray:
    """Bernoulli(exp(-f_i)) for f_i in [0, 1) (CKS Alg. 1), all lanes in lock-step."""
    bits = PRECISION_BITS
    result = np.zeros(frac_scaled.shape[0], dtype=bool)
    active = np.arange(frac_scaled.shape[0])
    scaled = frac_scaled
    k = 1
    while active.size:
        threshold = scaled // np.uint64(k)  # floor(f·2**W / k), exact for integer k
        u = source.random_bits(bits, active.size)
        coin = u < threshold
        ties = np.flatnonzero(u == threshold)
        if ties.size:
            for i, f in zip(ties.tolist(), frac_exact(active[ties])):
                residual = Fraction(f) * (1 << bits) / k - int(threshold[i])
                coin[i] = source.randbelow(residual.denominator) < residual.numerator
        result[active[~coin]] = k % 2 == 1
        active, scaled = active[coin], scaled[coin]
        k += 1
    return result
