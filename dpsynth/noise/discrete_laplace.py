"""Exact discrete Laplace sampler: P[X = x] ∝ exp(-|x| / scale) on the integers.

Canonne, Kamath & Steinke 2020 (arXiv:2004.00010), Algorithm 2, vectorised over lanes
(rejection in rounds over the lanes still unfinished) with the exact Bernoulli(exp(-γ))
of :mod:`dpsynth.noise.bernoulli`.  With scale = t/s in lowest terms and γ = s/t:

1. Y >= 0 with P[Y = y] ∝ exp(-γ·y): pick the integer L = ceil(t/s); draw U uniform
   on {0, ..., L-1} and keep it with probability exp(-γ·U) (rejecting otherwise), draw
   V = the number of Bernoulli(exp(-γ·L)) successes before the first failure, and set
   Y = U + L·V.  (u, v) -> u + L·v is a bijection onto the naturals and
   P[U = u, V = v] ∝ exp(-γ·u)·exp(-γ·L·v), so Y has the claimed law.  CKS take L = t
   and divide by s; this is the same construction with a smaller L so the table of
   γ·U has at most ceil(scale) entries.
2. A fair sign bit B; reject (B = 1, Y = 0) so that 0 is not counted twice; return
   (1 - 2B)·Y.

Ranges: scale up to 2**50 (so L·V stays far inside int64), with numerator and
denominator below 2**62 (so U·s fits int64).  The fractions γ·U = U·s/t are
reduced with NumPy uint64 long division when t < 2**31 (any integer or short-decimal
scale below 2**31), otherwise with exact Python integers over the distinct U (a float
scale such as 0.7 is the rational 3152519739159347/2**52: exact, somewhat slower).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dpsynth.noise.bernoulli import (
    bernoulli_exp_neg,
    geometric_exp_neg,
    scaled_quotient,
    split_rational,
)
from dpsynth.noise.randomness import RandomSource
from dpsynth.noise.rejection import fill_by_rejection
from dpsynth.noise.rational import output_shape, positive_rational

MAX_SCALE = 2**50


def sample_discrete_laplace(scale, size, source: RandomSource) -> np.ndarray:
    """``size`` iid draws of the discrete Laplace with P[x] ∝ exp(-|x|/scale), int64.

    ``scale`` may be an int, a Fraction or a float (converted exactly to a rational).
    ``source`` supplies all randomness (:class:`SecureRandomSource` outside tests).
    For an integer query of L1 sensitivity Δ this is (Δ/scale)-DP (CKS 2020, Thm 3 ff.).
    """
    exact = positive_rational(scale, "scale")
    if exact > MAX_SCALE:
        raise ValueError(f"scale must be <= 2**50, got {scale}")
    if max(exact.numerator, exact.denominator) >= 2**62:
        raise ValueError(
            "scale as a reduced fraction t/s needs t, s < 2**62 "
            f"(a float scale >= 2**-9 always qualifies), got {scale}"
        )
    if not isinstance(source, RandomSource):
        raise TypeError("source must be a dpsynth.noise.RandomSource")
    shape = output_shape(size)
    total = int(np.prod(shape, dtype=np.int64))
    return discrete_laplace_lanes(exact, total, source).reshape(shape)


def discrete_laplace_lanes(scale: Fraction, count: int, source: RandomSource) -> np.ndarray:
    """``count`` discrete Laplace draws for an already validated rational ``scale``."""
    t, s = scale.numerator, scale.denominator  # γ = s / t
    span = -(-t // s)  # L = ceil(t/s) >= 1; every U < L has γ·U < 1
    gamma_span = Fraction(span * s, t)  # γ·L in [1, 1 + γ)
    whole, frac = split_rational(gamma_span)

    def propose(m: int) -> tuple[np.ndarray, np.ndarray]:
        u = source.integers(span, m)
        numerators = u * s  # < t + s, exact in int64 for the documented range
        accepted = bernoulli_exp_neg(  # keep U with probability exp(-γ·U)
            np.zeros(m, dtype=np.int64),
            scaled_quotient(numerators, t),
            lambda idx: [Fraction(int(n), t) for n in numerators[idx]],
            source,
        )
        lanes = np.flatnonzero(accepted)
        magnitude = u[lanes] + span * geometric_exp_neg(
            whole, frac, gamma_span - whole, lanes.size, source
        )
        negative = source.random_bits(1, lanes.size).astype(bool)
        accepted[lanes[negative & (magnitude == 0)]] = False  # -0 would count 0 twice
        values = np.zeros(m, dtype=np.int64)
        values[lanes] = np.where(negative, -magnitude, magnitude)
        return values, accepted

    return fill_by_rejection(count, propose, expected_rate=1.0)
