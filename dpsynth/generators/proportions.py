"""Rebalancing by conditional sampling: `sample(n, proportions={column: {value: share}})`.

Post-processing of a sealed model (no budget): the requested shares fix how many rows are
drawn with the column held at each value, and each block is drawn from the model conditioned
on that value (the marginal generators condition the graphical model exactly; the GANs fix
their conditional vector).  The values not named share what is left, in the model's own
proportions (one block conditioned on the set of them).  Counts are exact: the largest-
remainder rounding of share × n, computed in exact rational arithmetic so that they always
sum to n, however large n is.

What this is not: the rows of a rare group come from a model fitted to noisy measurements
(or a DP-trained network); drawing more of them adds no evidence about the group
(docs/fairness.md).
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Real
from typing import Any, Callable, Mapping, Sequence

__all__ = ["REBALANCE_NOTE", "ShareBlock", "plan_shares"]

REBALANCE_NOTE = ("rebalanced by conditional sampling: the rows of each group are drawn from a model fitted to "
                  "noisy measurements; more rows of a rare group are not new evidence about it")
# A sum of shares above 1 by no more than this is float rounding (e.g. 0.1 + 0.2 + 0.7).
_SUM_TOLERANCE = 1e-9


class ShareBlock(tuple):
    """(indices into the column's values, rows): one conditional block of a rebalanced sample."""

    __slots__ = ()

    def __new__(cls, indices: Sequence[int], rows: int) -> "ShareBlock":
        return super().__new__(cls, (tuple(indices), int(rows)))

    @property
    def indices(self) -> tuple[int, ...]:
        return self[0]

    @property
    def rows(self) -> int:
        return self[1]


def _share(column: str, value: Any, share: Any) -> Fraction:
    if isinstance(share, bool) or not isinstance(share, Real):
        raise TypeError(f"proportions: the share of {value!r} in column {column!r} must be a number, got {share!r}")
    share = float(share)
    if not math.isfinite(share) or share < 0 or share > 1:
        raise ValueError(f"proportions: the share of {value!r} in column {column!r} must be in [0, 1], got {share!r}")
    return Fraction(share)


def _index_of(values: Sequence[Any], value: Any) -> int | None:
    for i, v in enumerate(values):
        if v is None or value is None:
            if v is None and value is None:
                return i
        elif type(v) is type(value) or (isinstance(v, Real) and isinstance(value, Real)
                                         and not isinstance(v, bool) and not isinstance(value, bool)):
            if v == value:
                return i
    return None


def plan_shares(n: int, proportions: Any, values_of: Callable[[str], tuple[Sequence[Any], int]],
                ) -> tuple[str, list[ShareBlock]]:
    """(column, blocks) for drawing n rows with the requested shares.

    `values_of(column)` gives (the values the model knows for the column, the number of codes
    it holds beyond them that cannot be named, e.g. "other"); it raises, naming the column,
    for one the model cannot condition on.  The extra codes belong to the block of values
    not named.
    Each named value gets one block; the values not named (with the extra codes) share one
    last block of indices (empty when only extra codes remain).  Blocks of zero rows are
    dropped.  Refuses, naming the column or value: more than one column, an unknown value, a
    share outside [0, 1] or not a number, shares summing over 1, and shares summing under 1
    when no value is left to take the rest."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an int >= 0, got {n!r}")
    if not isinstance(proportions, Mapping) or not proportions:
        raise TypeError("proportions must be a non-empty mapping {column: {value: share}}")
    if len(proportions) != 1:
        raise ValueError(f"proportions: rebalance one column at a time (got {sorted(map(str, proportions))}); "
                         "exact shares of several columns at once would need their joint shares")
    (column, shares), = proportions.items()
    if not isinstance(column, str):
        raise TypeError(f"proportions: a column is named by a string, got {column!r}")
    if not isinstance(shares, Mapping) or not shares:
        raise TypeError(f"proportions: column {column!r} needs a non-empty mapping {{value: share}}")
    values, extra = values_of(column)
    values = list(values)
    named: dict[int, Fraction] = {}
    for value, share in shares.items():
        i = _index_of(values, value)
        if i is None:
            raise ValueError(f"proportions: {value!r} is not a value of column {column!r} (its values: "
                             f"{values[:8]}{' ...' if len(values) > 8 else ''})")
        if i in named:
            raise ValueError(f"proportions: value {value!r} of column {column!r} is named twice")
        named[i] = _share(column, value, share)
    total = sum(named.values(), Fraction(0))
    rest_indices = [i for i in range(len(values)) if i not in named]
    has_rest = bool(rest_indices) or extra > 0
    if total > 1 + Fraction(_SUM_TOLERANCE):
        raise ValueError(f"proportions: the shares of column {column!r} sum to {float(total):.6g} > 1")
    if total > 1 or (not has_rest and total >= 1 - Fraction(_SUM_TOLERANCE)):
        named = {i: s / total for i, s in named.items()}  # float rounding of a sum meant to be 1
        total = Fraction(1)
    if total < 1 and not has_rest:
        raise ValueError(f"proportions: every value of column {column!r} is named, so their shares must sum to 1 "
                         f"(they sum to {float(total):.6g})")
    quotas = [(i, s * n) for i, s in named.items()] + ([(None, (1 - total) * n)] if total < 1 else [])
    floors = {i: math.floor(q) for i, q in quotas}
    left = n - sum(floors.values())
    # Largest remainder, ties to the earlier entry: the counts sum to n exactly.
    order = sorted(range(len(quotas)), key=lambda k: (-(quotas[k][1] - floors[quotas[k][0]]), k))
    for k in order[:left]:
        floors[quotas[k][0]] += 1
    blocks = [ShareBlock((i,), floors[i]) for i in named if floors[i] > 0]
    if floors.get(None, 0) > 0:
        blocks.append(ShareBlock(rest_indices, floors[None]))
    return column, blocks
