"""Marginal-based generators: MST, AIM and the Independent baseline."""

from .aim import AIM
from .base import MarginalGenerator, NotFitted
from .independent import Independent
from .mst import MST

__all__ = ["MST", "AIM", "Independent", "MarginalGenerator", "NotFitted"]
