"""The real rows' conditional vectors inside DP-SGD (CTGAN's training-by-sampling, made private).

CTGAN draws the real rows conditionally on a sampled category; that is not a
Poisson sample, and DP-SGD's analysis needs one.  So real rows come from the
Poisson sample; each is given the conditional vector of its own value in a
uniformly chosen categorical column (the uniform drawn with the row), and its
loss term is weighted by p_train(c) / p_freq(c) — numbers computed from the
NOISY category counts by the caller, public.  A weight only scales a record's
gradient *before* per-sample clipping, so the sensitivity stays the clipping
norm whatever the weights are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

__all__ = ["RealConditioning"]

MAX_WEIGHT = 1e6


@dataclass(frozen=True)
class RealConditioning:
    """Per conditional slot: the feature index it copies, its column, and its public weight."""

    feature_index: tuple[int, ...]
    column_of_slot: tuple[int, ...]
    slot_weight: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(self.feature_index)
        if not (len(self.column_of_slot) == len(self.slot_weight) == n):
            raise ValueError("conditioning: feature_index, column_of_slot and slot_weight need one entry per slot")
        w = np.asarray(self.slot_weight, dtype=np.float64)
        if w.size and (not np.all(np.isfinite(w)) or w.min() < 0 or w.max() > MAX_WEIGHT):
            raise ValueError(f"conditioning: slot weights must be finite numbers in [0, {MAX_WEIGHT:g}]")

    @property
    def dim(self) -> int:
        return len(self.feature_index)

    @property
    def n_columns(self) -> int:
        return (max(self.column_of_slot) + 1) if self.column_of_slot else 0

    @classmethod
    def for_layout(cls, layout: Any, slot_weight: Sequence[float]) -> "RealConditioning":
        """The conditioning over every categorical block of `layout` (slots in block order)."""
        blocks = layout.categorical_blocks
        index = [i for b in blocks for i in range(b.start, b.end)]
        columns = [j for j, b in enumerate(blocks) for _ in range(b.width)]
        weights = [float(x) for x in np.asarray(slot_weight, dtype=np.float64).ravel()]
        if len(weights) != len(index):
            raise ValueError(f"conditioning: {len(index)} slot weights expected (one per category slot of the "
                             f"layout), got {len(weights)}")
        return cls(tuple(index), tuple(columns), tuple(weights))

    def condition(self, rows: torch.Tensor, uniform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, weight) for each real row: its own value in the column `uniform` picks."""
        batch = rows.shape[0]
        if not self.feature_index:
            return rows.new_zeros(batch, 0), rows.new_ones(batch)
        column = torch.clamp((uniform * self.n_columns).long(), max=self.n_columns - 1)
        index = torch.as_tensor(self.feature_index, device=rows.device)
        slot_column = torch.as_tensor(self.column_of_slot, device=rows.device)
        cond = rows[:, index] * (slot_column.unsqueeze(0) == column.unsqueeze(1)).to(rows.dtype)
        weight = cond @ torch.as_tensor(self.slot_weight, dtype=rows.dtype, device=rows.device)
        return cond, weight

    def to_dict(self) -> dict[str, Any]:
        return {"feature_index": list(self.feature_index), "column_of_slot": list(self.column_of_slot),
                "slot_weight": list(self.slot_weight)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RealConditioning":
        return cls(tuple(data["feature_index"]), tuple(data["column_of_slot"]), tuple(data["slot_weight"]))
