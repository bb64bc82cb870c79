"""Shared helpers for the marginal-fidelity benchmarks (MST, AIM, baselines), and a quick report.

Import from a sibling benchmark script (``from common_tvd import load_coded, tvd_summary``),
or run it to print the two reference points every synthetic table should be read
against, and the time of the 3-way computation:

- *resample*: n rows drawn with replacement from the real table (sampling noise only;
  ~0.024 mean 3-way TVD on adult_hd);
- *independent*: each column drawn from its own real 1-way distribution (all
  dependence lost; ~0.18 on adult_hd).

Run:  python benchmarks/common_tvd.py [adult_hd] [--synth path/to/synthetic.csv] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from dpsynth.evaluate.fidelity import Clique, all_k_way_cliques, mean_k_way_tvd  # noqa: E402

DATA = _REPO.parent / "shared" / "data"


def load_coded(name: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """An integer-coded table from ``../shared/data/<name>/`` and its domain."""
    folder = DATA / name
    if not folder.is_dir():
        raise FileNotFoundError(f"no data folder {folder}")
    domain_file = next(folder.glob("*-domain.json"))
    csvs = [p for p in folder.glob("*.csv")]
    if len(csvs) != 1:
        raise ValueError(f"{folder} holds {len(csvs)} CSV files; pick one with pandas directly")
    with open(domain_file) as f:
        domain = json.load(f)
    return pd.read_csv(csvs[0]), domain


def resample_baseline(real: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """``len(real)`` rows drawn uniformly with replacement from ``real``."""
    rng = np.random.default_rng(seed)
    return real.iloc[rng.integers(0, len(real), len(real))].reset_index(drop=True)


def independent_baseline(real: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each column sampled independently from its real 1-way distribution."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: rng.choice(real[c].to_numpy(), len(real)) for c in real.columns})


def workload(domain: Mapping[str, int], k: int = 3, max_cells: int | None = None) -> list[Clique]:
    """AIM's experiment workload: all k-way cliques, optionally those with at most ``max_cells`` cells."""
    cliques = all_k_way_cliques(domain, k)
    if max_cells is None:
        return cliques
    return [c for c in cliques if int(np.prod([domain[col] for col in c])) <= max_cells]


def tvd_summary(
    real: pd.DataFrame, synth: pd.DataFrame, domain: Mapping[str, int], ks: Sequence[int] = (1, 2, 3)
) -> dict[str, float]:
    """``{"tvd_1way": ..., "tvd_2way": ..., "tvd_3way": ...}`` — one row of a benchmark table."""
    return {f"tvd_{k}way": mean_k_way_tvd(real, synth, domain, k) for k in ks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", nargs="?", default="adult_hd")
    parser.add_argument("--synth", type=Path, help="a synthetic CSV in the same coding to score as well")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    real, domain = load_coded(args.dataset)
    tables = {"resample": resample_baseline(real, args.seed), "independent": independent_baseline(real, args.seed)}
    if args.synth is not None:
        tables[args.synth.name] = pd.read_csv(args.synth)
    print(f"{args.dataset}: {len(real):,} rows, {len(domain)} columns")
    print(f"{'table':<24}{'1-way':>10}{'2-way':>10}{'3-way':>10}")
    for name, synth in tables.items():
        row = tvd_summary(real, synth, domain)
        print(f"{name:<24}" + "".join(f"{v:>10.4f}" for v in row.values()))
    n3 = len(all_k_way_cliques(domain, 3))
    t0 = time.perf_counter()
    mean_k_way_tvd(real, tables["resample"], domain, 3)
    print(f"mean 3-way TVD over {n3} marginals: {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
