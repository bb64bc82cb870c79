"""The data holder's own diagnostic: which rows break the schema, and how.

Errors raised anywhere else name the column and the problem only (no row
number, no count, no value: `dpsynth.schema.errors`).  The holder, who can read
the data anyway, asks this function — or `dpsynth data check DATA --schema S`,
which reads the file directly — for the rows.  Nothing here goes through a
private table, a gate or a service: it is for the person holding the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from .encode import Collected, check_frame, collecting, encode_column
from .errors import EncodingError

__all__ = ["Finding", "diagnose"]


@dataclass(frozen=True)
class Finding:
    column: str | None
    problem: str
    rows: tuple[int, ...]        # 0-based positions in the table as read (the holder's only)

    def __str__(self) -> str:
        shown = ", ".join(map(str, self.rows[:20])) + (", …" if len(self.rows) > 20 else "")
        where = f"column {self.column!r}: " if self.column else ""
        return f"{where}{self.problem}: {len(self.rows)} row(s) ({shown})" if self.rows else f"{where}{self.problem}"


def diagnose(frame: Any, schema: Any) -> list[Finding]:
    """Every column's first problem with the rows that have it (empty list: the table fits)."""
    try:
        frame = check_frame(frame, schema.names)
    except EncodingError as exc:
        return [Finding(None, str(exc), ())]
    found: list[Finding] = []
    for col in schema.columns:
        records: list = []
        try:
            with collecting(records):
                encode_column(col, frame[col.name], learning=not col.is_complete)
        except Collected:
            name, mask, what = records[-1]
            found.append(Finding(name, what, tuple(int(i) for i in np.flatnonzero(mask))))
    return found
