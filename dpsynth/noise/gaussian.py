"""Continuous Gaussian noise from a `RandomSource`, for DP-SGD's noisy gradient sums.

Gradients are floats, so DP-SGD adds floating-point Gaussian noise; the samples
come from the table's `RandomSource` (a CSPRNG in production, never torch's
Mersenne Twister).  Each sample is the Box–Muller transform of two 53-bit
uniforms in (0, 1], and — as Opacus' secure mode does, after Holohan & Braghin
2021 ("Secure random sampling in differential privacy") — the returned noise is
the sum of four independent N(0, σ²) draws divided by two: N(0, σ²) again, with
the low-order regularities of one floating-point transform smoothed out.
The floating-point caveats of continuous noise (Mironov 2012; proofs/dpctgan.md)
apply as they do to every DP-SGD implementation.
"""

from __future__ import annotations

import numpy as np

from dpsynth.noise.randomness import RandomSource

__all__ = ["sample_gaussian", "uniform_open_closed"]

_TWO_POW_53 = float(2**53)
_DRAWS = 4


def uniform_open_closed(source: RandomSource, size: int) -> np.ndarray:
    """``size`` uniforms in (0, 1] with 53 random bits each."""
    return ((source.words(size) >> np.uint64(11)).astype(np.float64) + 1.0) / _TWO_POW_53


def _standard(source: RandomSource, size: int) -> np.ndarray:
    half = (size + 1) // 2
    u = uniform_open_closed(source, 2 * half)
    radius = np.sqrt(-2.0 * np.log(u[:half]))
    angle = (2.0 * np.pi) * u[half:]
    return np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:size]


def sample_gaussian(std: float, size: int, source: RandomSource) -> np.ndarray:
    """``size`` iid draws of N(0, std²), float64."""
    std = float(std)
    if not (np.isfinite(std) and std >= 0):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    size = int(size)
    if size < 0:
        raise ValueError("size must be >= 0")
    total = np.zeros(size)
    for _ in range(_DRAWS):
        total += _standard(source, size)
    return total * (std / np.sqrt(_DRAWS))
