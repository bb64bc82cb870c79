"""What DP-CTGAN needs from the private table, and nothing more.

Two measurements, each charged through the gate before it computes:

* `noisy_category_counts`: one noisy histogram per categorical block, all
  released together with Gaussian noise of multiplier z per unit of L2
  sensitivity (one record moves one cell of each of k histograms under
  add/remove: Δ₂ = √k), charged as `GaussianEvent(z)` (ρ = 1/(2z²));
* `poisson_batches`: the DP-SGD access path.  It refuses to start without a
  receipt for exactly `PoissonSubsampledGaussianEvent(q, σ, T)` and yields
  exactly T Poisson samples (each record independently with probability q),
  each row with its own uniforms (its dropout masks and the column it is
  conditioned on) drawn with it, so that no per-row randomness depends on
  which other rows were sampled.

`DPSGDTableAccess` is the seam: `dpsynth.table.PrivateTable` implements it
(its DP-SGD path is `dpsynth.table.dpsgd`, which also holds the receipt check
and the Poisson iterator used here).  `FrameAccess` is a lighter
implementation over an in-process DataFrame kept for the DP-CTGAN tests; like
the private table it hands out no rows.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Iterator, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch

from accountant.events import GaussianEvent, PoissonSubsampledGaussianEvent

from dpsynth.table.dpsgd import AccessError, check_dpsgd_receipt, poisson_iterator

from .transformer import TableTransformer

__all__ = ["DPSGDTableAccess", "FrameAccess", "table_access", "AccessError", "check_dpsgd_receipt"]


@runtime_checkable
class DPSGDTableAccess(Protocol):
    schema: Any

    def noisy_category_counts(self, transformer: TableTransformer, noise_multiplier: float, *, gate: Any,
                              purpose: str, generator: str, run_id: str, noise_source: str,
                              parameters: dict | None = None, seed: int | None = None,
                              ) -> tuple[list[np.ndarray], Any]:
        ...

    def poisson_batches(self, transformer: TableTransformer, event: PoissonSubsampledGaussianEvent, *,
                        gate: Any, receipt: Any, uniform_width: int, device: torch.device,
                        seed: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ...


def table_access(table: Any) -> DPSGDTableAccess:
    """The DP-SGD access of a private table (the table itself when it implements the seam)."""
    if isinstance(table, DPSGDTableAccess):
        return table
    adapter = getattr(table, "dpsgd_access", None)
    if callable(adapter):
        return adapter()
    raise TypeError(
        f"{type(table).__name__} does not offer DP-SGD access (noisy_category_counts and poisson_batches)")


class FrameAccess:
    """Interim private-table access over a DataFrame (replaced by `PrivateTable`).

    Holds the rows, exposes no accessor for them; the gate's dataset fingerprint
    check is the private table's job and is not repeated here.
    """

    def __init__(self, frame: pd.DataFrame, schema: Any) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"expected a pandas DataFrame, got {type(frame).__name__}")
        if len(frame) == 0:
            raise ValueError("the table is empty")
        self._frame = frame.reset_index(drop=True)
        self.schema = schema
        self._encoded: tuple[int, np.ndarray] | None = None

    def __repr__(self) -> str:  # never show rows or their number
        return "FrameAccess(<private>)"

    def _features(self, transformer: TableTransformer) -> np.ndarray:
        key = id(transformer)
        if self._encoded is None or self._encoded[0] != key:
            self._encoded = (key, transformer.transform(self._frame))
        return self._encoded[1]

    def noisy_category_counts(self, transformer: TableTransformer, noise_multiplier: float, *, gate: Any,
                              purpose: str, generator: str, run_id: str, noise_source: str,
                              parameters: dict | None = None, seed: int | None = None,
                              ) -> tuple[list[np.ndarray], Any]:
        blocks = transformer.categorical_blocks
        if not blocks:
            raise ValueError("no categorical column to count")
        event = GaussianEvent(noise_multiplier)
        sigma = noise_multiplier * math.sqrt(len(blocks))  # Δ₂ = √k under add/remove
        if (seed is None) != (noise_source == "secure"):
            raise ValueError("a seed is allowed only with noise_source='seeded-test', and required with it")
        rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
        noise = [rng.normal(0.0, sigma, size=b.width) for b in blocks]  # drawn before the data is read
        receipt = gate.charge(event, purpose=purpose, generator=generator, run_id=run_id,
                              noise_source=noise_source, parameters=parameters or {})
        features = self._features(transformer)
        counts = [features[:, b.start:b.end].sum(axis=0, dtype=np.float64) + z for b, z in zip(blocks, noise)]
        return counts, receipt

    def poisson_batches(self, transformer: TableTransformer, event: PoissonSubsampledGaussianEvent, *,
                        gate: Any, receipt: Any, uniform_width: int, device: torch.device,
                        seed: int | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        check_dpsgd_receipt(gate, receipt, event)
        features = torch.as_tensor(self._features(transformer))
        return poisson_iterator(features, event, uniform_width, device, seed)
