"""PATE-GAN's student: the only discriminator the generator ever learns from.

It sees nothing but generator samples, each labelled by the noisy teacher vote
the table released for it (the share of teachers voting "real", clipped to
[0, 1]: a soft label), so everything it learns is post-processing of released
votes.  A LeakyReLU MLP on the table's feature layout.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["Student"]


class Student(nn.Module):
    def __init__(self, input_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)
