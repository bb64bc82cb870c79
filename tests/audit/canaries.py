"""Deliberately broken variants of dpsynth's generators that the audit must flag (research/
auditing.md §9).  Test code only: each is a subclass whose `fit` runs under a patch of this
process, or which reaches inside the private table — what the bug in the wild does.  The
library never contains them.

Each canary is a factory `(config, seed) -> generator` for `dpsynth.audit.audit(factory=)`.
PATE-GAN's canaries (a teacher or the generator's judge that sees every record, un-noised
votes) are patches in benchmarks/pategan_audit.py, audited with this library's bounds in
tests/generators/test_pategan_audit.py (each fit takes seconds there: too slow for here).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np

from dpsynth.audit.runner import make_generator
from dpsynth.generators import MST, Independent


@contextlib.contextmanager
def scaled_noise(factor: float) -> Iterator[None]:
    """The discrete Gaussian sampler draws at `factor` × the scale it is asked for (0: no noise),
    while the gate is charged for the scale asked (C5: a noise-scale formula error; C2 at 0)."""
    import dpsynth.noise.discrete_gaussian as dg

    honest = dg.sample_discrete_gaussian

    def sampler(scale, size, source):
        if factor == 0:
            return np.zeros(int(size), dtype=np.int64)
        return honest(scale * factor, size, source)

    dg.sample_discrete_gaussian = sampler
    try:
        yield
    finally:
        dg.sample_discrete_gaussian = honest


class _NoiseScaled:
    factor = 1.0

    def fit(self, table: Any, *args: Any, **kwargs: Any):
        with scaled_noise(self.factor):
            return super().fit(table, *args, **kwargs)


class NoiselessMST(_NoiseScaled, MST):
    """C2: MST's marginals released un-noised (the charge stays as planned)."""

    factor = 0.0


class HalfNoiseIndependent(_NoiseScaled, Independent):
    """C5: Independent's marginals with half the noise they are charged for."""

    factor = 0.5


class DomainFromDataMST(MST):
    """C1: each column's category list read from the private rows (smartnoise-synth's
    LabelTransformer, DataSynthesizer's metadata): a value no record has is never produced."""

    def fit(self, table: Any, *args: Any, **kwargs: Any):
        frame = table._PrivateTable__rows._frame  # the leak: raw rows, outside any charge
        self._observed = {c: sorted(set(frame[c].tolist())) for c in frame.columns}
        return super().fit(table, *args, **kwargs)

    def sample(self, n: int, *args: Any, **kwargs: Any):
        rows = super().sample(n, *args, **kwargs)
        for c, seen in self._observed.items():
            rows.loc[~rows[c].isin(seen), c] = seen[0]  # the learnt domain has no other value
        return rows


def noiseless_mst(config, seed):
    return make_generator(config, seed, NoiselessMST)


def half_noise_independent(config, seed):
    return make_generator(config, seed, HalfNoiseIndependent)


def domain_from_data_mst(config, seed):
    return make_generator(config, seed, DomainFromDataMST)

