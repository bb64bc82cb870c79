"""Validation of privacy parameters (ε > 0, σ > 0, 0 < δ < 1, all finite)."""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["positive", "probability"]


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return x


def positive(value: Any, name: str) -> float:
    """A finite real > 0 (ε, σ, a noise multiplier)."""
    x = _real(value, name)
    if not x > 0:
        raise ValueError(f"{name} must be > 0, got {x!r}")
    return x


def probability(value: Any, name: str) -> float:
    """A finite real in (0, 1) (δ, a quantile level)."""
    x = _real(value, name)
    if not 0 < x < 1:
        raise ValueError(f"{name} must satisfy 0 < {name} < 1, got {x!r}")
    return x
