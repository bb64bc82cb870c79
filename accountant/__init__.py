"""accountant: tight Rényi-DP accounting, a privacy filter, and (with the ledger)
signed records of every privacy spend.  Knows nothing of data or generators;
never imports dpsynth."""

from .accountant import GridEdgeWarning, RDPAccountant
from .calibration import analytic_gaussian_sigma, calibrate_dpsgd_noise, gaussian_sigma
from .conversions import rdp_delta, rdp_epsilon, zcdp_delta, zcdp_epsilon, zcdp_rho
from .events import (
    ApproximationEvent,
    ComposedEvent,
    DiscreteGaussianEvent,
    DpEvent,
    ExponentialMechanismEvent,
    GaussianEvent,
    GNMaxEvent,
    LaplaceEvent,
    NeighbouringRelation,
    PoissonSubsampledGaussianEvent,
    PureDpEvent,
    SelfComposedEvent,
    ZCdpEvent,
    event_from_dict,
    event_from_json,
)
from .filter import RenyiFilter
from .gate import BudgetExceeded, Gate, InsecureModeWarning, LedgerIntegrityError, Receipt, init_ledger
from .orders import DEFAULT_ORDERS
from .rdp import event_delta, event_rdp, event_rho

__version__ = "0.1.0"

__all__ = [
    "Gate", "Receipt", "BudgetExceeded", "LedgerIntegrityError", "InsecureModeWarning", "init_ledger",
    "RDPAccountant", "GridEdgeWarning", "RenyiFilter", "DEFAULT_ORDERS",
    "calibrate_dpsgd_noise", "gaussian_sigma", "analytic_gaussian_sigma",
    "rdp_epsilon", "rdp_delta", "zcdp_epsilon", "zcdp_delta", "zcdp_rho",
    "event_rdp", "event_rho", "event_delta", "event_from_dict", "event_from_json",
    "DpEvent", "NeighbouringRelation", "GaussianEvent", "DiscreteGaussianEvent", "LaplaceEvent",
    "ExponentialMechanismEvent", "PureDpEvent", "ZCdpEvent", "PoissonSubsampledGaussianEvent",
    "GNMaxEvent", "ApproximationEvent", "ComposedEvent", "SelfComposedEvent",
]
