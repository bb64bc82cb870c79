"""Exact query answers on encoded rows (run only inside a charged measurement).

Each function here is the `q` of a mechanism whose sensitivity is proved in
proofs/: marginal counts (proofs/marginals.md), exponential-mechanism scores
for selection (proofs/marginals.md) and for quantiles (proofs/quantiles.md),
per-key counts (proofs/key_discovery.md).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["marginal_counts", "marginal_counts_many", "selection_scores", "quantile_scores", "key_counts", "key_order", "MAX_MARGINAL_CELLS"]

MAX_MARGINAL_CELLS = 50_000_000  # a public guard: a bigger marginal is almost surely a mistake


def marginal_counts(codes: np.ndarray, columns: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Counts of each cell of the marginal on `columns` (int64, shape `shape`)."""
    shape = tuple(int(s) for s in shape)
    size = int(np.prod(shape, dtype=np.int64))
    if len(columns) == 0:
        return np.array(codes.shape[0], dtype=np.int64)
    flat = np.ravel_multi_index(tuple(codes[:, j] for j in columns), shape)
    return np.bincount(flat, minlength=size).astype(np.int64).reshape(shape)


def marginal_counts_many(codes: np.ndarray, columns: Sequence[Sequence[int]],
                         shapes: Sequence[Sequence[int]], count=None) -> list[np.ndarray]:
    """``[count(codes, c, s) for c, s in zip(columns, shapes)]`` (``count`` defaults to
    `marginal_counts`), with every marginal whose columns lie inside one already counted
    summed out of the smallest such table instead of re-reading the rows (AIM scores
    hundreds of nested candidates a round).  Integer sums: the same counts exactly."""
    count = marginal_counts if count is None else count
    out: list[np.ndarray | None] = [None] * len(columns)
    done: list[int] = []
    for i in sorted(range(len(columns)), key=lambda i: -len(columns[i])):
        cols, shape = tuple(columns[i]), tuple(int(x) for x in shapes[i])
        source = None
        if cols and len(set(cols)) == len(cols):
            for j in done:
                if set(cols) <= set(columns[j]) and (source is None or out[j].size < out[source].size):
                    source = j
        if source is None:
            out[i] = count(codes, cols, shape)
        else:
            have = list(columns[source])
            table = out[source].sum(axis=tuple(k for k, c in enumerate(have) if c not in cols))
            kept = [c for c in have if c in cols]
            out[i] = np.ascontiguousarray(np.transpose(table, [kept.index(c) for c in cols]), dtype=np.int64)
        done.append(i)
    return out


def selection_scores(exact: Sequence[np.ndarray], estimates: Sequence[np.ndarray], weights: Sequence[float],
                     offsets: Sequence[float]) -> np.ndarray:
    """score_i = w_i * ||M_i(D) - estimate_i||_1 + offset_i (AIM/MST's selection quality)."""
    return np.array([w * float(np.abs(m - e).sum()) + o for m, e, w, o in zip(exact, estimates, weights, offsets)],
                    dtype=np.float64)


def quantile_scores(values: np.ndarray, candidates: np.ndarray, q: float) -> np.ndarray:
    """Rank utility of each public candidate c for the q-quantile (Smith 2011, with atoms):

        u(c) = -dist(q·n, [#{x < c}, #{x <= c}])

    i.e. 0 when c is a q-quantile of the data, else minus the number of records between c and
    the q-quantile.  Taking the distance to the interval (not to #{x <= c}) keeps a value held
    by many records — common in integer columns — from looking as bad as the empty tail.
    `values` are the present values on the column's numeric axis.  Sensitivity 1 under
    add/remove and replace-one (proofs/quantiles.md).
    """
    x = np.sort(values)
    below = np.searchsorted(x, candidates, side="left").astype(np.float64)
    upto = np.searchsorted(x, candidates, side="right").astype(np.float64)
    target = q * len(x)
    return -np.maximum(0.0, np.maximum(below - target, target - upto))


def key_order(key: object) -> tuple[str, str]:
    """A total order on keys of mixed types (public: depends on the key alone)."""
    return (type(key).__name__, repr(key))


def key_counts(values: pd.Series) -> dict[object, int]:
    """Count of each distinct present key, keys in `key_order` (the answer of key discovery)."""
    counts = values.dropna().value_counts(sort=False)
    items = [(k.item() if isinstance(k, np.generic) else k, int(c)) for k, c in counts.items()]
    return dict(sorted(items, key=lambda kc: key_order(kc[0])))
