"""The exact Bernoulli(exp(-γ)) engine and its integer helpers, against closed forms."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from scipy import stats

from dpsynth.noise import SeededRandomSource, bernoulli
from tests.noise.chi_square import chi_square_pvalue

GAMMAS = [Fraction(0), Fraction(1, 1000), Fraction(1, 2), Fraction(1), Fraction(7, 3), Fraction(9, 2)]


def _lanes(gamma: Fraction, n: int):
    whole, frac = bernoulli.split_rational(gamma)
    exact = gamma - whole
    return (np.full(n, whole, dtype=np.int64), np.full(n, frac, dtype=np.uint64),
            lambda idx: [exact] * len(idx))


@pytest.mark.parametrize("gamma", GAMMAS)
def test_success_rate_is_exp_minus_gamma(gamma):
    n = 100_000
    hits = int(bernoulli.bernoulli_exp_neg(*_lanes(gamma, n), SeededRandomSource(int(gamma * 1000))).sum())
    p = float(mpmath.exp(-mpmath.mpf(gamma.numerator) / gamma.denominator))
    # two-sided binomial test; p-value must be far from tiny
    assert stats.binomtest(hits, n, p).pvalue > 1e-9
    if gamma == 0:
        assert hits == n


def test_mixed_lanes_keep_their_own_gamma():
    gammas = [GAMMAS[i % len(GAMMAS)] for i in range(60_000)]
    whole = np.array([g.numerator // g.denominator for g in gammas], dtype=np.int64)
    frac = np.array([bernoulli.split_rational(g)[1] for g in gammas], dtype=np.uint64)
    hits = bernoulli.bernoulli_exp_neg(whole, frac, lambda idx: [gammas[i] - whole[i] for i in idx],
                                       SeededRandomSource(3))
    for j, g in enumerate(GAMMAS):
        lane_hits = hits[j:: len(GAMMAS)]
        p = float(mpmath.exp(-mpmath.mpf(g.numerator) / g.denominator))
        assert stats.binomtest(int(lane_hits.sum()), lane_hits.size, p).pvalue > 1e-9


@pytest.mark.parametrize("gamma", [Fraction(1), Fraction(5, 4), Fraction(3, 10)])
def test_geometric_count_law(gamma):
    whole, frac = bernoulli.split_rational(gamma)
    draws = bernoulli.geometric_exp_neg(whole, frac, gamma - whole, 100_000, SeededRandomSource(9))
    q = mpmath.exp(-mpmath.mpf(gamma.numerator) / gamma.denominator)
    pmf = {v: float((1 - q) * q**v) for v in range(200)}
    assert chi_square_pvalue(draws, pmf) > 1e-20


def test_geometric_refuses_gamma_zero():
    with pytest.raises(ValueError):
        bernoulli.geometric_exp_neg(0, 0, Fraction(0), 5, SeededRandomSource(0))


@pytest.mark.parametrize("denominator", [7, 2**31 - 1, 2**31 + 11, 3 * 2**52 + 1])
def test_scaled_quotient_is_exact_on_both_paths(denominator):
    rng = np.random.default_rng(denominator % 1000)
    nums = rng.integers(0, min(denominator, 2**62), size=500)
    nums[:2] = [0, denominator - 1]
    got = bernoulli.scaled_quotient(nums, denominator)
    want = [(int(n) << bernoulli.PRECISION_BITS) // denominator for n in nums]
    assert got.dtype == np.uint64 and [int(x) for x in got] == want


def test_split_rational():
    assert bernoulli.split_rational(Fraction(7, 2)) == (3, 1 << (bernoulli.PRECISION_BITS - 1))
    assert bernoulli.split_rational(Fraction(0)) == (0, 0)
