"""Benchmark dpsynth.pgm: estimate() and sample() on adult_hd, MST-like structure.

Computes the 1-way marginals and the 2-way marginals of a maximum spanning
tree on mutual information (non-private: this is a speed benchmark, not a
release), adds Gaussian noise with MST's sigma at epsilon = 1, delta = 1e-9,
fits a model and samples 48,842 rows.

    python benchmarks/pgm.py [--iters 3000] [--tol 1e-6] [--device cpu] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import torch

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dpsynth.pgm import Domain, Measurement, estimate

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "adult_hd"


def load():
    sizes = json.loads((DATA / "adult-domain.json").read_text())
    header = (DATA / "adult.csv").read_text().splitlines()[0].split(",")
    codes = np.loadtxt(DATA / "adult.csv", delimiter=",", skiprows=1, dtype=np.int64)
    domain = Domain(header, [sizes[a] for a in header])
    return domain, codes


def counts(domain, codes, clique):
    idx = [domain.attrs.index(a) for a in clique]
    flat = np.ravel_multi_index(tuple(codes[:, i] for i in idx), domain.project(clique).shape)
    return np.bincount(flat, minlength=domain.size(clique)).reshape(domain.project(clique).shape).astype(float)


def mutual_information(joint):
    p = joint / joint.sum()
    outer = p.sum(1, keepdims=True) * p.sum(0, keepdims=True)
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / outer[nz])).sum())


def spanning_tree(domain, codes):
    weights = sorted(((mutual_information(counts(domain, codes, (a, b))), a, b)
                      for a, b in combinations(domain.attrs, 2)), reverse=True)
    group = {a: a for a in domain.attrs}

    def find(a):
        while group[a] != a:
            a = group[a]
        return a

    edges = []
    for _, a, b in weights:
        if find(a) != find(b):
            group[find(a)] = find(b)
            edges.append((a, b))
    return edges


def rho_from(epsilon, delta):
    # zCDP -> (eps, delta) by the classical bound eps = rho + 2 sqrt(rho log(1/delta)); solve for rho.
    lo, hi = 0.0, epsilon
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if mid + 2 * np.sqrt(mid * np.log(1 / delta)) < epsilon else (lo, mid)
    return lo


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=3000)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    domain, codes = load()
    edges = spanning_tree(domain, codes)
    rho = rho_from(args.epsilon, 1e-9)
    sigma1 = np.sqrt(len(domain) / (2 * rho / 3))
    sigma2 = np.sqrt(len(edges) / (2 * rho / 3))
    rng = np.random.default_rng(0)
    measurements = [Measurement((a,), counts(domain, codes, (a,)) + rng.normal(0, sigma1, domain[a]), sigma1)
                    for a in domain.attrs]
    measurements += [Measurement(e, counts(domain, codes, e) + rng.normal(0, sigma2, domain.project(e).shape), sigma2)
                     for e in edges]
    print(f"adult_hd: {codes.shape}, {len(edges)} tree edges, sigma1={sigma1:.1f} sigma2={sigma2:.1f}")
    t0 = time.perf_counter()
    model = estimate(domain, measurements, iters=args.iters, tol=args.tol, device=args.device)
    t1 = time.perf_counter()
    print(f"estimate: {t1 - t0:.2f} s, {model.fit_info}")
    rows = model.sample(len(codes), rng=rng)
    t2 = time.perf_counter()
    print(f"sample {len(codes)} rows: {t2 - t1:.3f} s")
    tvd = [0.5 * np.abs(counts(domain, rows, e) / len(rows) - counts(domain, codes, e) / len(codes)).sum() for e in edges]
    print(f"mean 2-way TVD on tree edges (synthetic vs real): {np.mean(tvd):.4f}")
    t3 = time.perf_counter()
    for a, b, c in list(combinations(domain.attrs, 3))[:100]:
        model.project((a, b, c))
    print(f"100 3-way model marginals: {time.perf_counter() - t3:.3f} s")


if __name__ == "__main__":
    main()
