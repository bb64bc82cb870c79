"""Interpretation of events as Rényi-DP: a zCDP part ρ plus a curve on orders.

Every event's RDP is R(α) = ρ·α + R_other(α).  zCDP-shaped events (Gaussian,
discrete Gaussian, exponential mechanism, GNMax, zCDP) have R_other ≡ 0, so a
ledger of them is summarised exactly by one ρ and converted in closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import numpy as np

from .events import (
    ApproximationEvent,
    DiscreteGaussianEvent,
    DpEvent,
    ExponentialMechanismEvent,
    GaussianEvent,
    GNMaxEvent,
    LaplaceEvent,
    PoissonSubsampledGaussianEvent,
    PureDpEvent,
    ZCdpEvent,
)
from .orders import as_orders
from .sgm import subsampled_gaussian_rdp

__all__ = ["event_rho", "event_delta", "sum_up", "minus_down", "event_rdp", "event_other_rdp", "laplace_rdp", "pure_dp_rdp", "RdpParts", "split"]


@dataclass(frozen=True)
class RdpParts:
    """ρ terms (to be summed with math.fsum), the non-zCDP leaves with counts, and the
    δ terms of approximation leaves (δ·count each, rounded up; summed by `sum_up`)."""

    rho_terms: tuple[float, ...]
    other: tuple[tuple[DpEvent, int], ...]
    delta_terms: tuple[float, ...] = ()


def _leaf_rho(event: DpEvent) -> float | None:
    """ρ of a zCDP-shaped leaf (never rounded to 0: see `_positive`), None for leaves that need a curve."""
    rho = _zcdp_rho(event)
    return None if rho is None else _positive(rho)


def _positive(rho: float) -> float:
    """Every leaf's true ρ is > 0.  A ρ that underflows to 0.0 (σ = 1e200, ε = 1e-160) would be
    admitted for free after the budget is spent — what exact admission exists to prevent
    (proofs/filter.md) — so it is rounded up to the smallest positive float."""
    return rho if rho > 0 else math.ulp(0.0)


def _scaled_square(formula, scale: float, num: float, den: float) -> float:
    """`formula()` = scale·(num/den)²; where a square leaves the float range (σ = 1e-320 or
    1e200: ZeroDivisionError / OverflowError inside the formula), the same value from
    logarithms (inf or a float that may underflow to 0).  In range, the formula is used as
    written, so recorded costs recompute bit for bit."""
    try:
        return formula()
    except (OverflowError, ZeroDivisionError):
        log = math.log(scale) + 2.0 * (math.log(num) - math.log(den))
        return math.inf if log > 709.0 else math.exp(log)


def _zcdp_rho(event: DpEvent) -> float | None:
    if isinstance(event, GaussianEvent):
        z = event.noise_multiplier
        return _scaled_square(lambda: 1.0 / (2.0 * z**2), 0.5, 1.0, z)
    if isinstance(event, DiscreteGaussianEvent):
        # CKS 2020: N_Z(0, σ²) on an integer query with L2 sensitivity Δ is Δ²/(2σ²)-zCDP.
        d, s = event.l2_sensitivity, event.sigma
        return _scaled_square(lambda: d**2 / (2.0 * s**2), 0.5, d, s)
    if isinstance(event, ExponentialMechanismEvent):
        # ε-bounded range ⇒ ε²/8-zCDP (Cesar & Rogers 2021).
        e = event.epsilon
        return _scaled_square(lambda: e**2 / 8.0, 0.125, e, 1.0)
    if isinstance(event, GNMaxEvent):
        # Δ₂ = √2 on the vote histogram: per query 2/(2σ²) = 1/σ² (Papernot et al. 2018).
        q, z = event.queries, event.noise_multiplier
        return _scaled_square(lambda: q / z**2, float(q), 1.0, z)
    if isinstance(event, ZCdpEvent):
        return event.rho
    return None


def split(event: DpEvent) -> RdpParts:
    """Split an event into exact ρ terms and curve-valued leaves."""
    if not isinstance(event, DpEvent):
        raise TypeError(f"expected a DpEvent, got {type(event).__name__}")
    rho_terms: list[float] = []
    other: list[tuple[DpEvent, int]] = []
    delta_terms: list[float] = []
    for leaf, count in event.leaves():
        rho = _leaf_rho(leaf)
        if isinstance(leaf, ApproximationEvent):
            # RDP contribution 0 at every order; its δ is tracked apart (approximate zCDP).
            delta_terms.append(sum_up([leaf.delta], count))
        elif rho is not None:
            rho_terms.append(rho * count)
        elif isinstance(leaf, (LaplaceEvent, PureDpEvent, PoissonSubsampledGaussianEvent)):
            other.append((leaf, count))
        else:  # pragma: no cover - every registered leaf is handled above
            raise TypeError(f"no RDP analysis for event type {type(leaf).__name__}")
    return RdpParts(tuple(rho_terms), tuple(other), tuple(delta_terms))


def event_rho(event: DpEvent) -> float | None:
    """ρ if the event is entirely zCDP-shaped (no curve-valued leaf), else None.

    An approximation leaf does not make it None: the event is then (ρ, δ)-approximately
    zCDP; read its δ with `event_delta`."""
    parts = split(event)
    return math.fsum(parts.rho_terms) if not parts.other else None


def sum_up(values, count: int = 1) -> float:
    """count × Σ values, computed exactly in rationals and rounded *up* to a float: a δ
    bound must never be rounded below the true total."""
    exact = Fraction(count) * sum((Fraction(v) for v in values), Fraction(0))
    out = float(exact)
    if Fraction(out) < exact:
        out = math.nextafter(out, math.inf)
    return out


def minus_down(a: float, b: float) -> float:
    """a − b rounded *down* to a float (the δ left for a conversion must not be overstated)."""
    out = a - b
    if Fraction(out) > Fraction(a) - Fraction(b):
        out = math.nextafter(out, -math.inf)
    return out


def event_delta(event: DpEvent) -> float:
    """The event's approximation δ: the exact sum of its `ApproximationEvent` parts (δ·count
    each), rounded up to a float."""
    return sum_up(split(event).delta_terms)


def laplace_rdp(scale: float, orders) -> np.ndarray:
    """Mironov 2017, Prop. 6 (L1 sensitivity 1), evaluated in log space."""
    a = as_orders(orders)
    b = float(scale)
    log_num = np.logaddexp(np.log(a / (2 * a - 1)) + (a - 1) / b, np.log((a - 1) / (2 * a - 1)) - a / b)
    return log_num / (a - 1)


def pure_dp_rdp(epsilon: float, orders) -> np.ndarray:
    """Tight RDP of an ε-DP mechanism: randomized response's curve (Bun–Steinke 2016),
    ln[(sinh(αε) − sinh((α−1)ε))/sinh ε]/(α − 1), rewritten to avoid overflow:
    ε + [ln(−expm1(−ε) + e^{−2αε}·expm1(ε)) − ln(−expm1(−2ε))]/(α − 1)."""
    a = as_orders(orders)
    e = float(epsilon)
    inner = -math.expm1(-e) + np.exp(-2 * a * e) * math.expm1(e)
    return e + (np.log(inner) - math.log(-math.expm1(-2 * e))) / (a - 1)


@lru_cache(maxsize=256)
def _sgm_curve(q: float, sigma: float, orders: tuple[float, ...]) -> np.ndarray:
    curve = subsampled_gaussian_rdp(q, sigma, np.array(orders))
    curve.setflags(write=False)
    return curve


def _leaf_curve(leaf: DpEvent, orders: np.ndarray) -> np.ndarray:
    if isinstance(leaf, LaplaceEvent):
        return laplace_rdp(leaf.scale, orders)
    if isinstance(leaf, PureDpEvent):
        return pure_dp_rdp(leaf.epsilon, orders)
    if isinstance(leaf, PoissonSubsampledGaussianEvent):
        return leaf.steps * _sgm_curve(leaf.sampling_rate, leaf.noise_multiplier, tuple(orders.tolist()))
    raise TypeError(f"no RDP curve for {type(leaf).__name__}")  # pragma: no cover


def event_other_rdp(event: DpEvent, orders) -> np.ndarray:
    """The non-zCDP part R_other(α) of an event's RDP."""
    a = as_orders(orders)
    total = np.zeros_like(a)
    for leaf, count in split(event).other:
        total = total + count * _leaf_curve(leaf, a)
    return total


def event_rdp(event: DpEvent, orders) -> np.ndarray:
    """The event's full RDP curve R(α) = ρα + R_other(α) at the given orders."""
    a = as_orders(orders)
    parts = split(event)
    return math.fsum(parts.rho_terms) * a + event_other_rdp(event, a)

