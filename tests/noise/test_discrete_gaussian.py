"""The discrete Gaussian sampler against the exact N_ℤ(0, σ²) PMF (independent, mpmath)."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from dpsynth.noise import SecureRandomSource, SeededRandomSource, sample_discrete_gaussian
from dpsynth.noise import bernoulli
from tests.noise.chi_square import chi_square_pvalue, normalised_pmf

DRAWS = 200_000


def discrete_gaussian_pmf(sigma: float) -> dict[int, float]:
    s2 = mpmath.mpf(sigma) ** 2
    bound = int(40 * sigma) + 40
    return normalised_pmf(lambda x: mpmath.exp(-mpmath.mpf(x) ** 2 / (2 * s2)), range(-bound, bound + 1))


@pytest.mark.parametrize("sigma, seed", [(0.7, 1), (12, 2)])
def test_matches_exact_pmf_and_rejects_wrong_scale(sigma, seed):
    draws = sample_discrete_gaussian(sigma, DRAWS, SeededRandomSource(seed))
    assert draws.dtype == np.int64 and draws.shape == (DRAWS,)
    assert chi_square_pvalue(draws, discrete_gaussian_pmf(sigma)) > 1e-20
    # The same statistic must have the power to see a 30 % error in σ either way.
    assert chi_square_pvalue(draws, discrete_gaussian_pmf(sigma * 1.3)) < 1e-20
    assert chi_square_pvalue(draws, discrete_gaussian_pmf(sigma * 0.7)) < 1e-20


def test_secure_source_draws_follow_the_pmf():
    draws = sample_discrete_gaussian(3, 50_000, SecureRandomSource())
    assert chi_square_pvalue(draws, discrete_gaussian_pmf(3)) > 1e-20


def test_exact_tie_path_keeps_the_law(monkeypatch):
    # With 2-bit uniforms a quarter of all coins tie and go to the exact Python residual
    # comparison; the law must not change.
    monkeypatch.setattr(bernoulli, "PRECISION_BITS", 2)
    draws = sample_discrete_gaussian(Fraction(3, 2), 20_000, SeededRandomSource(3))
    assert chi_square_pvalue(draws, discrete_gaussian_pmf(1.5)) > 1e-20
    assert chi_square_pvalue(draws, discrete_gaussian_pmf(1.5 * 1.3)) < 1e-6


def test_float_int_and_fraction_sigma_agree_exactly():
    # 5, 5.0 and Fraction(5) are the same rational: same seed, same draws.
    a = sample_discrete_gaussian(5, 1000, SeededRandomSource(7))
    b = sample_discrete_gaussian(5.0, 1000, SeededRandomSource(7))
    c = sample_discrete_gaussian(Fraction(10, 2), 1000, SeededRandomSource(7))
    assert np.array_equal(a, b) and np.array_equal(a, c)


def test_shape_and_reproducibility():
    a = sample_discrete_gaussian(2.5, (3, 4, 5), SeededRandomSource(11))
    b = sample_discrete_gaussian(2.5, (3, 4, 5), SeededRandomSource(11))
    c = sample_discrete_gaussian(2.5, (3, 4, 5), SeededRandomSource(12))
    assert a.shape == (3, 4, 5) and a.dtype == np.int64
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sample_discrete_gaussian(1, 0, SeededRandomSource(1)).shape == (0,)


@pytest.mark.parametrize(
    "sigma, error",
    [(0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
     (Fraction(-1, 3), ValueError), (True, TypeError), ("1", TypeError), (None, TypeError),
     (2.0**41, ValueError)],
)
def test_rejects_bad_sigma(sigma, error):
    with pytest.raises(error, match="sigma"):
        sample_discrete_gaussian(sigma, 10, SeededRandomSource(0))


def test_rejects_bad_size_and_source():
    with pytest.raises(ValueError, match="size"):
        sample_discrete_gaussian(1.0, -1, SeededRandomSource(0))
    with pytest.raises(ValueError, match="size"):
        sample_discrete_gaussian(1.0, 2.5, SeededRandomSource(0))
    with pytest.raises(TypeError, match="RandomSource"):
        sample_discrete_gaussian(1.0, 10, np.random.default_rng(0))
