"""PATE-GAN (Jordon, Yoon, van der Schaar 2019) with its teachers inside the private table and
the whole plan charged before any teacher trains.  See proofs/pategan.md."""

from .model import PATEGAN
from .plan import PatePlan, PlanError, make_pate_plan

__all__ = ["PATEGAN", "PatePlan", "PlanError", "make_pate_plan"]
