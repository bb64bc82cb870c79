"""Rows <-> feature vectors for the neural generators, built from public facts only.

The private table builds this layout from its own schema for every private
step it runs (DP-SGD, PATE teachers); the generators build the same layout
from the same public schema to decode what they generate.

CTGAN fits a Gaussian mixture per numeric column on the raw data: a release of
private information that nobody charges.  Here every number in the layout comes
from the schema (categories, public bounds), so building the transformer reads
no record and costs nothing:

* a categorical column (categorical, ordinal, boolean) becomes a one-hot block,
  with one extra slot for "missing" when the column allows missing values and
  one for "other" (every undeclared value, decoded as the schema's `<other>`)
  when the schema says ``out_of_range = "other"``;
* a numeric column becomes one value min-max scaled by its public bounds to
  [-1, 1] (values outside the bounds are clipped: the bounds are the schema's
  promise), plus a two-slot [present, missing] block when it may be missing;
* a datetime column is a numeric one on the axis the schema bins datetimes on
  (seconds since the epoch), decoded back to whole-second timestamps.

Numeric columns whose bin edges were learned privately can be declared as
categorical over their bins by the caller; nothing here learns edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from dpsynth.schema.decode import OTHER

__all__ = ["ColumnFacts", "CategoricalBlock", "NumericBlock", "TableTransformer", "column_facts"]

CATEGORICAL_KINDS = frozenset({"categorical", "ordinal", "boolean", "bool", "category"})
NUMERIC_KINDS = frozenset({"numeric", "continuous", "integer", "int", "float", "real"})
DATETIME_KINDS = frozenset({"datetime", "date", "timestamp"})


@dataclass(frozen=True)
class ColumnFacts:
    """What the transformer needs to know about one column, all of it public."""

    name: str
    kind: str  # "categorical" or "numeric"
    categories: tuple[Any, ...] = ()
    lower: float | None = None
    upper: float | None = None
    integer: bool = False
    nullable: bool = False
    datetime: bool = False  # a numeric column on the seconds-since-the-epoch axis
    other: bool = False     # categorical: undeclared values share the last category, OTHER


def _seconds(value: Any, name: str) -> float:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r}: datetime bound {value!r} is not a date/time") from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.value / 1e9


def _get(col: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(col, Mapping) and n in col:
            return col[n]
        if not isinstance(col, Mapping) and hasattr(col, n):
            return getattr(col, n)
    return default


def column_facts(col: Any) -> ColumnFacts:
    """Read one column of a schema (a schema column object or a plain mapping).

    Accepted spellings: `name`; `kind` (categorical / ordinal / boolean,
    numeric / continuous / integer); `categories` (or `values`); `lower` /
    `upper` (or `bounds=(lo, hi)`, or the first and last of public `bins` edges);
    `nullable` (or `missing`, `allow_missing`).
    """
    name = _get(col, "name")
    if not isinstance(name, str) or not name:
        raise ValueError("every schema column needs a non-empty string name")
    kind = _get(col, "kind", "type")
    kind = getattr(kind, "value", kind)
    kind = str(kind).lower() if kind is not None else ""
    nullable = bool(_get(col, "nullable", "missing", "allow_missing", default=False))
    if kind in ("boolean", "bool") and _get(col, "categories", "values") is None:
        return ColumnFacts(name, "categorical", (False, True), nullable=nullable)
    if kind in CATEGORICAL_KINDS:
        cats = _get(col, "categories", "values")
        if cats is None or len(cats) == 0:
            raise ValueError(f"column {name!r}: a categorical column needs its public list of categories")
        cats = tuple(cats)
        if len(set(cats)) != len(cats):
            raise ValueError(f"column {name!r}: duplicate categories in the schema")
        other = str(_get(col, "out_of_range", default="error")) == "other"
        if other:
            if OTHER in cats:
                raise ValueError(f"column {name!r}: {OTHER!r} is reserved for out_of_range = 'other'")
            cats += (OTHER,)
        return ColumnFacts(name, "categorical", cats, nullable=nullable, other=other)
    if kind in NUMERIC_KINDS or kind in DATETIME_KINDS:
        lower, upper = _get(col, "lower"), _get(col, "upper")
        bounds = _get(col, "bounds")
        if (lower is None or upper is None) and bounds is not None:
            lower, upper = bounds
        bins = _get(col, "bins")
        if (lower is None or upper is None) and bins is not None and len(bins) >= 2:
            # Public bin edges (declared, or learned privately through the gate) bound the column.
            lower, upper = bins[0], bins[-1]
        if lower is None or upper is None:
            raise ValueError(
                f"column {name!r}: a numeric column needs public bounds (lower, upper); "
                "declare them or learn them privately first — DP-CTGAN never reads them from the data"
            )
        is_datetime = kind in DATETIME_KINDS
        if is_datetime:
            lower, upper = _seconds(lower, name), _seconds(upper, name)
        lower, upper = float(lower), float(upper)
        if not (math.isfinite(lower) and math.isfinite(upper) and lower < upper):
            raise ValueError(f"column {name!r}: bounds must be finite with lower < upper")
        integer = kind in ("integer", "int") or bool(_get(col, "integer", default=False))
        return ColumnFacts(name, "numeric", lower=lower, upper=upper, integer=integer, nullable=nullable,
                           datetime=is_datetime)
    raise ValueError(f"column {name!r}: kind {kind!r} is not supported by DP-CTGAN "
                     "(categorical, numeric or datetime)")


def _datetime_seconds(values: pd.Series) -> np.ndarray:
    """Seconds since the epoch (UTC, naive times read as UTC), NaN where missing or unreadable."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        parsed = pd.to_datetime(values, utc=True)
    else:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    ns = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    out = ns.astype(np.int64) / 1e9
    return np.where(np.isnat(ns), np.nan, out)


@dataclass(frozen=True)
class CategoricalBlock:
    """A one-hot block: `width` = number of categories (+1 when missing is allowed)."""

    facts: ColumnFacts
    start: int
    width: int

    @property
    def end(self) -> int:
        return self.start + self.width


@dataclass(frozen=True)
class NumericBlock:
    """One scaled value at `start`; `missing_start` is a [present, missing] block or None."""

    facts: ColumnFacts
    start: int
    missing_start: int | None

    @property
    def end(self) -> int:
        return self.start + 1 if self.missing_start is None else self.missing_start + 2


class TableTransformer:
    """The fixed feature layout of a table, from its schema alone."""

    def __init__(self, columns: Iterable[ColumnFacts]) -> None:
        self.columns: tuple[ColumnFacts, ...] = tuple(columns)
        if not self.columns:
            raise ValueError("the schema has no columns")
        names = [c.name for c in self.columns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate column names in the schema: {dup}")
        blocks: list[CategoricalBlock | NumericBlock] = []
        pos = 0
        for c in self.columns:
            if c.kind == "categorical":
                width = len(c.categories) + (1 if c.nullable else 0)
                blocks.append(CategoricalBlock(c, pos, width))
                pos += width
            else:
                blocks.append(NumericBlock(c, pos, pos + 1 if c.nullable else None))
                pos += 3 if c.nullable else 1
        self.blocks: tuple[CategoricalBlock | NumericBlock, ...] = tuple(blocks)
        self.dim = pos

    @classmethod
    def from_schema(cls, schema: Any) -> "TableTransformer":
        """Accepts a schema object with `.columns`, a sequence of columns, or a mapping of them."""
        cols = getattr(schema, "columns", schema)
        if isinstance(cols, Mapping):
            cols = [({"name": k, **v} if isinstance(v, Mapping) else v) for k, v in cols.items()]
        return cls(column_facts(c) for c in cols)

    # -- layout ---------------------------------------------------------------------------
    @property
    def categorical_blocks(self) -> tuple[CategoricalBlock, ...]:
        """Every one-hot block (categorical columns and numeric missing flags excluded)."""
        return tuple(b for b in self.blocks if isinstance(b, CategoricalBlock))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def block(self, name: str) -> CategoricalBlock | NumericBlock:
        for b in self.blocks:
            if b.facts.name == name:
                return b
        raise KeyError(f"unknown column {name!r}; the schema's columns are {list(self.names)}")

    def to_dict(self) -> dict[str, Any]:
        return {"columns": [
            {"name": c.name, "kind": c.kind, "categories": list(c.categories), "lower": c.lower,
             "upper": c.upper, "integer": c.integer, "nullable": c.nullable, "datetime": c.datetime,
             "other": c.other}
            for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TableTransformer":
        return cls(ColumnFacts(name=c["name"], kind=c["kind"], categories=tuple(c["categories"]),
                               lower=c["lower"], upper=c["upper"], integer=c["integer"],
                               nullable=c["nullable"], datetime=bool(c.get("datetime", False)),
                               other=bool(c.get("other", False)))
                   for c in data["columns"])

    # -- rows -> features (runs inside the private table's access path) ------------------
    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode rows; an unknown category or a missing value where none is allowed is an
        error naming the column (never a row number, never the value: the private table
        validated its rows against the schema before, so this is a bug guard)."""
        missing_cols = [n for n in self.names if n not in frame.columns]
        if missing_cols:
            raise ValueError(f"the table lacks the schema's columns {missing_cols}")
        n = len(frame)
        out = np.zeros((n, self.dim), dtype=np.float32)
        rows = np.arange(n)
        for b in self.blocks:
            c = b.facts
            values = frame[c.name]
            isna = values.isna().to_numpy()
            if isna.any() and not c.nullable:
                raise ValueError(f"column {c.name!r}: missing value, but the schema does not allow missing values")
            if isinstance(b, CategoricalBlock):
                codes = pd.Index(list(c.categories), dtype=object).get_indexer(values.astype(object)).astype(np.int64)
                bad = (codes < 0) & ~isna
                if c.other:
                    codes = np.where(bad, len(c.categories) - 1, codes)
                elif bad.any():
                    raise ValueError(f"column {c.name!r}: a value is not one of the schema's categories")
                codes = np.where(isna, len(c.categories), codes)
                out[rows, b.start + codes] = 1.0
            else:
                x = _datetime_seconds(values) if c.datetime else pd.to_numeric(values, errors="coerce").to_numpy(
                    dtype=np.float64)
                bad = np.isnan(x) & ~isna
                if bad.any():
                    what = "not a date/time" if c.datetime else "not a number"
                    raise ValueError(f"column {c.name!r}: a value is {what}")
                x = np.clip(x, c.lower, c.upper)
                scaled = 2.0 * (x - c.lower) / (c.upper - c.lower) - 1.0
                out[:, b.start] = np.where(isna, 0.0, scaled)
                if b.missing_start is not None:
                    out[rows, b.missing_start + isna.astype(np.int64)] = 1.0
        return out

    # -- features -> rows (post-processing of the generator's output) ----------------------
    def inverse(self, features: np.ndarray) -> pd.DataFrame:
        """Decode generated features: argmax per one-hot block, rescale numeric values."""
        features = np.asarray(features, dtype=np.float64)
        data: dict[str, Any] = {}
        for b in self.blocks:
            c = b.facts
            if isinstance(b, CategoricalBlock):
                codes = features[:, b.start:b.end].argmax(axis=1)
                cats = np.array(list(c.categories) + ([None] if c.nullable else []), dtype=object)
                data[c.name] = pd.Series(cats[codes], dtype=object)
            else:
                x = (np.clip(features[:, b.start], -1.0, 1.0) + 1.0) / 2.0 * (c.upper - c.lower) + c.lower
                if c.integer:
                    x = np.clip(np.round(x), math.ceil(c.lower), math.floor(c.upper))
                if c.datetime:  # whole seconds, as the schema's decoder gives them
                    col = pd.Series((np.floor(x).astype(np.int64) * 10**9).astype("datetime64[ns]"))
                else:
                    col = pd.Series(x)
                if b.missing_start is not None:
                    missing = features[:, b.missing_start + 1] > features[:, b.missing_start]
                    col = col.where(~missing)
                if c.integer:
                    col = col.astype("Int64")
                data[c.name] = col
        return pd.DataFrame(data)

    def condition_features(self, name: str, value: Any) -> tuple[CategoricalBlock, int]:
        """The block and slot of `value` in categorical column `name` (for conditional sampling)."""
        try:
            b = self.block(name)
        except KeyError:
            raise KeyError(f"where: unknown column {name!r}; the schema's columns are {list(self.names)}") from None
        if not isinstance(b, CategoricalBlock):
            raise ValueError(f"where: column {name!r} is numeric; conditions are on categorical columns only")
        cats: Sequence[Any] = b.facts.categories
        if value is None and b.facts.nullable:
            return b, len(cats)
        for i, c in enumerate(cats):
            if c == value:
                return b, i
        raise ValueError(f"where: {value!r} is not a category of column {name!r} in the schema")
