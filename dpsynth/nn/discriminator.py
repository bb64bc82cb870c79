"""The vetted discriminator: the only network the private table runs DP-SGD on.

CTGAN's discriminator (Xu et al. 2019): a LeakyReLU(0.2) + dropout MLP with
pack size 1 — one row per input, so one record moves one input's gradient, which
is what per-sample clipping bounds (a pac of k rows would need a separate
proof).  No batch normalisation or any other layer that mixes rows.

Every random draw is explicit: dropout takes its uniforms as an argument, one
row of uniforms per input row, drawn by the private table with that row.
Nothing reads torch's global random state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["Discriminator", "DiscriminatorSpec"]


@dataclass(frozen=True)
class DiscriminatorSpec:
    """The public description the table builds a discriminator from (no code, only numbers)."""

    hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.5
    negative_slope: float = 0.2

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden)
        if not hidden or len(hidden) > 8 or any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 4096
                                                 for h in hidden):
            raise ValueError(f"hidden must be 1 to 8 layer widths in 1..4096, got {self.hidden!r}")
        for name in ("dropout", "negative_slope"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) < 1.0:
                raise ValueError(f"{name} must be a number in [0, 1), got {v!r}")
        object.__setattr__(self, "hidden", hidden)
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "negative_slope", float(self.negative_slope))

    def build(self, input_dim: int) -> "Discriminator":
        return Discriminator(input_dim, self.hidden, self.dropout, self.negative_slope)

    def to_dict(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "dropout": self.dropout, "negative_slope": self.negative_slope}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DiscriminatorSpec":
        return cls(tuple(data["hidden"]), data["dropout"], data["negative_slope"])


class Discriminator(nn.Module):
    """Features and conditional vector in, one logit out.  Dropout masks come from
    `uniforms` (shape: batch x sum(hidden)), one row of uniforms per input row."""

    def __init__(self, input_dim: int, hidden: Sequence[int], dropout: float = 0.5,
                 negative_slope: float = 0.2) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        layers, width = [], input_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            width = h
        self.hidden = nn.ModuleList(layers)
        self.out = nn.Linear(width, 1)
        self.dropout = float(dropout)
        self.negative_slope = float(negative_slope)
        self.uniform_width = int(sum(hidden))

    def forward(self, x: torch.Tensor, uniforms: torch.Tensor | None = None) -> torch.Tensor:
        h, offset = x, 0
        for layer in self.hidden:
            h = F.leaky_relu(layer(h), self.negative_slope)
            width = layer.out_features
            if self.training and self.dropout > 0:
                if uniforms is None:
                    raise ValueError("the discriminator needs dropout uniforms in training mode")
                keep = (uniforms[:, offset:offset + width] >= self.dropout).to(h.dtype)
                h = h * keep / (1.0 - self.dropout)
            offset += width
        return self.out(h).squeeze(-1)
