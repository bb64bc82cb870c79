"""Which columns of a raw (mixed-type) table are categorical, which numeric, and their public ranges.

The evaluation of raw tables needs only this much of a schema.  Numeric ranges must
be public (declared by the user, or released through the gate): a range read off the
private table would make every range-normalised figure depend on extreme records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["ColumnSpec", "category_labels", "MISSING_CATEGORY"]

# A missing categorical value is a category of its own, under this label.
MISSING_CATEGORY = "__missing__"


@dataclass(frozen=True)
class ColumnSpec:
    """Column kinds of a raw table.

    ``categorical`` and ``numeric`` list the columns to evaluate (disjoint);
    ``target`` (optional) is the label for utility and must be one of them or
    neither (then it is treated as categorical); ``bounds`` maps numeric columns to
    their public ``(low, high)`` range, needed by range-normalised metrics.
    """

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    target: str | None = None
    bounds: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "categorical", _names(self.categorical, "categorical"))
        object.__setattr__(self, "numeric", _names(self.numeric, "numeric"))
        both = set(self.categorical) & set(self.numeric)
        if both:
            raise ValueError(f"column {sorted(both)[0]!r} is listed as both categorical and numeric")
        if self.target is not None and self.target in self.numeric:
            raise ValueError(f"target column {self.target!r} must be categorical (classification), not numeric")
        clean: dict[str, tuple[float, float]] = {}
        for col, rng in dict(self.bounds).items():
            if col not in self.numeric:
                raise ValueError(f"bounds given for column {col!r}, which is not a numeric column")
            try:
                low, high = (float(v) for v in rng)
            except (TypeError, ValueError):
                raise ValueError(f"bounds of column {col!r} must be a (low, high) pair of numbers") from None
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise ValueError(f"bounds of column {col!r} must be finite with low < high")
            clean[col] = (low, high)
        object.__setattr__(self, "bounds", clean)

    @property
    def features(self) -> tuple[str, ...]:
        """Every listed column except the target: categorical first, then numeric."""
        return tuple(c for c in self.categorical + self.numeric if c != self.target)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the spec names (target included), categorical first."""
        cols = self.categorical + self.numeric
        if self.target is not None and self.target not in cols:
            cols = cols + (self.target,)
        return cols

    def is_categorical(self, column: str) -> bool:
        return column in self.categorical or column == self.target

    def bound(self, column: str) -> tuple[float, float]:
        """The public range of a numeric column; a clear error when none was declared."""
        if column not in self.bounds:
            raise ValueError(
                f"numeric column {column!r} has no public range; declare bounds={{{column!r}: (low, high)}}"
            )
        return self.bounds[column]

    def check_table(self, table: pd.DataFrame, role: str) -> None:
        """Raise a ``ValueError`` naming the first spec column missing from ``table``."""
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"the {role} table must be a pandas DataFrame, got {type(table).__name__}")
        for col in self.columns:
            if col not in table.columns:
                raise ValueError(f"the {role} table has no column {col!r}")
        for col in self.numeric:
            if not pd.api.types.is_numeric_dtype(table[col]):
                raise ValueError(f"numeric column {col!r} of the {role} table does not hold numbers")

    @classmethod
    def all_categorical(cls, columns: Iterable[str], target: str | None = None) -> "ColumnSpec":
        """A spec for a coded table: every column categorical."""
        return cls(categorical=tuple(columns), target=target)


def _names(value: Iterable[str], what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    names = tuple(value)
    for n in names:
        if not isinstance(n, str):
            raise ValueError(f"{what} column names must be strings, got {n!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} columns list a name more than once")
    return names


def category_labels(series: pd.Series) -> pd.Series:
    """Categorical values as strings, comparable across tables whatever their dtype.

    An integer-valued float (``1.0``, as pandas stores an int column with a missing
    value) becomes ``"1"`` so that it matches the integer ``1`` of another table; a
    missing value becomes :data:`MISSING_CATEGORY`.
    """
    return series.astype(object).map(_label, na_action="ignore").fillna(MISSING_CATEGORY).astype(str)


def _label(value: object) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
