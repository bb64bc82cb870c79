"""MST (McKenna, Miklau, Sheldon 2021): the maximum-spanning-tree synthesizer.

ρ is split in thirds:

1. all 1-way marginals, measured together with the discrete Gaussian;
2. a spanning tree over the attributes, chosen edge by edge with the
   exponential mechanism, scoring each pair by the L1 distance between its
   true 2-way marginal and the one the 1-way estimate implies (a pair the
   independent model gets badly wrong is worth measuring);
3. the 2-way marginals of the tree's edges, measured together.

Between 1 and 2, categories whose noisy count is under 3σ are merged (domain
compression, post-processing).  A graphical model is fitted to the noisy
answers (`dpsynth.pgm.estimate`) and rows are sampled from it.  See
proofs/mst.md for the privacy statement.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np

from .base import MarginalGenerator
from .budget import em_epsilon_for_rho, sigma_for_rho
from .compression import Compression, compress_oneway
from .run import MeasurementRun

__all__ = ["MST"]


class _DisjointSet:
    def __init__(self, items):
        self.parent = {x: x for x in items}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b) -> None:
        self.parent[self.find(a)] = self.find(b)


class MST(MarginalGenerator):
    """MST with the run's ρ split in thirds (1-way, tree selection, 2-way).

    Args:
        epsilon: this run's share of the dataset's budget, at the policy's δ.
        compress: merge categories whose noisy 1-way count is under 3σ (as the paper).
        iters: estimation iterations of the final model.
        device: "auto" (GPU when present), "cpu", "cuda".
    """

    generator_name = "mst"

    def __init__(self, *, epsilon: float, compress: bool = True, iters: int = 1000,
                 device: str = "auto", progress: bool = False) -> None:
        super().__init__(epsilon=epsilon, device=device, progress=progress)
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            raise ValueError(f"iters must be an int >= 1, got {iters!r}")
        self.compress = bool(compress)
        self.iters = iters

    def config(self) -> dict[str, Any]:
        return {"epsilon": self.epsilon, "compress": self.compress, "iters": self.iters}

    def _fit(self, run: MeasurementRun) -> None:
        from dpsynth.pgm import Domain, Measurement, estimate

        t0 = time.perf_counter()
        sizes = dict(run.table.domain)
        attrs = list(sizes)
        d = len(attrs)
        third = run.rho / 3.0
        # 1. All 1-way marginals, ρ/3 in total.
        sigma1 = sigma_for_rho(third / d, run.l2)
        self._say(f"measuring {d} 1-way marginals")
        oneway = run.measure([(a,) for a in attrs], [sigma1] * d, purpose="MST: 1-way marginals")
        answers = {m.clique[0]: np.asarray(m.values, dtype=np.float64) for m in oneway}
        if self.compress:
            compression, answers = compress_oneway(answers, sigma1)
        else:
            compression = Compression.identity(sizes)
        self.compression = compression
        domain = Domain(attrs, [compression.size(a) for a in attrs])
        recode = compression.recodes()
        measurements = [Measurement((a,), answers[a], sigma1) for a in attrs]
        # 2. The tree, ρ/3 over d - 1 exponential-mechanism draws.
        edges: list[tuple[str, str]] = []
        if d > 1:
            self._say("estimating the independent model")
            independent = estimate(domain, measurements, iters=max(100, self.iters // 4), device=self.device)
            pairs = list(itertools.combinations(attrs, 2))
            estimates = {p: independent.project(p) for p in pairs}
            eps = em_epsilon_for_rho(third / (d - 1))
            components = _DisjointSet(attrs)
            for k in range(d - 1):
                self._say(f"selecting tree edge {k + 1} of {d - 1}")
                open_pairs = [p for p in pairs if components.find(p[0]) != components.find(p[1])]
                i = run.select(open_pairs, [estimates[p] for p in open_pairs], eps,
                               purpose="MST: spanning-tree edge (exponential mechanism)", recode=recode)
                a, b = open_pairs[i]
                components.union(a, b)
                edges.append((a, b))
            # 3. The tree's 2-way marginals, what is left of ρ.
            sigma2 = sigma_for_rho(run.rho_left / len(edges) * (1 - 1e-12), run.l2)
            self._say(f"measuring the tree's {len(edges)} 2-way marginals")
            twoway = run.measure(edges, [sigma2] * len(edges), purpose="MST: 2-way marginals of the tree",
                                 recode=recode)
            measurements += [Measurement(tuple(m.clique), np.asarray(m.values, dtype=np.float64), m.sigma)
                             for m in twoway]
        self.measurements = measurements
        self._say(f"estimating the model ({self.iters} iterations)")
        self.model = estimate(domain, measurements, iters=self.iters, device=self.device)
        self._say("done")
        self.fit_log.update({"edges": [list(e) for e in edges], "sigma_oneway": sigma1})
        self.fit_seconds = time.perf_counter() - t0
