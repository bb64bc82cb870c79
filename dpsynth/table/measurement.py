"""Public descriptions of measurements and their released results.

`Measurement` says what a mechanism computes, what it was charged, and the
sensitivity the code claims for the gate's neighbouring relation — everything a
replay needs to check the claim on a neighbouring table.  It holds no private
value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accountant.events import DpEvent

__all__ = ["Measurement", "NoisyMarginal", "NORMS"]

# How the distance between exact answers on neighbouring tables is measured:
#   "l2"    answers are (lists of) count vectors; per component, ||a(D) - a(D')||_2
#   "linf"  answers are (lists of) score vectors; per component, max_i |s_i(D) - s_i(D')|
#   "keys"  answers are {key: count}; counts on shared keys in L2, and each side holds
#           at most `sensitivity` keys... see dpsynth/testing/replay.py
NORMS = ("l2", "linf", "keys")


@dataclass(frozen=True)
class Measurement:
    """One gated measurement, as the replay harness sees it.

    kind: the table method ("marginals", "select", "count", "quantiles", ...).
    query: public, JSON-able description of the question (cliques, σ, ε, grid...).
    events: what is charged for it (one gate entry).
    sensitivity: the declared bound, per component, for the gate's relation.
    norm: one of NORMS.
    tolerance: relative float slack a replay allows on the bound (0 for integer answers;
        DP-SGD's float32 sums are reassociated when the batch changes).
    """

    kind: str
    query: dict[str, Any]
    events: tuple[DpEvent, ...]
    sensitivity: float | tuple[float, ...]
    norm: str
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}")

    def sensitivities(self, components: int) -> tuple[float, ...]:
        s = self.sensitivity
        return tuple(float(x) for x in s) if isinstance(s, tuple) else (float(s),) * components


@dataclass(frozen=True, eq=False)
class NoisyMarginal:
    """A released marginal: noisy counts with shape = the clique's domain sizes."""

    clique: tuple[str, ...]
    values: np.ndarray = field(repr=False)
    sigma: float

    def __post_init__(self) -> None:
        values = np.asarray(self.values)
        if values.dtype != np.int64:
            raise TypeError("NoisyMarginal values must be int64 counts")
        values.setflags(write=False)
        object.__setattr__(self, "values", values)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NoisyMarginal) and self.clique == other.clique and self.sigma == other.sigma
                and self.values.shape == other.values.shape and bool(np.array_equal(self.values, other.values)))

    __hash__ = None  # type: ignore[assignment]
