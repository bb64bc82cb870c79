"""MST's domain compression: categories whose noisy count is under 3σ share one code.

Post-processing of the noisy 1-way marginals (McKenna, Miklau, Sheldon 2021,
§3): a category that is rare in the noisy counts carries little signal and
many empty cells in every 2-way marginal it enters.  Merging the rare ones
shrinks the 2-way marginals MST measures.  The mapping is public (it is a
function of the noisy answers), so later measurements may count on the
compressed codes without any extra charge, and sampling maps a merged code
back to one of its categories uniformly at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["Compression", "compress_oneway"]


@dataclass(frozen=True)
class Compression:
    """Per attribute: `keep` (original codes kept, in order); the others share code len(keep)."""

    original_sizes: Mapping[str, int]
    keep: Mapping[str, np.ndarray]

    def size(self, attr: str) -> int:
        k = len(self.keep[attr])
        return k + (1 if k < self.original_sizes[attr] else 0)

    def recode(self, attr: str) -> np.ndarray:
        """original code -> compressed code (public mapping)."""
        n = self.original_sizes[attr]
        keep = self.keep[attr]
        mapping = np.full(n, len(keep), dtype=np.int64)
        mapping[keep] = np.arange(len(keep))
        return mapping

    def recodes(self, attrs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The recode arrays of the attributes that were actually compressed."""
        attrs = list(self.original_sizes) if attrs is None else attrs
        return {a: self.recode(a) for a in attrs if self.size(a) != self.original_sizes[a]}

    def rare(self, attr: str) -> np.ndarray:
        mask = np.ones(self.original_sizes[attr], dtype=bool)
        mask[self.keep[attr]] = False
        return np.flatnonzero(mask)

    def compress_value(self, attr: str, code: int) -> int:
        return int(self.recode(attr)[code])

    def expand(self, attr: str, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """compressed codes -> original codes; a merged code becomes a uniform rare category."""
        keep = self.keep[attr]
        codes = np.asarray(codes, dtype=np.int64)
        out = np.empty_like(codes)
        kept = codes < len(keep)
        out[kept] = keep[codes[kept]]
        rare = self.rare(attr)
        n_rare = int((~kept).sum())
        if n_rare:
            out[~kept] = rare[rng.integers(0, len(rare), n_rare)]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"original_sizes": dict(self.original_sizes),
                "keep": {a: [int(c) for c in k] for a, k in self.keep.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Compression":
        return cls(dict(data["original_sizes"]),
                   {a: np.asarray(k, dtype=np.int64) for a, k in data["keep"].items()})

    @classmethod
    def identity(cls, sizes: Mapping[str, int]) -> "Compression":
        return cls(dict(sizes), {a: np.arange(n, dtype=np.int64) for a, n in sizes.items()})


def compress_oneway(oneway: Mapping[str, np.ndarray], sigma: Mapping[str, float] | float,
                    threshold: float = 3.0) -> tuple[Compression, dict[str, np.ndarray]]:
    """The compression of MST and the 1-way answers re-expressed on it.

    A category is kept when its noisy count is at least `threshold`·σ.  When
    one or no category is rare nothing is merged.  The merged cell's answer is
    the sum of the merged noisy counts (its noise variance is m·σ²; the
    estimator weighs every cell of a measurement alike — see proofs/mst.md).
    """
    keep: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    answers: dict[str, np.ndarray] = {}
    for attr, y in oneway.items():
        y = np.asarray(y, dtype=np.float64)
        s = sigma[attr] if isinstance(sigma, Mapping) else sigma
        sizes[attr] = y.size
        sup = y >= threshold * s
        if (~sup).sum() <= 1:
            keep[attr] = np.arange(y.size, dtype=np.int64)
            answers[attr] = y
        else:
            keep[attr] = np.flatnonzero(sup).astype(np.int64)
            answers[attr] = np.append(y[sup], y[~sup].sum())
    return Compression(sizes, keep), answers
