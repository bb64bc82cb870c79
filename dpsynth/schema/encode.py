"""Raw values -> integer codes, one column at a time.

Runs inside the private table only.  An error names the column and what is
wrong with it — never a value, and never a row number or a count of rows:
error messages leave the process (logs, tickets, a service's answers), and a
row number would turn a schema into a query about chosen rows.  The data
holder, who can read the data anyway, gets the rows from `diagnose` (the
`dpsynth data check` command), which reads the file directly.
"""

from __future__ import annotations

import datetime as _dt
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import numpy as np
import pandas as pd

from .column import Column
from .errors import EncodingError

__all__ = ["encode_column", "check_frame", "missing_mask", "numeric_axis", "collecting", "Collected", "boolean_class",
           "datetime_class"]

# Set only by the holder's diagnostic (dpsynth.schema.diagnose): where to record the rows.
_COLLECT: ContextVar[list | None] = ContextVar("dpsynth_encode_collect", default=None)


class Collected(Exception):
    """Raised instead of EncodingError while collecting: the problem (with its rows) was recorded."""


@contextmanager
def collecting(into: list) -> Iterator[None]:
    token = _COLLECT.set(into)
    try:
        yield
    finally:
        _COLLECT.reset(token)


def _fail(col: Column, rows: np.ndarray, what: str) -> None:
    """Raise an error naming the column (no row, no value) — or, inside the holder's own
    diagnostic, record which rows break the rule first."""
    collect = _COLLECT.get()
    if collect is not None:
        collect.append((col.name, np.asarray(rows, dtype=bool).copy(), what))
        raise Collected(what)
    raise EncodingError(f"column {col.name!r}: {what}", column=col.name)


def missing_mask(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy(dtype=bool)


def check_frame(frame: Any, names: tuple[str, ...]) -> pd.DataFrame:
    """The frame as a DataFrame with a fresh positional index, or a clear error."""
    if not isinstance(frame, pd.DataFrame):
        raise EncodingError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    cols = [str(c) if not isinstance(c, str) else c for c in frame.columns]
    dup = sorted({c for c in cols if cols.count(c) > 1})
    if dup:
        raise EncodingError(f"the table has duplicate columns {dup}")
    missing = [n for n in names if n not in cols]
    extra = [c for c in cols if c not in names]
    if missing or extra:
        raise EncodingError(
            f"the table's columns do not match the schema: missing {missing}, not in the schema {extra}")
    if len(frame) == 0:
        raise EncodingError("the table is empty")
    return frame.reset_index(drop=True)


def _check_missing(col: Column, isna: np.ndarray) -> None:
    if isna.any() and not col.nullable:
        _fail(col, isna, "missing value, but the schema does not allow missing values (nullable = false)")


def _discrete_codes(col: Column, values: pd.Series, isna: np.ndarray, learning: bool) -> np.ndarray | None:
    present = ~isna
    if col.kind == "boolean":
        obj = values.astype(object).to_numpy()
        if col.values is not None:
            false, true = col.values
            is_true = np.fromiter((_same(v, true) for v in obj), bool, len(obj))
            is_false = np.fromiter((_same(v, false) for v in obj), bool, len(obj))
            bad = present & ~is_true & ~is_false
            if bad.any():
                _fail(col, bad, "value is not one of the boolean column's declared values")
            return np.where(isna, -1, is_true).astype(np.int64)
        ok = np.fromiter((boolean_class(v) is not None for v in obj), bool, len(obj))
        bad = present & ~ok
        if bad.any():
            _fail(col, bad, "wrong type: a boolean column takes true/false or 0/1 (or declare its values)")
        # Compared cell by cell on present cells only: a missing cell may be pandas' NA, whose
        # truth value raises (a nullable boolean column read back from Parquet).
        is_true = np.fromiter((bool(p) and bool(v == True) for v, p in zip(obj, present)), bool,  # noqa: E712
                              len(obj))
        return np.where(isna, -1, is_true).astype(np.int64)
    obj = values.astype(object).to_numpy()
    wrong = np.fromiter((not isinstance(v, (str, int, float, bool, np.generic)) for v in obj), bool, len(obj))
    bad = present & wrong
    if bad.any():
        _fail(col, bad, "wrong type: a category must be a string or a number")
    if learning and col.categories is None:
        return None
    index = pd.Index(list(col.categories), dtype=object)
    codes = index.get_indexer(pd.Index(obj, dtype=object)).astype(np.int64)
    unknown = present & (codes < 0)
    if unknown.any():
        if col.out_of_range != "other":
            _fail(col, unknown, "value is not one of the schema's categories "
                                      "(declare it, or set out_of_range = \"other\")")
        codes[unknown] = col.other_code
    return codes


def _same(v: Any, declared: Any) -> bool:
    """Whether a cell holds a declared boolean value (1.0 is 1; "1" is not 1; True is not "true")."""
    if isinstance(declared, str) or isinstance(v, str):
        return isinstance(v, str) and isinstance(declared, str) and v == declared
    if isinstance(v, (bool, np.bool_)) != isinstance(declared, bool):
        return False
    try:
        return bool(v == declared)
    except (TypeError, ValueError):
        return False


def boolean_class(v: Any) -> str | None:
    """How a boolean cell is written: "bool" (true/false), "number" (0/1) or None (neither)."""
    if v is True or v is False or isinstance(v, np.bool_):
        return "bool"
    if isinstance(v, (int, np.integer, float, np.floating)) and v in (0, 1):
        return "number"
    return None


_ISO_DATE = __import__("re").compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def datetime_class(v: Any) -> str:
    """How a datetime cell is written: "date" (a plain date: a date object, or ISO text
    YYYY-MM-DD) or "datetime" (anything else)."""
    if isinstance(v, _dt.date) and not isinstance(v, _dt.datetime):
        return "date"
    if isinstance(v, str) and _ISO_DATE.match(v):
        return "date"
    return "datetime"


def _elementwise(values: pd.Series, test: Any) -> np.ndarray:
    return np.fromiter((bool(test(v)) for v in values.to_numpy(dtype=object)), bool, len(values))


def numeric_axis(col: Column, values: pd.Series, isna: np.ndarray) -> np.ndarray:
    """The column's values on its numeric axis (floats; seconds for datetimes), NaN where missing."""
    present = ~isna
    if col.kind == "datetime":
        if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            _fail(col, present, "wrong type: a datetime column takes dates/times")
        if values.dtype == object:
            odd = present & _elementwise(values, lambda v: not isinstance(v, (str, _dt.date, np.datetime64)))
            if odd.any():
                _fail(col, odd, "wrong type: a datetime column takes dates/times (or ISO text)")
        try:
            if pd.api.types.is_datetime64_any_dtype(values.dtype):
                parsed = pd.to_datetime(values, utc=True)
            else:  # text in any ISO-like format, element by element
                parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
        except (TypeError, ValueError):
            parsed = pd.Series([pd.NaT] * len(values))
        bad = present & parsed.isna().to_numpy()
        if bad.any():
            _fail(col, bad, "wrong type: not a date/time")
        ns = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)
        return np.where(isna, np.nan, ns / 1e9)
    if pd.api.types.is_bool_dtype(values.dtype):
        _fail(col, present, f"wrong type: a {col.kind} column takes numbers, not true/false")
    if values.dtype == object:
        odd = present & _elementwise(values, lambda v: isinstance(v, (bool, np.bool_)))
        if odd.any():
            _fail(col, odd, f"wrong type: a {col.kind} column takes numbers, not true/false")
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = present & np.isnan(x)
    if bad.any():
        _fail(col, bad, f"wrong type: a {col.kind} column takes numbers")
    if col.kind == "integer":
        finite = present & np.isfinite(x)
        frac = finite & (np.floor(np.where(finite, x, 0.0)) != np.where(finite, x, 0.0))
        if frac.any():
            _fail(col, frac, "not a whole number in an integer column")
    return x


def _binned_codes(col: Column, values: pd.Series, isna: np.ndarray, learning: bool) -> np.ndarray | None:
    x = numeric_axis(col, values, isna)
    if learning and not col.is_complete:
        inf = ~isna & ~np.isfinite(x)
        if inf.any():
            _fail(col, inf, "infinite value")
        return None
    edges = np.asarray(col.edges)
    present = ~isna
    outside = present & ((x < edges[0]) | (x > edges[-1]) | ~np.isfinite(x))
    if outside.any():
        if col.out_of_range != "clip":
            _fail(col, outside, "value outside the schema's bounds (or set out_of_range = \"clip\")")
        x = np.clip(x, edges[0], edges[-1])
    codes = np.searchsorted(edges, np.where(present, x, edges[0]), side="right") - 1
    return np.clip(codes, 0, len(edges) - 2).astype(np.int64)


def encode_column(col: Column, values: pd.Series, *, learning: bool = False) -> np.ndarray | None:
    """Codes of one column (missing -> the missing code).

    With `learning=True` an incomplete column is only type-checked (returns None):
    the private table does this while its schema still has facts to learn.
    """
    isna = missing_mask(values)
    _check_missing(col, isna)
    if col.is_discrete:
        codes = _discrete_codes(col, values, isna, learning)
    else:
        codes = _binned_codes(col, values, isna, learning)
    if codes is None:
        return None
    if col.nullable:
        codes = np.where(isna, col.missing_code, codes)
    return codes.astype(np.int64)

