"""The private rows, readable only while a charged measurement runs.

`Rows` holds the validated frame and its integer codes.  Reading either
outside `Rows.reading(receipt)` raises `UnchargedAccess`; the context opens
only with a receipt that the gate returned (so a ledger entry exists).  This
turns "a measurement forgot to charge" from a silent leak into an error, and
is what the record-and-replay harness relies on to catch such bugs.

`Rows.marginals` keeps the exact marginal counts it has computed (DESIGN.md, "What the
table may keep"): AIM's charged selection scores the same few hundred candidates every
round, and their exact counts do not change between rounds.  The kept counts are
aggregates of the rows and are guarded like them: read only inside a charged
measurement, handed out as copies, never pickled or copied (the holder refuses), dropped
when the codes change.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd

from .queries import marginal_counts_many

__all__ = ["Rows", "UnchargedAccess", "MAX_KEPT_CELLS"]

#: At most this many exact-count cells are kept (int64: 128 MiB); beyond it, marginals
#: are counted again each time they are asked for.  AIM's default candidates on a
#: 15-column table hold a few million cells.
MAX_KEPT_CELLS = 2**24


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
    __slots__ = ("_frame", "_codes", "_depth", "_kept", "_kept_cells")

    def __init__(self, frame: pd.DataFrame, codes: np.ndarray | None) -> None:
        self._frame = frame
        self._codes = codes
        self._depth = 0
        self._kept: dict[tuple[int, ...], np.ndarray] = {}
        self._kept_cells = 0

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

    def marginals(self, columns: Sequence[Sequence[int]], shapes: Sequence[Sequence[int]],
                  count: Any = None) -> list[np.ndarray]:
        """Exact counts of the marginal on each list of column indices (int64, dense over
        `shapes`, axes in the given order): those counted before come from what is kept,
        the rest are counted once (`marginal_counts_many` with `count`, default
        `queries.marginal_counts`) and kept while under MAX_KEPT_CELLS.  The same integers
        as counting afresh; every table is a copy."""
        codes = self.codes  # checks the reading is open
        size: dict[int, int] = {}
        for cols, shape in zip(columns, shapes):
            for j, s in zip(cols, shape):
                size[int(j)] = int(s)
        keys = [tuple(sorted(int(j) for j in cols)) for cols in columns]
        todo = [k for k in dict.fromkeys(keys) if k not in self._kept]
        fresh = dict(zip(todo, marginal_counts_many(codes, todo, [[size[j] for j in k] for k in todo], count)))
        out = []
        for cols, k in zip(columns, keys):
            table = self._kept.get(k)
            if table is None:
                table = fresh[k]
            order = [k.index(int(j)) for j in cols]
            out.append(np.array(np.transpose(table, order), dtype=np.int64, copy=True))
        for k, t in fresh.items():
            if self._kept_cells + t.size <= MAX_KEPT_CELLS:
                self._kept[k] = t
                self._kept_cells += t.size
        return out

    def recode(self, codes: np.ndarray) -> None:
        """Replace the codes after the public schema changed (learned facts adopted); the
        kept counts were of the old codes and go."""
        self._codes = codes
        self._kept = {}
        self._kept_cells = 0
