"""The discrete Laplace sampler against its exact PMF (1-p)/(1+p)·p^|x|, p = e^(-1/scale)."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from dpsynth.noise import SeededRandomSource, sample_discrete_laplace
from dpsynth.noise import bernoulli
from tests.noise.chi_square import chi_square_pvalue

DRAWS = 200_000


def discrete_laplace_pmf(scale: float) -> dict[int, float]:
    # Closed form, not a normalised sum: an independent check of the normalisation too.
    p = mpmath.exp(-1 / mpmath.mpf(scale))
    bound = int(80 * scale) + 80
    return {x: float((1 - p) / (1 + p) * p ** abs(x)) for x in range(-bound, bound + 1)}


# 0.7 is a float whose exact rational has a 2**52 denominator (the Python-integer path);
# 12 is an integer scale (the NumPy uint64 path).
@pytest.mark.parametrize("scale, seed", [(0.7, 1), (12, 2)])
def test_matches_exact_pmf_and_rejects_wrong_scale(scale, seed):
    draws = sample_discrete_laplace(scale, DRAWS, SeededRandomSource(seed))
    assert draws.dtype == np.int64 and draws.shape == (DRAWS,)
    assert chi_square_pvalue(draws, discrete_laplace_pmf(scale)) > 1e-20
    assert chi_square_pvalue(draws, discrete_laplace_pmf(scale * 1.3)) < 1e-20
    assert chi_square_pvalue(draws, discrete_laplace_pmf(scale * 0.7)) < 1e-20


def test_non_integer_rational_scale():
    draws = sample_discrete_laplace(Fraction(7, 3), 50_000, SeededRandomSource(5))
    assert chi_square_pvalue(draws, discrete_laplace_pmf(7 / 3)) > 1e-20


def test_exact_tie_path_keeps_the_law(monkeypatch):
    monkeypatch.setattr(bernoulli, "PRECISION_BITS", 2)
    draws = sample_discrete_laplace(3, 20_000, SeededRandomSource(3))
    assert chi_square_pvalue(draws, discrete_laplace_pmf(3)) > 1e-20
    assert chi_square_pvalue(draws, discrete_laplace_pmf(3 * 1.3)) < 1e-6


def test_reproducible_and_shaped():
    a = sample_discrete_laplace(4, (10, 10), SeededRandomSource(9))
    b = sample_discrete_laplace(4, (10, 10), SeededRandomSource(9))
    assert a.shape == (10, 10) and np.array_equal(a, b)


@pytest.mark.parametrize(
    "scale, error",
    [(0, ValueError), (-2, ValueError), (float("nan"), ValueError), (float("-inf"), ValueError),
     (False, TypeError), ("3", TypeError), (2**51, ValueError), (Fraction(1, 2**63), ValueError)],
)
def test_rejects_bad_scale(scale, error):
    with pytest.raises(error, match="scale"):
        sample_discrete_laplace(scale, 10, SeededRandomSource(0))
