"""Errors raised by the schema.

Messages name the column or field, never a cell's value and never a row number
or a count of rows: an error message can end up in a log, a ticket or a
service's answer, and neither a value nor the position of a record in a private
table may travel with it.  The data holder lists the rows with `diagnose`
(`dpsynth data check`).
"""

from __future__ import annotations

__all__ = ["SchemaError", "EncodingError"]


class SchemaError(ValueError):
    """The schema itself is malformed (a field is missing, of the wrong type, inconsistent)."""


class EncodingError(ValueError):
    """A table does not fit its schema (wrong columns, a value of the wrong kind, out of range...).

    `column` says where; the value and the row are never included.
    """

    def __init__(self, message: str, *, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column
