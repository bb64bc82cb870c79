"""PATE's label teachers: k linear softmax classifiers that predict one column from the others.

This is PATE as Papernot et al. (2017, 2018) built it — teachers that label —
beside PATE-GAN's discriminator teachers: teacher i is trained, inside the
private table, on partition i alone (the same keyed partition as its
discriminator), to predict the label column's category from the other columns'
features; it answers a label query (a public generated row) with one vote for a
category, and only the noisy vote histogram leaves (proofs/pategan.md).

Linear, zero-initialised and trained full-batch for a fixed number of steps: no
randomness at all, so teacher i's weights are a function of partition i (and
the public spec) alone — the premise of the one-record-one-teacher argument.
With ~100 records a teacher, a linear model is what the data supports; the
ensemble's vote is bagging, and the noise is what limits the labels anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["LabelTeacherSpec", "LabelTeacherEnsemble"]


@dataclass(frozen=True)
class LabelTeacherSpec:
    steps: int = 200
    learning_rate: float = 0.05
    l2: float = 1e-3

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 100_000:
            raise ValueError(f"label teacher steps must be an int in 1..100000, got {self.steps!r}")
        for name, low, high in (("learning_rate", 0.0, 10.0), ("l2", 0.0, 10.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and low <= v < high):
                raise ValueError(f"label teacher {name} must be a number in [{low:g}, {high:g}), got {v!r}")
        if not self.learning_rate > 0:
            raise ValueError("label teacher learning_rate must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "learning_rate": float(self.learning_rate), "l2": float(self.l2)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LabelTeacherSpec":
        return cls(int(data["steps"]), float(data["learning_rate"]), float(data["l2"]))


class LabelTeacherEnsemble(nn.Module):
    """k linear classifiers, stacked: input (k, b, d) -> logits (k, b, c).  Zero-initialised."""

    def __init__(self, k: int, input_dim: int, classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(k, input_dim, classes))
        self.bias = nn.Parameter(torch.zeros(k, 1, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)

    def fit(self, x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, spec: LabelTeacherSpec) -> None:
        """Full-batch Adam on each teacher's own rows: x (k, n, d), y (k, n) class indices,
        mask (k, n) 1 for a real row, 0 for padding.  Teacher i's loss reads only its rows, and
        Adam is elementwise, so this is k separate fits."""
        from torch.nn import functional as F

        opt = torch.optim.Adam(self.parameters(), lr=float(spec.learning_rate))
        counts = mask.sum(dim=1).clamp(min=1.0)
        for _ in range(spec.steps):
            logits = self(x)
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="none")
            per_teacher = (ce.reshape(mask.shape) * mask).sum(dim=1) / counts
            loss = per_teacher.sum() + float(spec.l2) * (self.weight ** 2).sum(dim=(1, 2)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
