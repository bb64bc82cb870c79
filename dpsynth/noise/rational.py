"""Validation and exact rational conversion of the samplers' scale parameters."""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np


def positive_rational(value: object, name: str) -> Fraction:
    """``value`` as an exact Fraction (a float converts exactly, no rounding); it must be a
    finite real number > 0.  Raises TypeError/ValueError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number (int, float or Fraction), got {type(value).__name__}")
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    exact = Fraction(value) if not isinstance(value, np.floating) else Fraction(float(value))
    if exact <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return exact


def output_shape(size: object) -> tuple[int, ...]:
    """``size`` (an int or a tuple of ints, like NumPy's) as a shape tuple."""
    if isinstance(size, (int, np.integer)):
        shape = (size,)
    elif isinstance(size, tuple):
        shape = size
    else:
        raise ValueError(f"size must be a non-negative int or a tuple of them, got {size!r}")
    for dim in shape:
        if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, (int, np.integer)) or dim < 0:
            raise ValueError(f"size must be a non-negative int or a tuple of them, got {size!r}")
    return tuple(int(d) for d in shape)
