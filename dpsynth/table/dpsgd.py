"""The DP-SGD access path of the private table (DP-CTGAN's `DPSGDTableAccess` seam).

* `noisy_category_counts`: one histogram per categorical block of the GAN's
  layout, all released together.  One record moves one cell of each of the k
  histograms: Δ₂ = √k under add/remove (√(2k) under replace-one).  The noise is
  the discrete Gaussian of scale σ = z·Δ₂ from the table's random source, drawn
  before the rows are read, and the charge is GaussianEvent(z): the discrete
  Gaussian on integer counts is at least as private as the continuous one at the
  same σ (Canonne, Kamath, Steinke 2020, Thm 4), so ρ <= 1/(2z²).
* `poisson_batches`: opens only for a verified receipt of exactly the
  `PoissonSubsampledGaussianEvent(q, σ, T)` plan and yields exactly T Poisson
  samples (each record independently with probability q), each row with its own
  uniforms, so no per-row randomness depends on which other rows were sampled.

The Poisson iterator and the receipt check live here and are shared with the
DataFrame-backed `FrameAccess` of dpsynth.generators.dpctgan.access.
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Iterator

import numpy as np

from accountant.events import GaussianEvent, NeighbouringRelation, PoissonSubsampledGaussianEvent

from .measurement import Measurement
from .params import positive

__all__ = ["DPSGDAccessMixin", "AccessError", "check_dpsgd_receipt", "poisson_iterator"]


class AccessError(RuntimeError):
    """The access path was asked for something it was not paid for."""


def check_dpsgd_receipt(gate: Any, receipt: Any, event: PoissonSubsampledGaussianEvent) -> None:
    """The access path opens only for a verified receipt of exactly this plan."""
    if receipt is None or getattr(receipt, "event", None) != event.to_json():
        raise AccessError("DP-SGD batches need the receipt of exactly this Poisson-subsampled Gaussian plan")
    gate.verify_receipt(receipt)


def poisson_iterator(features: Any, event: PoissonSubsampledGaussianEvent, uniform_width: int, device: Any,
                     seed: int | None) -> Iterator[tuple[Any, Any]]:
    """Exactly `event.steps` Poisson samples of the feature rows, each row with its own uniforms."""
    import torch

    # The sampling randomness lives on the CPU with the rows; only the batch moves to the device.
    g = torch.Generator(device=torch.device("cpu"))
    g.manual_seed(secrets.randbits(63) if seed is None else int(seed))
    n = features.shape[0]
    for _ in range(event.steps):
        mask = torch.rand(n, generator=g) < event.sampling_rate
        idx = mask.nonzero(as_tuple=True)[0]
        uniforms = torch.rand(len(idx), uniform_width, generator=g)
        yield features[idx].to(device), uniforms.to(device)


class DPSGDAccessMixin:
    """`PrivateTable`'s implementation of DP-CTGAN's `DPSGDTableAccess`."""

    def _same_gate(self, gate: Any) -> None:
        if gate is not None and gate is not self.gate:
            raise AccessError("this table charges its own gate; pass table.gate (or None)")

    def noisy_category_counts(self, transformer: Any, noise_multiplier: float, *, gate: Any, purpose: str,
                              generator: str, run_id: str, noise_source: str, parameters: dict | None = None,
                              seed: int | None = None) -> tuple[list[np.ndarray], Any]:
        """Noisy counts of every categorical block of `transformer` (floats), and the receipt.

        `noise_source` must match the table's random source; `seed` is ignored (the table's
        own source is the randomness: seeded for tests, a CSPRNG otherwise).
        """
        self._same_gate(gate)
        if noise_source != self.noise_source:
            raise ValueError(f"noise_source {noise_source!r} does not match the table's random source "
                             f"({self.noise_source!r})")
        z = positive(noise_multiplier, "noise_multiplier")
        blocks = transformer.categorical_blocks
        if not blocks:
            raise ValueError("no categorical column to count")
        k = len(blocks)
        unit = math.sqrt(2.0) if self.relation is NeighbouringRelation.REPLACE_ONE else 1.0
        delta_2 = unit * math.sqrt(k)
        sigma = z * delta_2
        spec = Measurement(kind="dpsgd_category_counts",
                           query={"columns": [b.facts.name for b in blocks], "widths": [b.width for b in blocks],
                                  "noise_multiplier": z},
                           events=(GaussianEvent(z, relation=self.relation),),
                           sensitivity=delta_2, norm="l2")
        from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

        source = self._source
        widths = [b.width for b in blocks]

        def draw() -> np.ndarray:
            return np.asarray(sample_discrete_gaussian(sigma, sum(widths), source), dtype=np.int64)

        def exact(rows: Any) -> np.ndarray:
            features = transformer.transform(rows.frame)
            return np.concatenate([features[:, b.start:b.end].sum(axis=0, dtype=np.float64) for b in blocks]
                                  ).round().astype(np.int64)

        def release(counts: np.ndarray, noise: np.ndarray) -> list[np.ndarray]:
            noisy = (counts + noise).astype(np.float64)
            return list(np.split(noisy, np.cumsum(widths)[:-1]))

        counts = self._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                               noise=draw, exact=exact, release=release)
        return counts, self._receipts[-1]

    def poisson_batches(self, transformer: Any, event: PoissonSubsampledGaussianEvent, *, gate: Any,
                        receipt: Any, uniform_width: int, device: Any,
                        seed: int | None) -> Iterator[tuple[Any, Any]]:
        """The DP-SGD batches of a plan already charged (its receipt verified here)."""
        import torch

        self._same_gate(gate)
        check_dpsgd_receipt(self.gate, receipt, event)
        if self.relation is not NeighbouringRelation.ADD_OR_REMOVE_ONE:
            raise AccessError("Poisson-subsampled DP-SGD is analysed under add/remove-one only")
        features = torch.as_tensor(self._read(receipt, lambda rows: transformer.transform(rows.frame)))
        return poisson_iterator(features, event, uniform_width, device, seed)
