"""AIM's workload and its candidate set (the downward closure, weighted by overlap)."""

from __future__ import annotations

import itertools
from typing import Iterable, Mapping, Sequence

__all__ = ["Clique", "all_k_way", "normalise_workload", "candidate_weights", "downward_closure", "favoured_workload"]

Clique = tuple[str, ...]


def all_k_way(attrs: Sequence[str], k: int) -> list[Clique]:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return list(itertools.combinations(attrs, min(k, len(attrs))))


def normalise_workload(workload: Iterable[Clique] | Mapping[Clique, float], attrs: Sequence[str],
                       ) -> dict[Clique, float]:
    """{clique (in the table's column order): weight}; unknown attributes and non-positive
    weights are errors naming the clique."""
    order = {a: i for i, a in enumerate(attrs)}
    items = workload.items() if isinstance(workload, Mapping) else ((c, 1.0) for c in workload)
    out: dict[Clique, float] = {}
    for clique, weight in items:
        clique = tuple(clique)
        if not clique:
            raise ValueError("workload: empty clique")
        unknown = [a for a in clique if a not in order]
        if unknown:
            raise ValueError(f"workload clique {clique}: unknown column(s) {unknown}")
        if len(set(clique)) != len(clique):
            raise ValueError(f"workload clique {clique}: repeated column")
        if not (float(weight) > 0):
            raise ValueError(f"workload clique {clique}: weight must be > 0, got {weight!r}")
        key = tuple(sorted(clique, key=order.__getitem__))
        out[key] = out.get(key, 0.0) + float(weight)
    if not out:
        raise ValueError("workload is empty")
    return out


def downward_closure(cliques: Iterable[Clique]) -> list[Clique]:
    seen: dict[Clique, None] = {}
    for c in cliques:
        for r in range(1, len(c) + 1):
            for sub in itertools.combinations(c, r):
                seen.setdefault(sub, None)
    return sorted(seen, key=lambda c: (len(c), c))


def candidate_weights(workload: Mapping[Clique, float]) -> dict[Clique, float]:
    """AIM's candidates: every subset of a workload clique, weighted by
    Σ_W w_W · |candidate ∩ W| (how much of the workload it informs)."""
    cands = downward_closure(workload)
    return {c: sum(w * len(set(c) & set(W)) for W, w in workload.items()) for c in cands}


def favoured_workload(workload: Mapping[Clique, float], favour: Sequence[str], factor: float,
                      ) -> dict[Clique, float]:
    """The workload with each clique's weight multiplied by factor**k, k the number of
    `favour` columns it holds (public parameters: names and a number, no data)."""
    favour = set(favour)
    return {c: w * factor ** len(favour & set(c)) for c, w in workload.items()}
