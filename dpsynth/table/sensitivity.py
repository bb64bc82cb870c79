"""Each release checks its own sensitivity bound before it is released.

A mechanism's privacy rests on a sensitivity claim (one record moves one cell
of a count table by one; one record moves one teacher's vote; one record's
clipped gradient has norm at most C).  The claims are proved in proofs/; these
checks make the code refuse — after the charge, before anything leaves — an
exact answer whose structure breaks the claim, so a bug (or a layout that
counts something other than records) fails loudly instead of leaking.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SensitivityViolation", "check_counts_of_records", "check_one_hot_rows", "check_votes",
           "check_clipped_norms"]


class SensitivityViolation(RuntimeError):
    """An exact answer breaks the sensitivity its charge assumed; nothing is released."""


def check_counts_of_records(tables, n_records: int, what: str) -> None:
    """Count tables in which each record occupies exactly one cell: non-negative integers
    summing to the number of records (so one record moves one cell by one)."""
    for t in tables:
        a = np.asarray(t)
        if not np.issubdtype(a.dtype, np.integer) or (a.size and a.min() < 0) or int(a.sum()) != n_records:
            raise SensitivityViolation(f"{what}: a count table is not one cell per record; nothing is released")


def check_one_hot_rows(features: np.ndarray, blocks, what: str) -> None:
    """Each row holds exactly one 1 (and zeros) in every categorical block: one record moves
    one cell of each of the k histograms, Δ₂ = √k."""
    for b in blocks:
        part = np.asarray(features[:, b.start:b.end])
        if part.size and (not np.all((part == 0) | (part == 1)) or not np.all(part.sum(axis=1) == 1)):
            raise SensitivityViolation(f"{what}: column {b.facts.name!r} is not one-hot per record; nothing is "
                                       "released")


def check_votes(votes: np.ndarray, n_teachers: int) -> None:
    """Each query's vote histogram sums to the number of teachers (one vote each)."""
    v = np.asarray(votes)
    if v.size and (v.min() < 0 or not np.all(v.sum(axis=1) == n_teachers)):
        raise SensitivityViolation("PATE votes: a query's histogram is not one vote per teacher; nothing is released")


def check_clipped_norms(norms, bound: float) -> None:
    """Every record's clipped gradient has L2 norm at most C (float slack 1e-5 relative)."""
    worst = float(np.max(np.asarray(norms), initial=0.0))
    if not worst <= bound * (1 + 1e-5):
        raise SensitivityViolation(f"DP-SGD: a clipped per-record gradient has norm {worst:.6g} > C = {bound:g}; "
                                   "nothing is released")
