"""Toy generators for the record-and-replay tests: one correct, the rest deliberately buggy.

Each buggy one reproduces a bug class seen in the wild (research/auditing.md §9):
C1 domain read from the data, C2 un-noised frequencies used, C3 a wrong declared
sensitivity, C4 an uncharged measurement.  They reach the rows the only way a bug can —
around the table's API, through its private attributes — exactly what must be caught.
"""

from __future__ import annotations

import numpy as np

from dpsynth.table.measurement import Measurement
from accountant.events import DiscreteGaussianEvent

SIGMA = 2.0


def _peek_frame(table):
    """A bug: read the raw rows around the gate (name-mangled private attribute)."""
    return table._PrivateTable__rows._frame


class ToyIndependent:
    """Correct: noisy one-way marginals, sampling from their clipped, normalised values."""

    def __init__(self, epsilon: float = 1.0, sigma: float = SIGMA) -> None:
        self.epsilon = epsilon
        self.sigma = sigma

    def _measure(self, table):
        names = table.schema.names
        return table.measure_marginals([(n,) for n in names], self.sigma, purpose="toy one-way marginals",
                                       generator="toy", run_id="toy-run")

    def fit(self, table):
        self.schema = table.schema
        self.probs = []
        for m in self._measure(table):
            p = np.clip(m.values.astype(np.float64), 0, None) + 1e-3
            self.probs.append(p / p.sum())
        return self

    def sample(self, n: int, seed: int | None = None):
        rng = np.random.default_rng(seed)
        codes = np.column_stack([rng.choice(len(p), size=n, p=p) for p in self.probs])
        return self.schema.decode(codes, rng)


class DomainFromData(ToyIndependent):
    """C1: the category list of the first column is read from the private table (as
    smartnoise-synth's LabelTransformer does) and sampled uniformly."""

    def fit(self, table):
        super().fit(table)
        codes = table.schema.encode(_peek_frame(table))
        seen = np.zeros_like(self.probs[0])
        seen[np.unique(codes[:, 0])] = 1.0
        self.probs[0] = seen / seen.sum()
        return self


class BoundsFromData(ToyIndependent):
    """C1 for numbers: the released values of a numeric column are rescaled to the
    private table's min and max (synthcity / PATE-GAN style min-max scaling)."""

    def __init__(self, column: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.column = column

    def fit(self, table):
        super().fit(table)
        x = _peek_frame(table)[self.column].astype(float)
        self.bounds = (float(x.min()), float(x.max()))
        return self

    def sample(self, n: int, seed: int | None = None):
        out = super().sample(n, seed)
        col = self.schema.column(self.column)
        lo, hi = self.bounds
        out[self.column] = lo + (out[self.column].astype(float) - col.lower) / (col.upper - col.lower) * (hi - lo)
        return out


class UnnoisedFrequencies(ToyIndependent):
    """C2: measures (and pays for) noisy marginals, then samples from the exact frequencies."""

    def fit(self, table):
        super().fit(table)
        codes = table.schema.encode(_peek_frame(table))
        self.probs = [np.bincount(codes[:, j], minlength=len(p)) / len(codes) for j, p in enumerate(self.probs)]
        return self


class WrongSensitivity(ToyIndependent):
    """C3: a home-made "sum of codes" measurement declared with sensitivity 1."""

    def fit(self, table):
        super().fit(table)
        spec = Measurement(kind="sum", query={"column": table.schema.names[0]},
                           events=(DiscreteGaussianEvent(self.sigma, 1.0, relation=table.relation),),
                           sensitivity=1.0, norm="l2")
        from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian

        total = table._measure(spec, purpose="toy sum", generator="toy", run_id="toy-run", parameters=None,
                               noise=lambda: int(sample_discrete_gaussian(self.sigma, 1, table._source)[0]),
                               exact=lambda rows: np.array([rows.codes[:, 0].sum()]),
                               release=lambda a, z: int(a[0]) + z)
        self.shift = total  # released, and used below only through the noisy value
        return self


class UnchargedRead(ToyIndependent):
    """C4: computes a statistic from the rows without any charge (through the guarded codes)."""

    def fit(self, table):
        super().fit(table)
        codes = table._PrivateTable__rows.codes  # outside a measurement: must raise
        self.probs[0] = np.bincount(codes[:, 0], minlength=len(self.probs[0])) / len(codes)
        return self


class ReusedReceipt(ToyIndependent):
    """C4/C6: opens the rows with the receipt of an earlier measurement and adds its own noise."""

    def fit(self, table):
        super().fit(table)
        receipt = table.charges[-1]
        with table._open_rows(receipt) as rows:  # an internal seam: no public method takes a receipt
            codes = rows.codes.copy()
        rng = np.random.default_rng(0)
        counts = np.bincount(codes[:, 0], minlength=len(self.probs[0])) + rng.normal(0, self.sigma, len(self.probs[0]))
        p = np.clip(counts, 0, None) + 1e-3
        self.probs[0] = p / p.sum()
        return self


class DataDependentFlow(ToyIndependent):
    """C10: decides whether to measure a second time from the noisy... no: from the exact count."""

    def fit(self, table):
        super().fit(table)
        if len(_peek_frame(table)) % 2 == 0:
            self._measure(table)
        return self
