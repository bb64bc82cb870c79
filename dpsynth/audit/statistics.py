"""What an audit reads off one fit: the score a distinguishing test thresholds.

Black-box (any generator), post-processing of the released model, so a bound computed
from them bounds the whole fit:

* `target_count` — how many of the fit's synthetic rows equal the target record (its
  presence);
* `value_count` — how many synthetic cells hold one of the target's values in its column
  (the counts of its values: in the worst-case pair no other record has them, so a
  generator whose domain was read from the data produces none of them in OUT).

White-box (marginal generators): `marginal_lrt` — the likelihood-ratio statistic of the
fit's noisy marginal measurements, which the model keeps (every committed noisy output,
in order, `MarginalGenerator.releases`).  The auditor knows both tables, so it computes
each measured marginal exactly on D′ and on D; for a Gaussian measurement y = x + N(0, σ²)
the log-likelihood ratio of IN against OUT is, up to a constant,
⟨y − x_OUT, x_IN − x_OUT⟩ / σ², summed over every measured marginal.  With a fixed set of
measurements it is N(0, μ²) in OUT and N(μ², μ²) in IN with μ² = Σ |x_IN − x_OUT|²/σ² —
exactly the trade-off the GDP bound assumes.  (MST's and AIM's choice of *which* marginals
to measure is data-dependent; the statistic stays a valid score, only no longer the
optimal one.)  The statistic reads nothing of the private table: it is computed from the
released outputs and the two made-up tables.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd

__all__ = ["target_count", "value_count", "marginal_lrt", "has_marginal_releases"]


def target_count(synthetic: pd.DataFrame, target: Mapping[str, Any]) -> int:
    """How many rows of `synthetic` equal `target` in every one of its columns."""
    hit = np.ones(len(synthetic), dtype=bool)
    for column, value in target.items():
        if column not in synthetic.columns:
            raise ValueError(f"the synthetic rows have no column {column!r}")
        hit &= synthetic[column].to_numpy() == value
    return int(hit.sum())


def value_count(synthetic: pd.DataFrame, target: Mapping[str, Any]) -> int:
    """How many cells of `synthetic` equal the target's value in their column."""
    total = 0
    for column, value in target.items():
        if column not in synthetic.columns:
            raise ValueError(f"the synthetic rows have no column {column!r}")
        total += int((synthetic[column].to_numpy() == value).sum())
    return total


def has_marginal_releases(model: Any) -> bool:
    """Whether `model` kept noisy marginal measurements a white-box score can read."""
    return any(kind == "marginals" for _, kind, _ in getattr(model, "releases", ()))


def _cell_counts(codes: np.ndarray, columns: list[str], clique: tuple[str, ...], shape: tuple[int, ...],
                 model: Any) -> np.ndarray:
    """The exact marginal of `clique` over the encoded rows, on the measurement's (possibly
    compressed) domain: a column measured with fewer cells than its schema has was recoded by
    the model's public compression."""
    counts = np.zeros(shape, dtype=np.float64)
    idx = []
    for j, col in enumerate(clique):
        c = codes[:, columns.index(col)]
        recode = model.compression.recode(col) if getattr(model, "compression", None) is not None else None
        if recode is not None and shape[j] != len(recode):
            c = recode[c]
        idx.append(c)
    np.add.at(counts, tuple(idx), 1.0)
    return counts


def marginal_lrt(model: Any, schema: Any, out_frame: pd.DataFrame, in_frame: pd.DataFrame) -> float:
    """Σ over the model's noisy marginals of ⟨noisy − exact(D′), exact(D) − exact(D′)⟩ / σ²."""
    columns = list(schema.names)
    codes_out, codes_in = schema.encode(out_frame), schema.encode(in_frame)
    total = 0.0
    seen = False
    for _, kind, output in model.releases:
        if kind != "marginals":
            continue
        for m in output:
            values = np.asarray(m.values, dtype=np.float64)
            clique = tuple(m.clique)
            x_out = _cell_counts(codes_out, columns, clique, values.shape, model)
            x_in = _cell_counts(codes_in, columns, clique, values.shape, model)
            total += float(np.sum((values - x_out) * (x_in - x_out))) / float(m.sigma) ** 2
            seen = True
    if not seen:
        raise ValueError("the model kept no noisy marginal measurements: no white-box score for it")
    return total
