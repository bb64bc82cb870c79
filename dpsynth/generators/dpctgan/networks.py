"""CTGAN's generator (Xu et al. 2019, "Modeling Tabular Data using Conditional GAN").

The generator is CTGAN's residual MLP (each block: Linear -> BatchNorm -> ReLU,
its output concatenated to its input).  The discriminator lives with the
private table's vetted networks (`dpsynth.nn.discriminator`): the table runs
the DP-SGD step on it, and the generator's side uses the same class.

Every random draw is explicit: dropout takes its uniforms as an argument and
the Gumbel-softmax takes a `torch.Generator`.  Nothing reads torch's global
random state, so the randomness inside the private step (drawn per record by
the batch source) can never shift the post-processing stream; that is what
makes record-and-replay byte-identical.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from dpsynth.nn.discriminator import Discriminator
from dpsynth.nn.layout import CategoricalBlock, NumericBlock, TableTransformer

__all__ = ["Generator", "Discriminator", "activate", "gumbel_softmax"]


class _Residual(nn.Module):
    def __init__(self, width_in: int, width_out: int) -> None:
        super().__init__()
        self.fc = nn.Linear(width_in, width_out)
        self.bn = nn.BatchNorm1d(width_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    """Noise z and conditional vector in, raw (pre-activation) features out."""

    def __init__(self, input_dim: int, hidden: Sequence[int], data_dim: int) -> None:
        super().__init__()
        blocks, width = [], input_dim
        for h in hidden:
            blocks.append(_Residual(width, h))
            width += h
        self.body = nn.Sequential(*blocks)
        self.out = nn.Linear(width, data_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


def gumbel_softmax(logits: torch.Tensor, tau: float, generator: torch.Generator) -> torch.Tensor:
    """Gumbel-softmax with an explicit generator (torch's own reads the global RNG)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    return F.softmax((logits + gumbel) / tau, dim=1)


def activate(raw: torch.Tensor, transformer: TableTransformer, generator: torch.Generator,
             tau: float = 0.2) -> torch.Tensor:
    """CTGAN's output activation: tanh for scaled values, Gumbel-softmax for one-hot blocks."""
    parts = []
    for b in transformer.blocks:
        if isinstance(b, CategoricalBlock):
            parts.append(gumbel_softmax(raw[:, b.start:b.end], tau, generator))
        else:
            assert isinstance(b, NumericBlock)
            parts.append(torch.tanh(raw[:, b.start:b.start + 1]))
            if b.missing_start is not None:
                parts.append(gumbel_softmax(raw[:, b.missing_start:b.missing_start + 2], tau, generator))
    return torch.cat(parts, dim=1)
