"""χ² goodness of fit of integer draws against a PMF computed independently (mpmath)."""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import numpy as np
from scipy import stats

mpmath.mp.dps = 40


def normalised_pmf(weight: Callable[[int], mpmath.mpf], support: range) -> dict[int, float]:
    """P[x] = weight(x) / Σ weight over ``support`` (wide enough that the rest is < 1e-30)."""
    weights = {x: weight(x) for x in support}
    total = mpmath.fsum(weights.values())
    return {x: float(w / total) for x, w in weights.items()}


def chi_square_pvalue(draws: np.ndarray, pmf: dict[int, float], min_expected: float = 5.0) -> float:
    """p-value of Pearson's χ² for ``draws`` against ``pmf``.

    Cells are the values whose expected count is >= ``min_expected``, plus one pooled
    cell for everything else (both tails), so every draw lands in some cell.
    """
    n = draws.size
    values = sorted(x for x, p in pmf.items() if p * n >= min_expected)
    expected = np.array([pmf[x] * n for x in values])
    observed = np.array([np.count_nonzero(draws == x) for x in values], dtype=float)
    rest_expected = n - expected.sum()
    rest_observed = n - observed.sum()
    if rest_expected > 1e-9 * n:
        expected = np.append(expected, rest_expected)
        observed = np.append(observed, rest_observed)
    elif rest_observed:
        return 0.0  # draws where the PMF says there is (essentially) no mass
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(statistic, df=expected.size - 1))
