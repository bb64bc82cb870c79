"""PATE-GAN's labeller: the label column, learned from the label teachers' released votes only.

With a label column, the run ends with label queries: rows of the trained
generator (public), each answered by the label teachers' noisy vote histogram
(`PateSession.label_votes`).  The labeller — a linear softmax classifier of the
label column from the other columns' features — is fitted to those noisy vote
shares (clipped at zero, normalised; uniform when nothing is left), so it is
post-processing of released votes and public rows.  At sampling time each row's
label is drawn from the labeller's probabilities for that row: the label column
carries the teachers' (noisy) knowledge of P(label | features), which the
discriminator votes alone convey too weakly (benchmarks/results/pategan_adult.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Labeller", "vote_shares"]


def vote_shares(votes: np.ndarray) -> np.ndarray:
    """Noisy vote histograms (m, c) -> soft labels: clipped at 0, rows normalised (uniform when a
    row has nothing left)."""
    v = np.clip(np.asarray(votes, dtype=np.float64), 0.0, None)
    total = v.sum(axis=1, keepdims=True)
    uniform = np.full_like(v, 1.0 / v.shape[1])
    return np.where(total > 0, v / np.where(total > 0, total, 1.0), uniform)


class Labeller(nn.Module):
    """Features (label block zeroed) -> logits over the label block's slots."""

    def __init__(self, input_dim: int, block: tuple[int, int]) -> None:
        super().__init__()
        self.block = (int(block[0]), int(block[1]))
        self.linear = nn.Linear(input_dim, self.block[1] - self.block[0])

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.block
        x = x.clone()
        x[:, a:b] = 0.0
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.inputs(x))

    def fit(self, x: torch.Tensor, soft: torch.Tensor, *, steps: int = 500, lr: float = 0.05,
            l2: float = 1e-3) -> None:
        """Full-batch Adam on the soft cross-entropy, with an L2 penalty (a few hundred labels)."""
        opt = torch.optim.Adam(self.parameters(), lr=lr)
        for _ in range(steps):
            logp = torch.log_softmax(self(x), dim=1)
            loss = -(soft * logp).sum(dim=1).mean() + l2 * (self.linear.weight ** 2).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def calibrate(self, x: torch.Tensor, frequencies: np.ndarray, *, rounds: int = 100) -> None:
        """Shift the biases so that the labeller's mean probabilities over the public rows `x` match
        `frequencies` (the target's released noisy category frequencies): the generator's rows are
        not the data's, so the votes' shares alone give the target's overall rate a tilt; the noisy
        counts are the better estimate of it.  Post-processing of released values."""
        target = torch.as_tensor(np.asarray(frequencies, dtype=np.float64), dtype=torch.float32)
        if target.shape != (self.block[1] - self.block[0],) or not torch.isfinite(target).all() or target.sum() <= 0:
            return
        target = target.clamp(min=1e-6)
        target = target / target.sum()
        with torch.no_grad():
            logits = self(x)
            shift = torch.zeros_like(target)
            for _ in range(rounds):
                mean = torch.softmax(logits + shift, dim=1).mean(dim=0).clamp(min=1e-12)
                shift += torch.log(target / mean)
            self.linear.bias += shift

    def relabel(self, features: np.ndarray, rng: torch.Generator) -> np.ndarray:
        """The features with each row's label block replaced by a one-hot draw from the labeller."""
        a, b = self.block
        if len(features) == 0:
            return features
        with torch.no_grad():
            x = torch.as_tensor(features, dtype=torch.float32)
            probs = torch.softmax(self(x), dim=1)
            pick = torch.multinomial(probs, 1, generator=rng).squeeze(1)
        out = np.array(features, copy=True)
        out[:, a:b] = 0.0
        out[np.arange(len(out)), a + pick.numpy()] = 1.0
        return out
