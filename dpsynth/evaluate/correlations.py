"""Pairwise association structure of a raw table, and how far a synthetic table's is from the real one's.

For each pair of spec columns (the target counts as categorical):

- numeric × numeric: Pearson correlation r, in [-1, 1] (signed: a flipped sign counts);
- categorical × categorical: Cramér's V = sqrt(χ² / (n · (min(r, c) − 1))), in [0, 1],
  without bias correction and without Yates' continuity correction;
- categorical × numeric: the correlation ratio η = sqrt(SS_between / SS_total), in [0, 1].

A missing categorical value is a category of its own; rows with a missing numeric
value are left out of that pair.  Where an association is undefined (a constant
column, fewer than two categories, no rows left) it is taken as 0: a column that does
not vary carries no association.  The summary is the mean absolute difference over
all unordered pairs of columns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .columns import ColumnSpec

__all__ = ["association_matrix", "correlation_difference", "CorrelationDifference",
           "cramers_v", "correlation_ratio", "pearson"]


@dataclass(frozen=True)
class CorrelationDifference:
    """Real and synthetic association matrices and their mean absolute difference."""

    real: pd.DataFrame
    synth: pd.DataFrame
    mean_abs_difference: float

    def pairs(self) -> pd.DataFrame:
        """Tidy table: one row per unordered column pair with both associations and |difference|."""
        cols = list(self.real.columns)
        records = [
            (a, b, float(self.real.loc[a, b]), float(self.synth.loc[a, b]),
             abs(float(self.real.loc[a, b]) - float(self.synth.loc[a, b])))
            for a, b in itertools.combinations(cols, 2)
        ]
        return pd.DataFrame.from_records(records, columns=["column_a", "column_b", "real", "synth", "abs_diff"])


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two float arrays (NaN rows dropped); 0 when undefined."""
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return float((dx * dy).sum() / denom) if denom > 0 else 0.0


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramér's V of two integer code arrays (codes 0..k-1); 0 when undefined."""
    n = len(a)
    if n == 0:
        return 0.0
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = np.bincount(a * kb + b, minlength=ka * kb).reshape(ka, kb).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    r, c = table.shape
    if min(r, c) < 2:
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return float(np.sqrt(min(1.0, chi2 / (n * (min(r, c) - 1)))))


def correlation_ratio(codes: np.ndarray, values: np.ndarray) -> float:
    """Correlation ratio η of a numeric array given integer category codes (NaN values dropped); 0 when undefined."""
    keep = ~np.isnan(values)
    codes, values = codes[keep], values[keep]
    if len(values) < 2:
        return 0.0
    mean = values.mean()
    total = float(((values - mean) ** 2).sum())
    if total <= 0:
        return 0.0
    counts = np.bincount(codes).astype(np.float64)
    sums = np.bincount(codes, weights=values)
    present = counts > 0
    group_means = sums[present] / counts[present]
    between = float((counts[present] * (group_means - mean) ** 2).sum())
    return float(np.sqrt(min(1.0, between / total)))


def association_matrix(table: pd.DataFrame, spec: ColumnSpec) -> pd.DataFrame:
    """Symmetric matrix of pairwise associations over ``spec.columns`` (diagonal 1)."""
    spec.check_table(table, "given")
    cols = list(spec.columns)
    encoded: dict[str, np.ndarray] = {}
    for col in cols:
        if spec.is_categorical(col):
            encoded[col] = pd.factorize(table[col], use_na_sentinel=False)[0].astype(np.int64)
        else:
            encoded[col] = table[col].to_numpy(dtype=np.float64)
    m = np.eye(len(cols))
    for (i, a), (j, b) in itertools.combinations(enumerate(cols), 2):
        cat_a, cat_b = spec.is_categorical(a), spec.is_categorical(b)
        if cat_a and cat_b:
            value = cramers_v(encoded[a], encoded[b])
        elif not cat_a and not cat_b:
            value = pearson(encoded[a], encoded[b])
        elif cat_a:
            value = correlation_ratio(encoded[a], encoded[b])
        else:
            value = correlation_ratio(encoded[b], encoded[a])
        m[i, j] = m[j, i] = value
    return pd.DataFrame(m, index=cols, columns=cols)


def correlation_difference(real: pd.DataFrame, synth: pd.DataFrame, spec: ColumnSpec) -> CorrelationDifference:
    """Association matrices of both tables and the mean |difference| over all column pairs."""
    r = association_matrix(real, spec)
    s = association_matrix(synth, spec)
    iu = np.triu_indices(len(r), k=1)
    diffs = np.abs(r.to_numpy()[iu] - s.to_numpy()[iu])
    mean = float(diffs.mean()) if len(diffs) else 0.0
    return CorrelationDifference(real=r, synth=s, mean_abs_difference=mean)
