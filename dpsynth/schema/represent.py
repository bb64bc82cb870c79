"""How values are written: synthetic rows come back the way the table wrote them.

Two steps, both on public facts only:

* `resolve(schema, frame)` (run by `PrivateTable` when it is made) fills in what the
  schema leaves open about the table's *representation* — how a boolean column writes
  false/true, whether a datetime column holds plain dates — from the table itself, by
  one rule: the column holds at least two present values and every one of them is
  written one way (all 0/1 numbers or all true/false; all plain dates or none), else
  the table is refused with an error naming the column (declare `values` / `format`
  to accept it).  This makes the filled-in fact the same for every pair of
  neighbouring tables that are both accepted (proofs/threat_model.md, section 3,
  "Representation"): two such tables share all rows but one, so a shared present
  value fixes the one way both are written.  It is a fact about the schema, not
  about any one record: a record cannot change it without the table being refused,
  and whether a table fits its schema is what the holder learns anyway.
* `represent(schema, frame)` turns decoded values into that representation: a boolean
  column's declared values (``0/1`` stay ``0/1``, with an integer dtype), integer
  columns and integer categories as integers (``Int64`` where missing values are
  allowed), numeric values rounded to the declared ``decimals``, plain dates as whole
  days (pandas writes them as ``YYYY-MM-DD``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .column import Column
from .encode import _same, boolean_class, datetime_class, missing_mask
from .errors import EncodingError

__all__ = ["resolve", "represent", "represent_column"]

_DAY = 86_400


def _present(values: pd.Series) -> np.ndarray:
    return values[~missing_mask(values)].astype(object).to_numpy()


def _too_few(col: Column, present: np.ndarray, what: str) -> None:
    # Fewer than two present values: a neighbouring table (that one value written the other
    # way) would be accepted with the other representation, so the table cannot say it.
    if len(present) < 2:
        raise EncodingError(f"column {col.name!r}: fewer than two values to tell {what}; declare {_HOW[col.kind]}",
                            column=col.name)


_HOW = {"boolean": "its values (values = [0, 1] or [false, true])", "datetime": "format = \"date\" or \"datetime\""}


def _resolve_boolean(col: Column, values: pd.Series) -> Column:
    present = _present(values)
    _too_few(col, present, "how the column writes false/true")
    classes = {boolean_class(v) for v in present}
    classes.discard(None)  # a value of neither kind is the encoder's error, raised before this
    if len(classes) > 1:
        raise EncodingError(f"column {col.name!r}: some values are true/false and some 0/1; declare how the column "
                            "writes them (values = [0, 1] or [false, true])", column=col.name)
    return col.replace(values=(False, True) if classes == {"bool"} else (0, 1))


def _resolve_datetime(col: Column, values: pd.Series) -> Column:
    present = _present(values)
    _too_few(col, present, "whether the column holds plain dates")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        classes = {"datetime"}  # the table's type says so, whatever its values
    else:
        classes = {datetime_class(v) for v in present}
    if len(classes) > 1:
        raise EncodingError(f"column {col.name!r}: some values are plain dates and some are date-times; declare "
                            "format = \"date\" or \"datetime\"", column=col.name)
    return col.replace(format=classes.pop())


def resolve(schema: Any, frame: pd.DataFrame) -> Any:
    """The schema with the representation facts the table left open filled in (see the
    module docstring); `frame` must already fit the schema (`Schema.validate`)."""
    columns = []
    for col in schema.columns:
        if col.kind == "boolean" and col.values is None:
            col = _resolve_boolean(col, frame[col.name])
        elif col.kind == "datetime" and col.format is None:
            col = _resolve_datetime(col, frame[col.name])
        columns.append(col)
    return type(schema)(columns)


def _integer_dtype(nullable: bool) -> str:
    return "Int64" if nullable else "int64"


def represent_column(col: Column, values: pd.Series) -> pd.Series:
    """Decoded values of one column in the schema's representation (post-processing)."""
    name = col.name
    isna = missing_mask(values)
    if col.kind == "boolean":
        false, true = col.values if col.values is not None else (False, True)
        cells = values.astype(object).to_numpy()
        out = np.empty(len(values), dtype=object)
        out[:] = None
        present = ~isna
        out[present] = [true if _is_true(v, true) else false for v in cells[present]]
        return _typed(pd.Series(out, name=name), (false, true), isna.any() or col.nullable)
    if col.is_discrete:
        cats = tuple(col.categories)
        if col.other_code is not None and values.astype(object).isin(["<other>"]).any():
            return pd.Series(values.astype(object).to_numpy(), name=name, dtype=object)
        return _typed(pd.Series(values.astype(object).to_numpy(), name=name), cats, isna.any() or col.nullable)
    if col.kind == "integer":
        x = pd.to_numeric(values, errors="coerce")
        if col.nullable or isna.any():
            return pd.Series(pd.array(x, dtype="Float64").round().astype("Int64"), name=name)
        return pd.Series(np.round(x.to_numpy(dtype=np.float64)).astype(np.int64), name=name)
    if col.kind == "numeric":
        x = pd.to_numeric(values, errors="coerce").astype(np.float64)
        if col.decimals is not None:
            x = x.round(col.decimals)
        return pd.Series(x.to_numpy(), name=name)
    ts = pd.to_datetime(values, errors="coerce")
    if col.format == "date":
        ts = ts.dt.floor("D")
    return pd.Series(ts.to_numpy(dtype="datetime64[ns]"), name=name)


def _is_true(v: Any, true: Any) -> bool:
    """Decoded cells are true/false; a cell already written the declared way maps to itself."""
    if _same(v, true):
        return True
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return boolean_class(v) == "number" and v == 1 and isinstance(true, bool)


def _typed(series: pd.Series, values: tuple, nullable: bool) -> pd.Series:
    """Objects with the dtype the declared values call for: integers (Int64 with missing
    values), floats, booleans ("boolean" with missing values), else objects."""
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return series.astype("boolean") if nullable else series.astype(bool)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return series.astype(_integer_dtype(nullable))
    if all(isinstance(v, (float, np.floating)) for v in values):
        return series.astype(np.float64)
    return series.astype(object)


def represent(schema: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """A decoded frame (a generator's output) in the schema's representation."""
    return pd.DataFrame({c.name: represent_column(c, frame[c.name]).reset_index(drop=True)
                         for c in schema.columns if c.name in frame.columns})
