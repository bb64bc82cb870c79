"""Noise for a target: σ of DP-SGD, σ of a Gaussian, ρ of (ε, δ).

Every calibration solves to tolerance with a bracketing root finder and then
checks the side: the returned noise never gives more than the target (opacus'
bisection over-noises and has missed; opacus#346, #566).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, special

from .accountant import GridEdgeWarning, RDPAccountant
from .conversions import validate_delta, validate_epsilon, zcdp_rho
from .events import PoissonSubsampledGaussianEvent
from .rdp import event_rdp

__all__ = ["calibrate_dpsgd_noise", "gaussian_sigma", "analytic_gaussian_sigma", "zcdp_rho"]


def _smallest_sigma(excess, lo: float = 1e-3, hi: float = 1.0, rtol: float = 1e-9) -> float:
    """Smallest σ with excess(σ) <= 0 for a decreasing `excess`; exact side checked."""
    while excess(hi) > 0:
        lo, hi = hi, hi * 2
        if hi > 1e8:
            raise ValueError("no noise multiplier below 1e8 meets the target")
    if excess(lo) <= 0:
        while lo > 1e-6 and excess(lo / 2) <= 0:
            lo /= 2
        if excess(lo / 2) <= 0:
            return lo / 2
        hi, lo = lo, lo / 2
    sigma = optimize.brentq(lambda s: excess(s), lo, hi, rtol=rtol, xtol=1e-15)
    while excess(sigma) > 0:  # brentq may land a hair on the wrong side
        sigma = math.nextafter(sigma, math.inf) * (1 + 1e-12)
    return sigma


def calibrate_dpsgd_noise(
    target_epsilon: float,
    delta: float,
    sampling_rate: float,
    steps: int,
    *,
    order: float | None = None,
    accountant_factory=RDPAccountant,
) -> float:
    """Smallest noise multiplier such that `steps` Poisson-subsampled Gaussian steps
    at `sampling_rate` are (target_epsilon, delta)-DP.

    With `order` given, calibrate for the fixed-order filter instead: the plan's
    RDP at that order must fit the budget B(order) that converts to (ε, δ)
    (use the gate's order to spend exactly the share the gate will admit).
    """
    target_epsilon = validate_epsilon(target_epsilon, name="target_epsilon")
    delta = validate_delta(delta)
    if not (0 < sampling_rate <= 1):
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")

    if order is not None:
        from .conversions import rdp_budget_at_order

        budget = rdp_budget_at_order(order, target_epsilon, delta)
        if budget <= 0:
            raise ValueError(f"order {order} leaves no budget for epsilon={target_epsilon}")

        def excess(sigma: float) -> float:
            event = PoissonSubsampledGaussianEvent(sampling_rate, sigma, steps)
            return float(event_rdp(event, [order])[0]) - budget
    else:

        def excess(sigma: float) -> float:
            acc = accountant_factory().compose(PoissonSubsampledGaussianEvent(sampling_rate, sigma, steps))
            return acc.get_epsilon(delta) - target_epsilon

        # The search probes σ far from the answer, whose optimal orders may sit at the grid's
        # edge; only the returned σ's own conversion may warn (below).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GridEdgeWarning)
            sigma = _smallest_sigma(excess)
        excess(sigma)
        return sigma

    return _smallest_sigma(excess)


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """σ (absolute std) of a Gaussian mechanism that is (ε, δ)-DP through its zCDP
    guarantee ρ = Δ²/(2σ²) with the tight CKS conversion — the accounting the ledger
    uses, so the mechanism composes with everything else."""
    rho = zcdp_rho(epsilon, delta)
    sigma = sensitivity / math.sqrt(2 * rho)
    while sensitivity**2 / (2 * sigma**2) > rho:
        sigma = math.nextafter(sigma, math.inf)
    return sigma


def _gaussian_delta(epsilon: float, mu: float) -> float:
    """Exact δ(ε) of a Gaussian with Δ/σ = μ (Balle & Wang 2018, Thm 8)."""
    return float(special.ndtr(-epsilon / mu + mu / 2) - math.exp(epsilon) * special.ndtr(-epsilon / mu - mu / 2))


def analytic_gaussian_sigma(epsilon: float, delta: float, sensitivity: float = 1.0) -> float:
    """Smallest σ for which one Gaussian mechanism is exactly (ε, δ)-DP (Balle & Wang
    2018).  Tighter than `gaussian_sigma` for a single release, but its guarantee
    is (ε, δ) only, so the ledger must then charge it as that σ's zCDP anyway."""
    epsilon = validate_epsilon(epsilon)
    delta = validate_delta(delta)
    sigma = _smallest_sigma(lambda s: _gaussian_delta(epsilon, 1.0 / s) - delta, rtol=1e-12)
    return sigma * sensitivity

