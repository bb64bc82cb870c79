"""Exact exponential mechanism: P[i] ∝ exp(ε·score_i / (2Δ)), with no floating-point leak.

How the scores are made exact (and why that costs no privacy)
-------------------------------------------------------------
Each score is first mapped, in exact rational arithmetic, to the grid of width
g = Δ / m with m = :data:`GRID_STEPS` = 2**20 by rounding *down*:

    a_i = floor(score_i · m / Δ)            (an integer; score_i and Δ are read exactly)
    rounded_i = a_i · g                      (score_i - g < rounded_i <= score_i)

The mechanism then samples i with probability exactly ∝ exp(ε·rounded_i / (2Δ)) =
exp(ε·a_i / (2m)).  Because Δ is a whole number m of grid steps, flooring cannot raise
the sensitivity: if |score_i(D) - score_i(D')| <= Δ then |a_i(D) - a_i(D')| <= m
(floor(x) <= floor(x' + m) = floor(x') + m), i.e. the rounded scores have sensitivity
<= Δ too.  So this *is* the exponential mechanism with parameters (ε, Δ) applied to the
rounded utility: ε-DP, ε-bounded range, ε²/8-zCDP (Durfee & Rogers 2019; Cesar & Rogers
2021, Lemma 3.2), charged as ``ExponentialMechanismEvent(ε)`` with no extra term.  The
rounding only moves each score by less than Δ/2**20, a utility change of at most a factor
exp(ε/2**21) on any probability.

The caller must make sure that the *floats it passes* satisfy the sensitivity bound
(for MST/AIM-style L1 errors of integer counts against public model marginals the
float rounding error must be covered by Δ; see ``proofs/exponential_mechanism.md``).

How it samples
--------------
Rejection from the uniform proposal: draw i uniformly, accept with probability
exp(-γ_i), γ_i = ε·(a_max - a_i) / (2m) (exact rational), using the exact vectorised
Bernoulli(exp(-γ)) of :mod:`dpsynth.noise.bernoulli` over a batch of proposals and
returning the first accepted one (the first success of an iid sequence of trials, so
exact).  The acceptance rate is Σ_i exp(-γ_i) / N >= 1/N.  Not permute-and-flip: that is
a different mechanism and would not be ε-bounded range as charged.

Running time depends on the scores (the acceptance rate); like MST/AIM we accept this
timing channel for the selection step and document it.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from dpsynth.noise import bernoulli
from dpsynth.noise.randomness import RandomSource
from dpsynth.noise.rational import positive_rational

#: Grid steps per sensitivity unit: scores are floored to multiples of Δ / GRID_STEPS.
GRID_STEPS = 2**20

_MIN_BATCH = 64  # proposals per round for a single draw (at least the candidate count)
_ROUND_TRIALS = 2**16  # proposals per round when many draws share a pass
_WHOLE_CAP = 2**62


def sample_exponential_mechanism(scores, epsilon, sensitivity, source: RandomSource) -> int:
    """Index i of ``scores`` drawn with P[i] ∝ exp(ε·rounded_i / (2Δ)), exactly.

    ``rounded_i`` is ``score_i`` floored to a multiple of Δ/2**20 (module docstring): the
    rounded scores keep sensitivity Δ, so the draw is ε-DP and ε-bounded range
    (ε²/8-zCDP), the accounting of ``ExponentialMechanismEvent(epsilon)``.

    ``scores``: non-empty 1-D sequence of finite real numbers (higher is more likely);
    ``epsilon``: finite > 0; ``sensitivity`` Δ: finite > 0, the largest change of any one
    score between neighbouring datasets under the gate's relation.
    """
    eps, delta_u, exact_scores = _validate(scores, epsilon, sensitivity, source)
    return int(_draws(*_acceptance_exponents(exact_scores, eps, delta_u), 1, source)[0])


def exponential_mechanism_draws(
    scores, epsilon, sensitivity, count: int, source: RandomSource
) -> np.ndarray:
    """``count`` independent runs of :func:`sample_exponential_mechanism` (int64 array).

    Each run is a separate ε-DP release: charge ``count`` events.  Exists so that many
    independent selections (and the frequency tests) cost one vectorised pass.
    """
    eps, delta_u, exact_scores = _validate(scores, epsilon, sensitivity, source)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    return _draws(*_acceptance_exponents(exact_scores, eps, delta_u), int(count), source)


def _validate(scores, epsilon, sensitivity, source):
    eps = positive_rational(epsilon, "epsilon")
    delta_u = positive_rational(sensitivity, "sensitivity")
    if not isinstance(source, RandomSource):
        raise TypeError("source must be a dpsynth.noise.RandomSource")
    return eps, delta_u, _exact_scores(scores)


def _acceptance_exponents(exact_scores, eps, delta_u):
    """Per candidate: γ_i = ε·(a_max - a_i)/(2m) split as (whole int64, W-bit fraction,
    exact fraction) for :func:`dpsynth.noise.bernoulli.bernoulli_exp_neg`."""
    steps = [math.floor(s * GRID_STEPS / delta_u) for s in exact_scores]
    top = max(steps)
    gammas = [eps * (top - a) / (2 * GRID_STEPS) for a in steps]
    whole_parts = [g.numerator // g.denominator for g in gammas]
    frac_parts = [g - w for g, w in zip(gammas, whole_parts)]
    # A whole part beyond 2**62 is stored as 2**62: that candidate's trial can then only
    # differ from the exact one after 2**62 consecutive Bernoulli(1/e) successes, a run
    # no computer completes, so every run that terminates has the exact law.
    wholes = np.array([min(w, _WHOLE_CAP) for w in whole_parts], dtype=np.int64)
    fracs = np.array(
        [(f.numerator << bernoulli.PRECISION_BITS) // f.denominator for f in frac_parts],
        dtype=np.uint64,
    )
    return wholes, fracs, frac_parts


def _draws(wholes, fracs, frac_parts, count: int, source: RandomSource) -> np.ndarray:
    """``count`` independent exact draws: each is the first accepted proposal of its own
    iid sequence (uniform candidate, accepted with probability exp(-γ_candidate))."""
    n = wholes.shape[0]
    out = np.zeros(count, dtype=np.int64)
    pending = np.arange(count)
    while pending.size:
        # Each pending draw gets a row of proposals this round (one row per draw, read in
        # order, so "first success in the row" continues that draw's own sequence).
        width = max(1, min(max(_MIN_BATCH, n), _ROUND_TRIALS // pending.size))
        proposal = source.integers(n, pending.size * width)
        accepted = bernoulli.bernoulli_exp_neg(
            wholes[proposal],
            fracs[proposal],
            lambda idx: [frac_parts[int(proposal[i])] for i in idx],
            source,
        ).reshape(pending.size, width)
        proposal = proposal.reshape(pending.size, width)
        done = accepted.any(axis=1)
        first = accepted.argmax(axis=1)
        out[pending[done]] = proposal[done, first[done]]
        pending = pending[~done]
    return out


def _exact_scores(scores) -> list[Fraction]:
    """Scores as exact Fractions; errors name the position, never the (private) value."""
    if isinstance(scores, (str, bytes)) or not hasattr(scores, "__len__"):
        raise TypeError("scores must be a 1-D sequence of real numbers")
    array = np.asarray(scores, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shape {array.shape}")
    if array.size == 0:
        raise ValueError("scores must be non-empty")
    exact = []
    for index, value in enumerate(array.tolist()):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"scores[{index}] is not a real number")
        if not isinstance(value, Fraction) and not math.isfinite(float(value)):
            raise ValueError(f"scores[{index}] is not finite")
        exact.append(Fraction(value))
    return exact
