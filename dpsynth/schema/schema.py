"""The public description of a table: an ordered list of columns.

    schema = Schema.load("adult.toml")
    codes = schema.encode(frame)          # inside the private table only
    frame = schema.decode(codes, rng)     # post-processing of synthetic codes

Load/save as TOML (``[[columns]]`` tables) or JSON (``{"columns": [...]}``).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import tomli_w

from .column import Column
from .decode import decode_column
from .encode import check_frame, encode_column
from .errors import SchemaError

__all__ = ["Schema"]


class Schema:
    """An ordered, immutable collection of `Column`s with unique names."""

    def __init__(self, columns: Sequence[Column]) -> None:
        if isinstance(columns, (str, bytes)) or not isinstance(columns, Sequence):
            raise SchemaError("a schema is a list of columns")
        cols = tuple(columns)
        if not cols:
            raise SchemaError("the schema has no columns")
        for i, c in enumerate(cols):
            if not isinstance(c, Column):
                raise SchemaError(f"columns[{i}] must be a Column, got {type(c).__name__}")
        names = [c.name for c in cols]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise SchemaError(f"duplicate column names in the schema: {dup}")
        self.columns: tuple[Column, ...] = cols
        self._by_name = {c.name: c for c in cols}

    # -- lookup ---------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise KeyError(f"unknown column {name!r}; the schema's columns are {list(self.names)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.columns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        return f"Schema({', '.join(f'{c.name}:{c.kind}' for c in self.columns)})"

    @property
    def is_complete(self) -> bool:
        return all(c.is_complete for c in self.columns)

    def incomplete(self) -> tuple[str, ...]:
        """Names of the columns whose categories or bins are still to be declared or learned."""
        return tuple(c.name for c in self.columns if not c.is_complete)

    def replace(self, column: Column) -> "Schema":
        """A schema with the column of the same name replaced."""
        self.column(column.name)
        return Schema([column if c.name == column.name else c for c in self.columns])

    def domain(self) -> dict[str, int]:
        """Number of integer codes per column, in column order."""
        self._require_complete()
        return {c.name: c.size for c in self.columns}

    def _require_complete(self) -> None:
        todo = self.incomplete()
        if todo:
            raise SchemaError(f"the schema is incomplete: declare or learn the categories/bins of {list(todo)}")

    # -- codes ----------------------------------------------------------------------------
    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """Integer codes, shape (n, d) in column order.  Errors name the column, never a row or a value."""
        self._require_complete()
        frame = check_frame(frame, self.names)
        out = np.empty((len(frame), len(self.columns)), dtype=np.int64)
        for j, c in enumerate(self.columns):
            out[:, j] = encode_column(c, frame[c.name])
        return out

    def validate(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Check types, missing values and declared facts without requiring a complete schema."""
        frame = check_frame(frame, self.names)
        for c in self.columns:
            encode_column(c, frame[c.name], learning=True)
        return frame

    def resolve(self, frame: pd.DataFrame) -> "Schema":
        """The schema with what it leaves open about how the table writes its values (a
        boolean column's 0/1 or true/false, plain dates or date-times) taken from `frame`,
        which must write each such column one way (else an error naming the column).
        `PrivateTable` does this when it is made; see `dpsynth.schema.represent`."""
        from .represent import resolve

        return resolve(self, check_frame(frame, self.names))

    def represent(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Decoded values (a generator's output) written the way the schema says the table
        writes them: boolean values, integer dtypes, decimals, plain dates."""
        from .represent import represent

        return represent(self, frame)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        """Values from codes (m, d): numeric values drawn uniformly within their bin (an
        integer column with one code per value gives that value); then written the way the
        table writes them (`represent`)."""
        self._require_complete()
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != len(self.columns):
            raise SchemaError(f"codes must have shape (m, {len(self.columns)}), got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise SchemaError("codes must be integers")
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        return pd.DataFrame({c.name: decode_column(c, codes[:, j], rng) for j, c in enumerate(self.columns)})

    # -- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Schema":
        if not isinstance(data, Mapping) or "columns" not in data:
            raise SchemaError("a schema is an object with a 'columns' list")
        cols = data["columns"]
        if not isinstance(cols, list):
            raise SchemaError("'columns' must be a list")
        unknown = sorted(set(data) - {"columns"})
        if unknown:
            raise SchemaError(f"unknown top-level schema fields {unknown}")
        out = []
        for i, c in enumerate(cols):
            try:
                out.append(Column.from_dict(c))
            except TypeError as exc:
                raise SchemaError(f"columns[{i}]: {exc}") from None
        return cls(out)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Schema":
        """Read a .toml or .json schema file."""
        p = Path(path)
        suffix = p.suffix.lower()
        try:
            if suffix == ".toml":
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            elif suffix == ".json":
                data = json.loads(p.read_text(encoding="utf-8"))
            else:
                raise SchemaError(f"{p}: a schema file must end in .toml or .json")
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise SchemaError(f"{p}: cannot parse: {exc}") from None
        try:
            return cls.from_dict(data)
        except SchemaError as exc:
            raise SchemaError(f"{p}: {exc}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write as .toml or .json (by the file's suffix)."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix == ".toml":
            p.write_text(tomli_w.dumps(self.to_dict()), encoding="utf-8")
        elif suffix == ".json":
            p.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        else:
            raise SchemaError(f"{p}: a schema file must end in .toml or .json")
        return p

    # -- learning (through the gate) ------------------------------------------------------
    @staticmethod
    def learn(table: Any, **kwargs: Any) -> "Schema":
        """Learn the missing categories/bins privately through `table` (a PrivateTable).

        Every fact learned is measured by a DP mechanism and charged to the table's
        gate; see `PrivateTable.learn_schema` for the arguments.
        """
        return table.learn_schema(**kwargs)
