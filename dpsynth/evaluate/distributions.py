"""Per-column distribution distances between a real and a synthetic raw (mixed-type) table.

- categorical column: TVD of the category frequencies (a missing value counts as a
  category of its own), in [0, 1];
- numeric column: Wasserstein-1 distance divided by the width of the column's
  *public* range (so 1 is "as far apart as the range allows"), and the two-sample
  Kolmogorov–Smirnov statistic (largest gap between the empirical CDFs), both on the
  non-missing values; and the absolute difference of the missing-value rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .columns import ColumnSpec, category_labels

__all__ = ["column_distances", "categorical_tvd"]

_RESULT_COLUMNS = ["kind", "tvd", "wasserstein", "ks", "missing_rate_diff"]


def categorical_tvd(real: pd.Series, synth: pd.Series) -> float:
    """TVD between the category frequencies of two series (missing = its own category).

    Values are compared as labels (see ``columns.category_labels``), so ``1`` and ``1.0``
    are one category.
    """
    if len(real) == 0 or len(synth) == 0:
        raise ValueError(f"column {real.name!r}: a table has no rows")
    p = category_labels(real).value_counts(normalize=True)
    q = category_labels(synth).value_counts(normalize=True)
    p, q = p.align(q, fill_value=0.0)
    return 0.5 * float(np.abs(p.to_numpy() - q.to_numpy()).sum())


def column_distances(real: pd.DataFrame, synth: pd.DataFrame, spec: ColumnSpec) -> pd.DataFrame:
    """One row per spec column (target included), indexed by column name.

    Columns: ``kind`` ("categorical"/"numeric"), ``tvd`` (categorical only),
    ``wasserstein`` (range-normalised W1) and ``ks`` (numeric only; NaN when either
    table has no non-missing value), ``missing_rate_diff`` (numeric only).
    Numeric columns need public bounds in ``spec``.
    """
    spec.check_table(real, "real")
    spec.check_table(synth, "synthetic")
    rows = {}
    for col in spec.columns:
        if spec.is_categorical(col):
            rows[col] = ["categorical", categorical_tvd(real[col], synth[col]), np.nan, np.nan, np.nan]
        else:
            rows[col] = ["numeric", np.nan, *_numeric_distances(real[col], synth[col], spec.bound(col))]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=_RESULT_COLUMNS)
    frame.index.name = "column"
    return frame


def _numeric_distances(real: pd.Series, synth: pd.Series, bounds: tuple[float, float]) -> list[float]:
    if len(real) == 0 or len(synth) == 0:
        raise ValueError(f"column {real.name!r}: a table has no rows")
    x = real.to_numpy(dtype=np.float64)
    y = synth.to_numpy(dtype=np.float64)
    missing_diff = abs(float(np.isnan(x).mean()) - float(np.isnan(y).mean()))
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) == 0 or len(y) == 0:
        return [np.nan, np.nan, missing_diff]
    low, high = bounds
    w1 = float(stats.wasserstein_distance(x, y)) / (high - low)
    ks = float(stats.ks_2samp(x, y).statistic)
    return [w1, ks, missing_diff]
