"""Independent: noisy 1-way marginals only — the baseline every method must beat.

All 1-way marginals are measured together with the discrete Gaussian (the whole
run's ρ), and columns are sampled independently from the fitted 1-way model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import MarginalGenerator
from .budget import sigma_for_rho
from .compression import Compression
from .run import MeasurementRun

__all__ = ["Independent"]


class Independent(MarginalGenerator):
    generator_name = "independent"

    def __init__(self, *, epsilon: float, iters: int = 200, device: str = "auto", progress: bool = False) -> None:
        super().__init__(epsilon=epsilon, device=device, progress=progress)
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            raise ValueError(f"iters must be an int >= 1, got {iters!r}")
        self.iters = iters

    def config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "iters": self.iters}

    def _fit(self, run: MeasurementRun) -> None:
        from dpsynth.pgm import Domain, Measurement, estimate

        sizes = dict(run.table.domain)
        attrs = list(sizes)
        self.compression = Compression.identity(sizes)
        sigma = sigma_for_rho(run.rho / len(attrs) * (1 - 1e-12), run.l2)
        answers = run.measure([(a,) for a in attrs], [sigma] * len(attrs), purpose="Independent: 1-way marginals")
        self.measurements = [Measurement(tuple(m.clique), np.asarray(m.values, dtype=np.float64), m.sigma)
                             for m in answers]
        self.model = estimate(Domain(attrs, [sizes[a] for a in attrs]), self.measurements, iters=self.iters,
                              device=self.device)
        self.fit_log["sigma"] = sigma
