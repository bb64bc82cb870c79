"""The grid of Rényi orders on which non-zCDP curves are kept.

dp_accounting's default grid (1.1 … 10.9, 11 … 63, 128 … 1024) with three low
orders for large-ε DP-SGD, whose optimum sits near 1 (research/accounting.md §1.4),
and a dense high tail: one small-ρ measurement has its optimal order in the
hundreds, where the 63 → 128 gap of dp_accounting costs ~4 %.
"""

from __future__ import annotations

import numpy as np

_LOW = [1.01, 1.02, 1.05]
_FRACTIONAL = [1 + x / 10 for x in range(1, 100)]
_INTEGER = list(range(11, 64))
_HIGH = [72, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896, 1024,
         1280, 1536, 2048, 3072, 4096]

DEFAULT_ORDERS: np.ndarray = np.array(_LOW + _FRACTIONAL + _INTEGER + _HIGH, dtype=np.float64)
DEFAULT_ORDERS.setflags(write=False)

def orders_with(*extra: float) -> np.ndarray:
    """DEFAULT_ORDERS with `extra` orders added (sorted, without repeats).

    A run calibrated at one fixed order α (the ledger filter's α*) meets its target exactly
    there; the grid may not hold α, and its nearest orders can give an ε a hair above the
    target.  Converting over the grid plus α is never looser than either alone."""
    more = as_orders([float(x) for x in extra]) if extra else np.empty(0)
    return np.unique(np.concatenate([DEFAULT_ORDERS, more]))


#: Below this order the RDP → (ε, δ) bound is numerically unstable and never useful
#: (dp_accounting's guard); curves may be computed there but conversions skip it.
MIN_CONVERSION_ORDER = 1.01


def as_orders(orders) -> np.ndarray:
    """Validate and return orders as a float64 array (every order must exceed 1)."""
    arr = np.atleast_1d(np.asarray(orders, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("orders must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 1):
        raise ValueError("every Rényi order must be finite and > 1")
    return arr
