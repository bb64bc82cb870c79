"""Private-PGM-style graphical models: estimation from noisy marginals, inference, sampling.

Tensors are torch float64; every entry point takes ``device=`` (default: CUDA
when available, else CPU).
"""

from .clique_vector import CliqueVector
from .domain import Domain
from .estimation import Measurement, estimate
from .factor import Factor
from .inference import BeliefPropagation
from .junction_tree import JunctionTree, junction_tree_size, maximal_cliques
from .model import GraphicalModel

__all__ = [
    "BeliefPropagation",
    "CliqueVector",
    "Domain",
    "Factor",
    "GraphicalModel",
    "JunctionTree",
    "Measurement",
    "estimate",
    "junction_tree_size",
    "maximal_cliques",
]
