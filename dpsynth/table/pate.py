"""The PATE seam: disjoint teacher partitions by a keyed hash, votes through the gate.

Design (for the PATE-GAN issue to implement against):

* Partition.  Record r goes to teacher HMAC-SHA256(key, canonical(r) ‖ j) mod k,
  where j counts the earlier identical copies of r (0 for the first).  The
  assignment of a record depends only on the record, the secret key and how many
  identical records precede it, never on the other records:

  - adding or removing one record changes the training set of exactly one
    teacher (identical copies are interchangeable, so removing any copy of r
    leaves the same multiset as removing the last one);
  - replacing one record changes at most two teachers (the old one's and the new
    one's) — GNMax under replace-one must use that sensitivity;
  - "shuffle, then cut into k slices" would move every record when one is
    added; re-drawing partitions between iterations hands every record to
    every teacher (synthcity #275).  Neither is possible here.

  The key is a secret of the data holder (like the dataset key); a public key
  would let an adversary who knows a record tell which teacher saw it — not a
  DP leak (teachers are never released) but a needless one.

* Teachers train on their partition inside `train_teachers` and stay inside the
  returned `TeacherEnsemble`: they are functions of private rows and nothing of
  them is released except noisy vote counts.  Training is not charged.
* Votes.  `TeacherEnsemble.noisy_votes(x, noise_multiplier, ...)` charges
  GNMaxEvent(σ, queries) first (ρ = queries/σ², Papernot et al. 2018, Prop. 8,
  whose Δ₂ = √2 covers one teacher changing its vote), then releases the vote
  histograms plus discrete Gaussian noise of scale σ.  Under replace-one two
  teachers may change, Δ₂ = 2, and the noise scale is multiplied by √2 to keep
  the charge valid.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from accountant.events import GNMaxEvent, NeighbouringRelation

from .measurement import Measurement
from .params import positive

__all__ = ["keyed_partition", "PateMixin", "TeacherEnsemble"]

_MIN_KEY_BYTES = 16


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (bool, int, float, str)):
        return [type(value).__name__, value]
    return [type(value).__name__, str(value)]


def keyed_partition(frame: pd.DataFrame, n_parts: int, key: bytes) -> np.ndarray:
    """Teacher index in [0, n_parts) for each row (see the module docstring)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the partition key must be at least {_MIN_KEY_BYTES} secret bytes")
    if not isinstance(n_parts, int) or n_parts < 1:
        raise ValueError("n_parts must be a positive integer")
    seen: dict[bytes, int] = {}
    out = np.empty(len(frame), dtype=np.int64)
    for i, row in enumerate(frame.itertuples(index=False, name=None)):
        body = json.dumps([_cell(v) for v in row], separators=(",", ":")).encode()
        copy = seen.get(body, 0)
        seen[body] = copy + 1
        digest = hmac.new(bytes(key), body + b"#" + str(copy).encode(), hashlib.sha256).digest()
        out[i] = int.from_bytes(digest[:8], "big") % n_parts
    return out


class TeacherEnsemble:
    """Teachers trained on disjoint partitions; only noisy vote counts come out."""

    def __init__(self, table: Any, teachers: list[Any]) -> None:
        self.__teachers = teachers
        self._table = table

    def __repr__(self) -> str:
        return f"TeacherEnsemble(teachers={len(self.__teachers)}, <private>)"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("teachers are private; they cannot be pickled or copied")

    @property
    def n_teachers(self) -> int:
        return len(self.__teachers)

    def noisy_votes(self, queries: np.ndarray, n_classes: int, noise_multiplier: float, *, purpose: str,
                    generator: str, run_id: str, parameters: dict | None = None) -> np.ndarray:
        """Vote histograms (queries × n_classes) plus discrete Gaussian noise, charged as GNMax.

        Each teacher is called as `teacher(queries) -> int labels in [0, n_classes)`; the
        queries must be public (e.g. generated samples).
        """
        table = self._table
        sigma = positive(noise_multiplier, "noise_multiplier")
        if not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError("n_classes must be an integer >= 2")
        m = int(len(queries))
        if m < 1:
            raise ValueError("at least one query is needed")
        replace = table.relation is NeighbouringRelation.REPLACE_ONE
        # GNMax's ρ = 1/σ² per query assumes Δ₂ = √2; with Δ₂ = 2 the same ρ needs σ·√2.
        scale = sigma * (float(np.sqrt(2.0)) if replace else 1.0)
        spec = Measurement(kind="pate_votes", query={"queries": m, "classes": n_classes, "noise_multiplier": sigma},
                           events=(GNMaxEvent(sigma, m, relation=table.relation),),
                           sensitivity=2.0 if replace else float(np.sqrt(2.0)), norm="l2")
        from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

        source = table._source
        teachers = self.__teachers

        def draw() -> np.ndarray:
            return np.asarray(sample_discrete_gaussian(scale, m * n_classes, source), dtype=np.int64).reshape(
                m, n_classes)

        def exact(_: Any) -> np.ndarray:
            votes = np.zeros((m, n_classes), dtype=np.int64)
            for t in teachers:
                labels = np.asarray(t(queries), dtype=np.int64)
                if labels.shape != (m,) or labels.min() < 0 or labels.max() >= n_classes:
                    raise ValueError("a teacher must return one label in [0, n_classes) per query")
                votes[np.arange(m), labels] += 1
            return votes

        return table._measure(spec, purpose=purpose, generator=generator, run_id=run_id, parameters=parameters,
                              noise=draw, exact=exact, release=lambda v, z: v + z)


class PateMixin:
    """`PrivateTable`'s PATE seam."""

    def train_teachers(self, n_teachers: int, train: Callable[[pd.DataFrame], Any], *, key: bytes,
                       receipt: Any) -> TeacherEnsemble:
        """Train one teacher per keyed-hash partition; the teachers stay private.

        `train(partition_frame) -> teacher` runs inside the table; `receipt` is the receipt
        of the run's charge (the rows open only with one).  Nothing is released here.
        """
        if not isinstance(n_teachers, int) or n_teachers < 1:
            raise ValueError("n_teachers must be a positive integer")

        def fit(rows: Any) -> list[Any]:
            frame = rows.frame
            parts = keyed_partition(frame, n_teachers, key)
            return [train(frame.iloc[np.flatnonzero(parts == i)].reset_index(drop=True)) for i in range(n_teachers)]

        return TeacherEnsemble(self, self._read(receipt, fit))
