"""Integer codes -> values (post-processing: uses only the public schema and an RNG).

Categories map back to their declared value ("other" to `OTHER`); a numeric
value is drawn uniformly within its bin (rounded to the column's `decimals`), an
integer uniformly among the whole numbers of
its bin, a datetime uniformly within its bin and floored to the second (to the
day for plain dates); the missing code becomes a missing value.  Then the values
are written the way the table writes them (`dpsynth.schema.represent`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .column import Column
from .errors import SchemaError

__all__ = ["decode_column", "OTHER"]

OTHER = "<other>"  # the value decoded from a column's "other" code


def _check_codes(col: Column, codes: np.ndarray) -> None:
    if codes.size and (codes.min() < 0 or codes.max() >= col.size):
        raise SchemaError(f"column {col.name!r}: codes must lie in [0, {col.size})")


def _integer_range(edges: np.ndarray, i: int, last: bool) -> tuple[int, int]:
    lo = math.ceil(edges[i])
    hi = math.floor(edges[i + 1]) if last else math.ceil(edges[i + 1]) - 1
    if hi < lo:  # a bin narrower than one whole number: its nearest one
        lo = hi = int(round((edges[i] + edges[i + 1]) / 2))
    return lo, hi


def _decode_binned(col: Column, codes: np.ndarray, values_mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Values drawn within the bins `codes` index."""
    edges = np.asarray(col.edges)
    k = len(edges) - 1
    safe = np.where(values_mask, codes, 0)
    whole = col.kind == "integer" or col.kind == "datetime" and col.format == "date"
    if whole:
        unit = 86_400.0 if col.kind == "datetime" else 1.0
        axis = edges / unit
        bounds = np.array([_integer_range(axis, i, i == k - 1) for i in range(k)], dtype=np.int64)
        lo, hi = bounds[safe, 0], bounds[safe, 1]
        u = rng.random(len(codes))
        out = lo + np.minimum(np.floor(u * (hi - lo + 1)).astype(np.int64), hi - lo)
        return out.astype(np.float64) * unit
    x = rng.uniform(edges[safe], edges[safe + 1])
    if col.kind == "numeric" and col.decimals is not None:
        x = _round_within(x, edges[safe], edges[safe + 1], safe == k - 1, col.decimals)
    return x


def _round_within(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, last: np.ndarray, decimals: int) -> np.ndarray:
    """x rounded to `decimals`, kept inside its bin [lo, hi) ([lo, hi] for the last) when the
    bin holds a value with that many decimals (else x is left as drawn)."""
    scale = 10.0 ** decimals
    y = np.round(x * scale) / scale
    first = np.ceil(lo * scale - 1e-9) / scale
    top = np.floor(hi * scale + 1e-9) / scale
    top = np.where(~last & (top >= hi), top - 1 / scale, top)
    fits = first <= top
    y = np.where(fits, np.clip(y, first, top), x)
    return y


def decode_column(col: Column, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
    """One column's values from its codes, written the way the schema says the table writes them."""
    from .represent import represent_column

    codes = np.asarray(codes, dtype=np.int64)
    _check_codes(col, codes)
    missing = codes == col.missing_code if col.nullable else np.zeros(len(codes), bool)
    other = codes == col.other_code if col.other_code is not None else np.zeros(len(codes), bool)
    values_mask = ~missing & ~other
    if col.is_discrete:
        table = np.array(list(col.categories) + ([OTHER] if col.other_code is not None else [])
                         + ([None] if col.nullable else []), dtype=object)
        return represent_column(col, pd.Series(table[codes], name=col.name, dtype=object))
    x = _decode_binned(col, codes, values_mask, rng)
    if col.kind == "integer":
        out = pd.Series(pd.array(np.where(missing, 0, x).astype(np.int64), dtype="Int64"), name=col.name)
        return represent_column(col, out.mask(missing))
    if col.kind == "datetime":
        ns = np.floor(x).astype(np.int64) * 10**9
        out = pd.Series(ns.astype("datetime64[ns]"), name=col.name)
        return represent_column(col, out.where(~missing))
    return represent_column(col, pd.Series(np.where(missing, np.nan, x), name=col.name))
