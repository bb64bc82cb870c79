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
    """One independent Bernoulli(exp(-(whole_i + f_i))) trial per lane; bool array."""
    whole = np.asarray(whole, dtype=np.int64)
    frac_scaled = np.asarray(frac_scaled, dtype=np.uint64)
    success = np.ones(whole.shape[0], dtype=bool)

    # Integer part: lane i needs whole_i consecutive Bernoulli(exp(-1)) successes; a
    # lane leaves as soon as one fails (probability 1 - 1/e per round).
    lanes = np.flatnonzero(whole > 0)
    one_scaled = np.uint64(1 << PRECISION_BITS)
    done = 0
    while lanes.size:
        done += 1
        ok = _bernoulli_exp_neg_fraction(
            np.full(lanes.size, one_scaled), lambda idx: [Fraction(1)] * len(idx), source
        )
        success[lanes[~ok]] = False
        lanes = lanes[ok]
        lanes = lanes[whole[lanes] > done]

    lanes = np.flatnonzero(success)
    ok = _bernoulli_exp_neg_fraction(
        frac_scaled[lanes], lambda idx: frac_exact(lanes[idx]), source
    )
    success[lanes[~ok]] = False
    return success


def _bernoulli_exp_neg_fraction(
    frac_scaled: np.ndarray, frac_exact: ExactFraction, source: RandomSource
) -> np.ndarray:
    """Bernoulli(exp(-f_i)) for f_i in [0, 1] (CKS Alg. 1), all lanes in lock-step."""
    result = np.zeros(frac_scaled.shape[0], dtype=bool)
    active = np.arange(frac_scaled.shape[0])
    k = 1
    while active.size:
        coin = _bernoulli_over(frac_scaled[active], k, lambda idx: frac_exact(active[idx]), source)
        result[active[~coin]] = k % 2 == 1
        active = active[coin]
        k += 1
    return result


def _bernoulli_over(
    frac_scaled: np.ndarray, k: int, frac_exact: ExactFraction, source: RandomSource
) -> np.ndarray:
    """Bernoulli(f_i / k) per lane, exact (see the module docstring)."""
    threshold = frac_scaled // np.uint64(k)  # = floor(f·2**W / k), since k is an integer
    u = source.random_bits(PRECISION_BITS, frac_scaled.shape[0])
    coin = u < threshold
    ties = np.flatnonzero(u == threshold)
    if ties.size:
        for lane, f in zip(ties, frac_exact(ties)):
            residual = Fraction(f) * (1 << PRECISION_BITS) / k - int(threshold[lane])
            coin[lane] = source.randbelow(residual.denominator) < residual.numerator
    return coin
