"""The exponential mechanism against exact softmax probabilities exp(ε·s/(2Δ)) / Z (mpmath)."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from dpsynth.noise import SeededRandomSource, sample_exponential_mechanism
from dpsynth.noise import bernoulli
from dpsynth.noise.exponential_mechanism import GRID_STEPS, exponential_mechanism_draws
from tests.noise.chi_square import chi_square_pvalue

DRAWS = 200_000


def softmax(scores, epsilon, sensitivity) -> dict[int, float]:
    w = [mpmath.exp(mpmath.mpf(epsilon) * mpmath.mpf(s) / (2 * mpmath.mpf(sensitivity))) for s in scores]
    z = mpmath.fsum(w)
    return {i: float(x / z) for i, x in enumerate(w)}


# Scores on the grid (multiples of Δ/2**20), so the flooring is the identity and the
# exact law is the plain softmax.
CASES = [
    ([0, 1, 2, 3, 5.5, -4], 1.0, 1.0),
    ([10, 12, 12, 30, 31, 0.25, 17], 0.4, 2.0),
]


@pytest.mark.parametrize("scores, epsilon, sensitivity", CASES)
def test_frequencies_match_softmax_and_reject_wrong_epsilon(scores, epsilon, sensitivity):
    draws = exponential_mechanism_draws(scores, epsilon, sensitivity, DRAWS, SeededRandomSource(4))
    assert chi_square_pvalue(draws, softmax(scores, epsilon, sensitivity)) > 1e-20
    assert chi_square_pvalue(draws, softmax(scores, epsilon * 1.3, sensitivity)) < 1e-20
    assert chi_square_pvalue(draws, softmax(scores, epsilon * 0.7, sensitivity)) < 1e-20


def test_single_draw_api_has_the_same_law():
    scores, epsilon, sensitivity = CASES[0]
    source = SeededRandomSource(8)
    draws = np.array([sample_exponential_mechanism(scores, epsilon, sensitivity, source) for _ in range(3000)])
    assert chi_square_pvalue(draws, softmax(scores, epsilon, sensitivity)) > 1e-20
    assert isinstance(sample_exponential_mechanism(scores, epsilon, sensitivity, source), int)


def test_exact_tie_path_keeps_the_law(monkeypatch):
    monkeypatch.setattr(bernoulli, "PRECISION_BITS", 2)
    scores = [0, 1, 2, 4]
    draws = exponential_mechanism_draws(scores, 1.5, 1.0, 20_000, SeededRandomSource(2))
    assert chi_square_pvalue(draws, softmax(scores, 1.5, 1.0)) > 1e-20
    assert chi_square_pvalue(draws, softmax(scores, 1.5 * 1.3, 1.0)) < 1e-6


def test_scores_are_floored_to_the_grid():
    # Scores inside one grid cell [k·g, (k+1)·g), g = Δ/2**20, are the same rounded score:
    # equal probabilities, whatever ε.  A score one cell higher is strictly likelier.
    g = Fraction(1, GRID_STEPS)
    scores = [Fraction(3) + g / 3, Fraction(3) + g * Fraction(9, 10), Fraction(3)]
    draws = exponential_mechanism_draws(scores, 2**22, 1, 30_000, SeededRandomSource(6))
    assert chi_square_pvalue(draws, {0: 1 / 3, 1: 1 / 3, 2: 1 / 3}) > 1e-20


def test_huge_score_range_is_handled_exactly():
    source = SeededRandomSource(1)
    assert sample_exponential_mechanism([0.0, 1e300, -1e300], 1.0, 1.0, source) == 1
    assert sample_exponential_mechanism([5], 1.0, 1.0, source) == 0


def test_reproducible_with_a_seed():
    a = exponential_mechanism_draws([1, 2, 3], 1.0, 1.0, 100, SeededRandomSource(3))
    b = exponential_mechanism_draws([1, 2, 3], 1.0, 1.0, 100, SeededRandomSource(3))
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(scores=[]), ValueError, "non-empty"),
        (dict(scores=[[1, 2]]), ValueError, "1-D"),
        (dict(scores=[1.0, float("nan")]), ValueError, r"scores\[1\] is not finite"),
        (dict(scores=[float("inf")]), ValueError, r"scores\[0\] is not finite"),
        (dict(scores=[1, "a"]), TypeError, r"scores\[1\]"),
        (dict(scores=5), TypeError, "sequence"),
        (dict(epsilon=0), ValueError, "epsilon"),
        (dict(epsilon=float("inf")), ValueError, "epsilon"),
        (dict(epsilon=-1), ValueError, "epsilon"),
        (dict(sensitivity=0), ValueError, "sensitivity"),
        (dict(sensitivity=float("nan")), ValueError, "sensitivity"),
        (dict(source=np.random.default_rng(0)), TypeError, "RandomSource"),
    ],
)
def test_validation(kwargs, error, message):
    args = dict(scores=[1.0, 2.0], epsilon=1.0, sensitivity=1.0, source=SeededRandomSource(0))
    args.update(kwargs)
    with pytest.raises(error, match=message):
        sample_exponential_mechanism(**args)


def test_errors_never_echo_a_score():
    with pytest.raises(ValueError) as info:
        sample_exponential_mechanism([123456.789, float("nan")], 1.0, 1.0, SeededRandomSource(0))
    assert "123456" not in str(info.value) and "nan" not in str(info.value).lower()
