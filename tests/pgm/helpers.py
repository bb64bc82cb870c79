"""Brute-force references for the pgm tests: everything over the full joint table."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from dpsynth.pgm import CliqueVector, Domain, Factor, GraphicalModel


def random_model(domain: Domain, cliques, seed: int, scale: float = 1.0, total: float = 1000.0) -> GraphicalModel:
    gen = torch.Generator().manual_seed(seed)
    factors = {
        tuple(cl): Factor(domain.project(cl), scale * torch.randn(domain.project(cl).shape, generator=gen, dtype=torch.float64))
        for cl in cliques
    }
    return GraphicalModel(domain, CliqueVector(factors), total, "cpu")


def joint_log_potential(model: GraphicalModel) -> np.ndarray:
    """log prod_C psi_C over the whole domain, axes in domain order (built by broadcasting)."""
    full = np.zeros(model.domain.shape)
    for cl, f in model.potentials.items():
        full = full + f.expand(model.domain).numpy()
    return full


def joint_probability(model: GraphicalModel) -> np.ndarray:
    logp = joint_log_potential(model)
    p = np.exp(logp - logp.max())
    return p / p.sum()


def brute_marginal(domain: Domain, joint: np.ndarray, attrs) -> np.ndarray:
    axes = tuple(i for i, a in enumerate(domain.attrs) if a not in attrs)
    table = joint.sum(axis=axes)
    kept = [a for a in domain.attrs if a in attrs]
    return np.transpose(table, [kept.index(a) for a in attrs])


def all_subsets(attrs, sizes=(1, 2, 3)):
    for k in sizes:
        yield from itertools.combinations(attrs, k)


def counts(rows: np.ndarray, domain: Domain, attrs) -> np.ndarray:
    idx = [domain.attrs.index(a) for a in attrs]
    shape = domain.project(attrs).shape
    flat = np.ravel_multi_index(tuple(rows[:, i] for i in idx), shape)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
