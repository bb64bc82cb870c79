"""Conditional vectors and training-by-sampling, from NOISY category counts only.

CTGAN samples a discrete column uniformly, then a category of it with
probability proportional to its log-frequency, and asks the generator for a row
with that category.  The frequencies are a statistic of the private table:
here they arrive already measured with noise and charged (by the private
table), and everything below is post-processing of those noisy counts (clip at
0, normalise, log-frequency).

CTGAN also draws the *real* rows conditionally on the sampled category.  That
is not a Poisson sample, and DP-SGD's analysis needs one.  So real rows come
from the Poisson sample, each is given the conditional vector of its own value
in a uniformly chosen column, and its loss term is weighted by
p_train(c) / p_freq(c) (both from the noisy counts, capped): the weighted real
loss then has the training-by-sampling distribution in expectation.  The
private table does that inside its DP-SGD step (`dpsynth.nn.conditioning`);
this class hands it the public weights (`real_conditioning`).  A weight only
scales a record's gradient *before* per-sample clipping, so the sensitivity
stays the clipping norm.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from dpsynth.nn.conditioning import RealConditioning
from dpsynth.nn.layout import CategoricalBlock

__all__ = ["ConditionalSampler", "probabilities_from_noisy_counts"]


def probabilities_from_noisy_counts(counts: np.ndarray, *, log_frequency: bool = False) -> np.ndarray:
    """Clip at 0, optionally take log(1 + count), normalise; uniform when nothing is left."""
    c = np.clip(np.asarray(counts, dtype=np.float64), 0.0, None)
    if log_frequency:
        c = np.log1p(c)
    total = c.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(c.shape, 1.0 / c.size)
    return c / total


class ConditionalSampler:
    """Conditional vectors over the categorical blocks of a layout."""

    def __init__(self, blocks: Sequence[CategoricalBlock], noisy_counts: Sequence[np.ndarray], *,
                 log_frequency: bool = True, max_weight: float = 10.0) -> None:
        self.blocks = tuple(blocks)
        if len(noisy_counts) != len(self.blocks):
            raise ValueError("need one vector of noisy counts per categorical block")
        for b, c in zip(self.blocks, noisy_counts):
            if np.asarray(c).shape != (b.width,):
                raise ValueError(f"column {b.facts.name!r}: expected {b.width} noisy counts, got {np.shape(c)}")
        self.noisy_counts = tuple(np.asarray(c, dtype=np.float64).copy() for c in noisy_counts)
        self.log_frequency = bool(log_frequency)
        self.max_weight = float(max_weight)
        self.p_freq = tuple(probabilities_from_noisy_counts(c) for c in self.noisy_counts)
        self.p_train = tuple(probabilities_from_noisy_counts(c, log_frequency=log_frequency)
                             for c in self.noisy_counts)
        self.offsets = tuple(int(x) for x in np.cumsum([0] + [b.width for b in self.blocks])[:-1])
        self.dim = int(sum(b.width for b in self.blocks))
        # Per cond slot: the feature index it copies, its column, and its importance weight.
        self._feature_index = np.concatenate(
            [np.arange(b.start, b.end) for b in self.blocks]).astype(np.int64) if self.blocks else np.zeros(0, np.int64)
        self._column_of_slot = np.concatenate(
            [np.full(b.width, i) for i, b in enumerate(self.blocks)]).astype(np.int64) if self.blocks else np.zeros(0, np.int64)
        weights = []
        for pf, pt in zip(self.p_freq, self.p_train):
            with np.errstate(divide="ignore", invalid="ignore"):
                w = np.where(pf > 0, pt / np.maximum(pf, 1e-300), self.max_weight)
            weights.append(np.clip(w, 0.0, self.max_weight))
        self._slot_weight = np.concatenate(weights) if weights else np.zeros(0)

    @property
    def n_columns(self) -> int:
        return len(self.blocks)

    # -- the generator's conditions (post-processing randomness) -------------------------
    def _draw(self, batch: int, probs: Sequence[np.ndarray], generator: torch.Generator,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cond = torch.zeros(batch, self.dim, device=device)
        if not self.blocks:
            empty = torch.zeros(batch, dtype=torch.long, device=device)
            return cond, empty, empty
        column = torch.randint(0, self.n_columns, (batch,), generator=generator, device=device)
        category = torch.zeros(batch, dtype=torch.long, device=device)
        # Draw one category per row for every column, then keep the chosen column's: the number
        # of draws is fixed by `batch`, never by what was chosen.
        for i, p in enumerate(probs):
            draws = torch.multinomial(torch.as_tensor(p, dtype=torch.float32, device=device), batch,
                                      replacement=True, generator=generator)
            category = torch.where(column == i, draws, category)
        offsets = torch.as_tensor(self.offsets, device=device)
        cond[torch.arange(batch, device=device), offsets[column] + category] = 1.0
        return cond, column, category

    def sample_training(self, batch: int, generator: torch.Generator, device: torch.device):
        """Training-by-sampling: (cond, column, category) with log-frequency (or frequency)."""
        return self._draw(batch, self.p_train, generator, device)

    def sample_original(self, batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """Conditions for unconditional sampling: the noisy category frequencies."""
        return self._draw(batch, self.p_freq, generator, device)[0]

    def fixed(self, batch: int, block_index: int, slot: int | torch.Tensor, device: torch.device) -> torch.Tensor:
        """Conditions on one column: `slot` is one category for every row, or one per row."""
        cond = torch.zeros(batch, self.dim, device=device)
        cond[torch.arange(batch, device=device), self.offsets[block_index] + slot] = 1.0
        return cond

    # -- the real rows' conditions: the private table computes them (dpsynth.nn.conditioning) --
    def real_conditioning(self) -> RealConditioning:
        """The public numbers the private table needs to condition the real rows."""
        return RealConditioning(tuple(int(i) for i in self._feature_index),
                                tuple(int(c) for c in self._column_of_slot),
                                tuple(float(w) for w in self._slot_weight))

    def condition_loss(self, raw: torch.Tensor, cond: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        """CTGAN's generator penalty: cross-entropy of the chosen column's block against the
        asked category (mean over the batch)."""
        if not self.blocks:
            return raw.new_zeros(())
        losses = raw.new_zeros(raw.shape[0])
        for i, b in enumerate(self.blocks):
            target = cond[:, self.offsets[i]:self.offsets[i] + b.width].argmax(dim=1)
            ce = F.cross_entropy(raw[:, b.start:b.end], target, reduction="none")
            losses = losses + ce * (column == i).to(raw.dtype)
        return losses.mean()

    def to_dict(self) -> dict:
        return {"noisy_counts": [c.tolist() for c in self.noisy_counts], "log_frequency": self.log_frequency,
                "max_weight": self.max_weight}
