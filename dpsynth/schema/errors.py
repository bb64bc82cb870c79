"""Errors raised by the schema.

Messages name the column, field or row number, never a cell's value: an error
message can end up in a log or a ticket, and a value from a private table must
not travel with it.
"""

from __future__ import annotations

__all__ = ["SchemaError", "EncodingError"]


class SchemaError(ValueError):
    """The schema itself is malformed (a field is missing, of the wrong type, inconsistent)."""


class EncodingError(ValueError):
    """A table does not fit its schema (wrong columns, a value of the wrong kind, out of range...).

    `column` and `row` (0-based position in the table) say where; the value is never included.
    """

    def __init__(self, message: str, *, column: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.row = row
