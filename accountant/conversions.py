"""Conversions between RDP / zCDP and (ε, δ)-DP, the tightest valid ones.

* RDP → (ε, δ): Balle, Barthe, Gaboardi, Hsu, Sato 2020 (arXiv:1905.09982, Thm 21),
  equivalently Canonne–Kamath–Steinke 2020 (arXiv:2004.00010, Prop. 12):
      ε = R(α) + ln(1 − 1/α) − (ln δ + ln α)/(α − 1),
  with dp_accounting's guards: orders ≤ 1.01 skipped, the KL/TV shortcut
  (δ ≥ √(1 − e^{−R}) ⇒ ε = 0), ε clamped at 0.
* ρ-zCDP → (ε, δ): the same formula applied to R(α) = ρα and optimised over the
  *continuous* order (what private-pgm's cdp2adp.py computes by bisection).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from .orders import MIN_CONVERSION_ORDER, as_orders

__all__ = [
    "rdp_epsilon",
    "rdp_delta",
    "epsilon_at_order",
    "rdp_budget_at_order",
    "zcdp_epsilon",
    "zcdp_delta",
    "zcdp_rho",
    "zcdp_optimal_order",
    "validate_delta",
    "validate_epsilon",
]


def validate_delta(delta: float, *, name: str = "delta") -> float:
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not (0 < delta < 1):
        raise ValueError(f"{name} must be a number with 0 < {name} < 1, got {delta!r}")
    return float(delta)


def validate_epsilon(epsilon: float, *, name: str = "epsilon") -> float:
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not (0 < epsilon < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {epsilon!r}")
    return float(epsilon)


def epsilon_at_order(alpha, rdp, delta: float) -> np.ndarray:
    """The improved conversion at given orders (no minimisation, no guards)."""
    a = np.asarray(alpha, dtype=np.float64)
    return np.asarray(rdp, dtype=np.float64) + np.log1p(-1.0 / a) - (math.log(delta) + np.log(a)) / (a - 1)


def rdp_budget_at_order(alpha: float, epsilon: float, delta: float) -> float:
    """The largest RDP at order α that still converts to (ε, δ): inverse of the above."""
    a = float(alpha)
    return epsilon - math.log1p(-1.0 / a) + (math.log(delta) + math.log(a)) / (a - 1)


def rdp_epsilon(orders, rdp, delta: float) -> tuple[float, float]:
    """min over orders of the improved conversion; returns (ε, optimal order)."""
    delta = validate_delta(delta)
    a = as_orders(orders)
    r = np.asarray(rdp, dtype=np.float64)
    if r.shape != a.shape:
        raise ValueError("orders and rdp must have the same length")
    if np.any(np.isnan(r)) or np.any(r < 0):
        raise ValueError("RDP values must be >= 0 (and not NaN)")
    eps = np.full_like(a, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        tv_zero = delta**2 + np.expm1(-r) > 0  # δ ≥ √(1 − e^{−R}) ≥ TV distance
        usable = a >= MIN_CONVERSION_ORDER
        eps[usable] = epsilon_at_order(a[usable], r[usable], delta)
    eps[np.isnan(eps)] = np.inf
    eps[tv_zero] = 0.0
    best = int(np.argmin(eps))
    return max(0.0, float(eps[best])), float(a[best])


def rdp_delta(orders, rdp, epsilon: float) -> tuple[float, float]:
    """Smallest δ at which the RDP curve gives ε (dp_accounting's compute_delta)."""
    if not (epsilon >= 0) or not math.isfinite(epsilon):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    a = as_orders(orders)
    r = np.asarray(rdp, dtype=np.float64)
    if r.shape != a.shape or np.any(np.isnan(r)) or np.any(r < 0):
        raise ValueError("rdp must be >= 0 with one value per order")
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_delta = np.where(r == 0, -np.inf, 0.5 * np.log1p(-np.exp(-r)))
        bound = (a - 1) * (r - epsilon + np.log1p(-1.0 / a)) - np.log(a)
        bound = np.where(a >= MIN_CONVERSION_ORDER, bound, np.inf)
        log_delta = np.minimum(log_delta, np.nan_to_num(bound, nan=np.inf))
    best = int(np.argmin(log_delta))
    return min(1.0, math.exp(float(log_delta[best]))), float(a[best])


def _minimise_over_order(f, lo: float = MIN_CONVERSION_ORDER, hi: float = 1e7) -> tuple[float, float]:
    """Minimise a smooth function of the order: coarse log grid, then bounded Brent."""
    grid = lo + np.logspace(math.log10(lo - 1 + 1e-12), math.log10(hi), 400) - (lo - 1)
    grid = np.clip(grid, lo, hi)
    values = np.array([f(x) for x in grid])
    k = int(np.argmin(values))
    left, right = grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]
    if right > left:
        res = optimize.minimize_scalar(f, bounds=(left, right), method="bounded",
                                       options={"xatol": 1e-12 * max(1.0, right)})
        if res.fun <= values[k]:
            return float(res.fun), float(res.x)
    return float(values[k]), float(grid[k])


def zcdp_epsilon(rho: float, delta: float) -> float:
    """Tight ε of ρ-zCDP at δ (Canonne–Kamath–Steinke 2020), continuous order."""
    return zcdp_epsilon_and_order(rho, delta)[0]


def zcdp_epsilon_and_order(rho: float, delta: float) -> tuple[float, float]:
    delta = validate_delta(delta)
    if not (rho >= 0) or not math.isfinite(rho):
        raise ValueError(f"rho must be finite and >= 0, got {rho!r}")
    if rho == 0:
        return 0.0, math.inf
    if delta**2 + math.expm1(-rho * MIN_CONVERSION_ORDER) > 0:
        return 0.0, MIN_CONVERSION_ORDER
    ld = math.log(delta)
    eps, alpha = _minimise_over_order(lambda a: rho * a + math.log1p(-1 / a) - (ld + math.log(a)) / (a - 1))
    return max(0.0, eps), alpha


def zcdp_delta(rho: float, epsilon: float) -> float:
    """Smallest δ such that ρ-zCDP implies (ε, δ)-DP (CKS 2020)."""
    if not (rho >= 0) or not math.isfinite(rho):
        raise ValueError(f"rho must be finite and >= 0, got {rho!r}")
    if not (epsilon >= 0) or not math.isfinite(epsilon):
        raise ValueError(f"epsilon must be finite and >= 0, got {epsilon!r}")
    if rho == 0:
        return 0.0

    def log_delta(a: float) -> float:
        return (a - 1) * (a * rho - epsilon + math.log1p(-1 / a)) - math.log(a)

    value, _ = _minimise_over_order(log_delta)
    return min(1.0, math.exp(value))


def zcdp_optimal_order(epsilon: float, delta: float) -> tuple[float, float]:
    """(ρ_max, α*): the largest ρ whose zCDP guarantee converts to (ε, δ), and the
    order at which it does.  ρ is feasible iff ρα ≤ B(α) for some α, where B is
    `rdp_budget_at_order`, so ρ_max = max_α B(α)/α."""
    epsilon = validate_epsilon(epsilon)
    delta = validate_delta(delta)
    neg, alpha = _minimise_over_order(lambda a: -rdp_budget_at_order(a, epsilon, delta) / a)
    return -neg, alpha


def zcdp_rho(epsilon: float, delta: float) -> float:
    """The largest ρ such that ρ-zCDP implies (ε, δ)-DP (what MST/AIM spend)."""
    return zcdp_optimal_order(epsilon, delta)[0]
