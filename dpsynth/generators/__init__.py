"""Synthetic-data generators."""

from .dpctgan import DPCTGAN

__all__ = ["DPCTGAN"]
