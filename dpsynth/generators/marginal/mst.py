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
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from accountant.events import NeighbouringRelation

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
        required_edges: column pairs the tree must hold (public structural knowledge, chosen
            before any measurement): joined first, measured with the tree, never selected.
        forbidden_edges: column pairs the tree must never hold (excluded from the candidates;
            the result is a forest when they cut the columns apart).
        device: "auto" (GPU when present), "cpu", "cuda".
    """

    generator_name = "mst"

    def __init__(self, *, epsilon: float, compress: bool = True, iters: int = 1000,
                 required_edges: Iterable[Sequence[str]] = (), forbidden_edges: Iterable[Sequence[str]] = (),
                 device: str = "auto", progress: bool = False) -> None:
        super().__init__(epsilon=epsilon, device=device, progress=progress)
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
            raise ValueError(f"iters must be an int >= 1, got {iters!r}")
        self.compress = bool(compress)
        self.iters = iters
        self.required_edges = _edge_list(required_edges, "required_edges")
        self.forbidden_edges = _edge_list(forbidden_edges, "forbidden_edges")
        both = set(map(frozenset, self.required_edges)) & set(map(frozenset, self.forbidden_edges))
        if both:
            a, b = sorted(next(iter(both)))
            raise ValueError(f"edge ({a!r}, {b!r}) is both required and forbidden")

    def config(self) -> dict[str, Any]:
        config = {"epsilon": self.epsilon, "compress": self.compress, "iters": self.iters}
        # Only when set: a model sealed before these options existed keeps its config (and seal).
        if self.required_edges:
            config["required_edges"] = [list(e) for e in self.required_edges]
        if self.forbidden_edges:
            config["forbidden_edges"] = [list(e) for e in self.forbidden_edges]
        return config

    def _check_run(self, sizes: Mapping[str, int], rho: float, relation: NeighbouringRelation) -> None:
        self._structure(list(sizes))

    def _structure(self, attrs: list[str]) -> tuple[list[tuple[str, str]], list[tuple[str, str]], int]:
        """(required edges, candidate pairs, number of private edge draws), from public facts
        only: the column names and the declared edges.  Refuses an unknown column and required
        edges that close a cycle, before anything is measured."""
        order = {a: i for i, a in enumerate(attrs)}
        for name, edges in (("required_edges", self.required_edges), ("forbidden_edges", self.forbidden_edges)):
            for e in edges:
                unknown = [c for c in e if c not in order]
                if unknown:
                    raise ValueError(f"{name}: unknown column {unknown[0]!r} in edge {tuple(e)}")
        canon = lambda e: tuple(sorted(e, key=order.__getitem__))  # noqa: E731
        required = [canon(e) for e in self.required_edges]
        forbidden = {canon(e) for e in self.forbidden_edges}
        components = _DisjointSet(attrs)
        for a, b in required:
            if components.find(a) == components.find(b):
                raise ValueError(f"required_edges: edge ({a!r}, {b!r}) closes a cycle (a tree holds no cycle)")
            components.union(a, b)
        pairs = [p for p in itertools.combinations(attrs, 2) if p not in forbidden and p not in set(required)]
        # How many edges the private selection adds: one per merge of two components that an
        # allowed pair can join (public: depends on names and declared edges only).
        reach = _DisjointSet(attrs)
        for a, b in required + pairs:
            reach.union(a, b)
        draws = len({reach.find(a) for a in attrs})
        draws = len({components.find(a) for a in attrs}) - draws
        return required, pairs, draws

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
        # 2. The tree, ρ/3 over the private draws (d - 1 less the required edges, and less the
        #    joins the forbidden edges make impossible).  Required edges join first, unselected.
        required, pairs, draws = self._structure(attrs)
        edges: list[tuple[str, str]] = list(required)
        components = _DisjointSet(attrs)
        for a, b in required:
            components.union(a, b)
        if draws > 0:
            self._say("estimating the independent model")
            independent = estimate(domain, measurements, iters=max(100, self.iters // 4), device=self.device)
            estimates = {p: independent.project(p) for p in pairs}
            eps = em_epsilon_for_rho(third / draws)
            for k in range(draws):
                self._say(f"selecting tree edge {k + 1} of {draws}")
                open_pairs = [p for p in pairs if components.find(p[0]) != components.find(p[1])]
                i = run.select(open_pairs, [estimates[p] for p in open_pairs], eps,
                               purpose="MST: spanning-tree edge (exponential mechanism)", recode=recode)
                a, b = open_pairs[i]
                components.union(a, b)
                edges.append((a, b))
        if edges:
            # 3. The tree's 2-way marginals (required and selected), what is left of ρ.
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


def _edge_list(edges: Iterable[Sequence[str]], name: str) -> list[tuple[str, str]]:
    """Declared edges as a list of distinct (a, b) pairs of column names (order kept)."""
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Iterable):
        raise TypeError(f"{name} must be a list of [column, column] pairs")
    out: list[tuple[str, str]] = []
    for e in edges:
        if isinstance(e, (str, bytes)) or not isinstance(e, Sequence) or len(e) != 2 or \
                not all(isinstance(c, str) for c in e):
            raise ValueError(f"{name}: each edge is a pair of column names, got {e!r}")
        if e[0] == e[1]:
            raise ValueError(f"{name}: edge ({e[0]!r}, {e[1]!r}) joins a column to itself")
        if frozenset(e) not in {frozenset(x) for x in out}:
            out.append((e[0], e[1]))
    return out
