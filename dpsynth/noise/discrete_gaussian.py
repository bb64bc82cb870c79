"""Exact discrete Gaussian sampler: P[X = x] ∝ exp(-x² / (2σ²)) on the integers.

Canonne, Kamath & Steinke 2020 (arXiv:2004.00010), Algorithm 3, vectorised: with
t = floor(σ) + 1, every unfinished lane draws Y from the discrete Laplace of scale t
(:func:`dpsynth.noise.discrete_laplace.discrete_laplace_lanes`) and keeps it with
probability exp(-γ(|Y|)), γ(y) = (y - σ²/t)² / (2σ²) (CKS Alg. 3 / Thm 15: the accepted
Y is exactly N_ℤ(0, σ²)); rejected lanes retry in the next round.

All arithmetic is exact.  σ is a rational (a float converts exactly: 0.7 is
3152519739159347/2**52), σ² = a/b, and γ(y) = (y·b·t - a)² / (2·a·b·t²) is computed
with Python integers once per *distinct* |Y| in the round (at most a few thousand for
σ <= 1000, since |Y| rarely exceeds 15σ), then split into its integer part and the first
W bits of its fraction for the vectorised Bernoulli(exp(-γ)) of
:mod:`dpsynth.noise.bernoulli`.  The discrete Laplace proposal has integer scale t, so
its own fractions U/t use NumPy uint64 arithmetic for σ < 2**31 - 1.

Ranges: 0 < σ <= 2**40 (outputs stay far inside int64).  Speed is data-independent but
noise-dependent, so callers draw the noise before they read the data.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from dpsynth.noise import bernoulli
from dpsynth.noise.discrete_laplace import discrete_laplace_lanes
from dpsynth.noise.randomness import RandomSource
from dpsynth.noise.rejection import fill_by_rejection
from dpsynth.noise.rational import output_shape, positive_rational

MAX_SIGMA = 2**40


def sample_discrete_gaussian(sigma, size, source: RandomSource) -> np.ndarray:
    """``size`` iid draws of N_ℤ(0, σ²), ``np.ndarray[int64]`` of shape ``size``.

    ``sigma`` may be an int, a Fraction or a float (converted exactly to a rational, no
    rounding); it must be finite and > 0.  ``source`` supplies all randomness
    (:class:`~dpsynth.noise.randomness.SecureRandomSource` outside tests).  Added to an
    integer query whose neighbours differ by an integer vector of L2 norm <= Δ, one draw
    per coordinate is Δ²/(2σ²)-zCDP (``proofs/discrete_gaussian.md``).
    """
    exact = positive_rational(sigma, "sigma")
    if exact > MAX_SIGMA:
        raise ValueError(f"sigma must be <= 2**40, got {sigma}")
    if not isinstance(source, RandomSource):
        raise TypeError("source must be a dpsynth.noise.RandomSource")
    shape = output_shape(size)
    total = int(np.prod(shape, dtype=np.int64))
    return _discrete_gaussian_lanes(exact, total, source).reshape(shape)


def _discrete_gaussian_lanes(sigma: Fraction, count: int, source: RandomSource) -> np.ndarray:
    variance = sigma * sigma
    a, b = variance.numerator, variance.denominator  # σ² = a / b
    t = int(sigma) + 1  # floor(σ) + 1 for σ > 0
    proposal_scale = Fraction(t)
    scale_num = b * t  # γ(y) = (y·b·t - a)² / (2·a·b·t²)
    gamma_den = 2 * a * b * t * t

    def propose(m: int) -> tuple[np.ndarray, np.ndarray]:
        y = discrete_laplace_lanes(proposal_scale, m, source)
        distinct, inverse = np.unique(np.abs(y), return_inverse=True)
        wholes, fracs, remainders = [], [], []
        for value in distinct.tolist():
            whole, rest = divmod((value * scale_num - a) ** 2, gamma_den)
            wholes.append(whole)
            fracs.append((rest << bernoulli.PRECISION_BITS) // gamma_den)
            remainders.append(rest)
        accepted = bernoulli.bernoulli_exp_neg(
            np.array(wholes, dtype=np.int64)[inverse],
            np.array(fracs, dtype=np.uint64)[inverse],
            lambda idx: [Fraction(remainders[inverse[i]], gamma_den) for i in idx],
            source,
        )
        return y, accepted

    return fill_by_rejection(count, propose, expected_rate=1.0)
