"""The private rows, readable only while a charged measurement runs.

`Rows` holds the validated frame and its integer codes.  Reading either
outside `Rows.reading(receipt)` raises `UnchargedAccess`; the context opens
only with a receipt that the gate returned (so a ledger entry exists).  This
turns "a measurement forgot to charge" from a silent leak into an error, and
is what the record-and-replay harness relies on to catch such bugs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import pandas as pd

__all__ = ["Rows", "UnchargedAccess"]


class UnchargedAccess(RuntimeError):
    """Private rows were read outside a charged measurement."""


class ChargedReading:
    """The guard every holder of private rows shares: readable only inside `reading(receipt)`,
    opened by a measurement the gate has charged.  (Slots: `_depth` is the holder's.)"""

    __slots__ = ()

    @contextmanager
    def reading(self, receipt: Any) -> Iterator[Any]:
        if receipt is None or not getattr(receipt, "entry_hash", None):
            raise UnchargedAccess("private rows are readable only inside a measurement the gate has charged")
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1

    def _check(self) -> None:
        if self._depth <= 0:
            raise UnchargedAccess("private rows were read outside a charged measurement")


class Rows(ChargedReading):
    __slots__ = ("_frame", "_codes", "_depth")

    def __init__(self, frame: pd.DataFrame, codes: np.ndarray | None) -> None:
        self._frame = frame
        self._codes = codes
        self._depth = 0

    def __repr__(self) -> str:
        return "Rows(<private>)"

    def __reduce__(self) -> Any:
        raise TypeError("private rows cannot be pickled or copied")

    @property
    def frame(self) -> pd.DataFrame:
        self._check()
        return self._frame

    @property
    def n_records(self) -> int:
        self._check()
        return len(self._frame)

    @property
    def codes(self) -> np.ndarray:
        self._check()
        if self._codes is None:
            raise RuntimeError("the schema is incomplete: no codes yet")
        return self._codes

    def recode(self, codes: np.ndarray) -> None:
        """Replace the codes after the public schema changed (learned facts adopted)."""
        self._codes = codes
