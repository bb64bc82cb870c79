"""DP-CTGAN: CTGAN (Xu et al. 2019) with its discriminator trained by DP-SGD (Opacus),
the whole plan charged through the gate before the first step.  See proofs/dpctgan.md."""

from .model import DPCTGAN, NotFitted
from .plan import PlanError, TrainingPlan

__all__ = ["DPCTGAN", "NotFitted", "PlanError", "TrainingPlan"]
