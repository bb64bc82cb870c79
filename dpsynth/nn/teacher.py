"""PATE's vetted teachers: small MLPs that tell real rows from generated ones.

Each teacher is trained inside the private table on its own partition (labelled
real) against public generated rows (labelled fake), and only ever answers
votes, which the table noises before anything leaves (proofs/gnmax.md).  The
table builds teachers from this public description; no caller code trains them.

`TeacherEnsemble` holds k teachers as one batched network (weights stacked on a
leading teacher axis, `torch.baddbmm`): teacher i's output depends only on its own
weights and inputs, its loss only on its own outputs, and Adam is elementwise, so
training the stack is training k separate teachers — hundreds of them, fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["TeacherSpec", "Teacher", "TeacherEnsemble"]


@dataclass(frozen=True)
class TeacherSpec:
    hidden: tuple[int, ...] = (64,)
    learning_rate: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        hidden = tuple(self.hidden)
        if not hidden or len(hidden) > 4 or any(isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 1024
                                                 for h in hidden):
            raise ValueError(f"teacher hidden must be 1 to 4 layer widths in 1..1024, got {self.hidden!r}")
        for name in ("learning_rate", "weight_decay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 <= float(v) < 10):
                raise ValueError(f"teacher {name} must be a number in [0, 10), got {v!r}")
        if not float(self.learning_rate) > 0:
            raise ValueError("teacher learning_rate must be > 0")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 65536:
            raise ValueError(f"teacher batch_size must be an int in 1..65536, got {self.batch_size!r}")
        object.__setattr__(self, "hidden", hidden)

    def build(self, input_dim: int) -> "Teacher":
        return Teacher(input_dim, self.hidden)

    def ensemble(self, k: int, input_dim: int, generator: torch.Generator) -> "TeacherEnsemble":
        return TeacherEnsemble(k, input_dim, self.hidden, generator)

    def to_dict(self) -> dict[str, Any]:
        return {"hidden": list(self.hidden), "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                "weight_decay": self.weight_decay}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TeacherSpec":
        return cls(tuple(data["hidden"]), data["learning_rate"], data["batch_size"], data["weight_decay"])


class Teacher(nn.Module):
    """Features in, one logit out (positive: "real")."""

    def __init__(self, input_dim: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)


class TeacherEnsemble(nn.Module):
    """k teachers of one architecture, stacked: input (k, b, d) -> logits (k, b)."""

    def __init__(self, k: int, input_dim: int, hidden: tuple[int, ...], generator: torch.Generator) -> None:
        super().__init__()
        widths = [input_dim, *hidden, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            # nn.Linear's default initialisation, drawn from an explicit generator (public randomness).
            bound = 1.0 / fan_in ** 0.5
            w = (torch.rand(k, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            b = (torch.rand(k, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(b))
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b.unsqueeze(1), h, w)
            if i < last:
                h = torch.relu(h)
        return h.squeeze(-1)
