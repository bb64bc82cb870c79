"""Exact, vectorised noise for dpsynth: discrete Gaussian, discrete Laplace and the
exponential mechanism, all drawn from a :class:`RandomSource` (a CSPRNG in production).

Nothing here touches private data; callers draw the noise *before* reading the data so
that the samplers' data-independent but noise-dependent running time reveals nothing
about the data (Jin et al., IEEE S&P 2022)."""

from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian
from dpsynth.noise.discrete_laplace import sample_discrete_laplace
from dpsynth.noise.exponential_mechanism import sample_exponential_mechanism
from dpsynth.noise.randomness import RandomSource, SecureRandomSource, SeededRandomSource

__all__ = [
    "RandomSource",
    "SecureRandomSource",
    "SeededRandomSource",
    "sample_discrete_gaussian",
    "sample_discrete_laplace",
    "sample_exponential_mechanism",
]
