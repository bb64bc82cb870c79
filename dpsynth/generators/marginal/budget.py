"""A marginal generator's run budget, in zCDP, and the noise scales it buys.

A run asks for ε at the policy's δ.  Marginal methods spend zCDP (discrete
Gaussian measurements, exponential-mechanism selections charged as bounded
range, ρ = ε²/8), so the run's budget is the largest ρ whose zCDP guarantee
converts to (ε, δ) (`accountant.conversions.zcdp_rho`, the Canonne–Kamath–
Steinke conversion).  The gate is asked before anything is measured whether
the whole run fits; a run that does not fit is refused with nothing charged.
"""

from __future__ import annotations

import math

from accountant.conversions import zcdp_rho
from accountant.events import DiscreteGaussianEvent, NeighbouringRelation
from accountant.gate import BudgetExceeded, PolicyViolation

__all__ = ["run_rho", "marginal_l2_sensitivity", "sigma_for_rho", "em_epsilon_for_rho", "rho_of_sigma"]

# A run whose ρ exceeds what remains by no more than this relative amount is given exactly
# what remains: the filter's fixed order and the continuous optimum of the conversion differ
# in the last bits only.
_CONVERSION_SLACK = 1e-9


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def run_rho(gate, epsilon: float) -> float:
    """ρ for a run of `epsilon` at the gate's δ, checked against what the gate still admits
    (the ledger's filter and the policy's per-run cap).  Charges nothing.

    With a policy ``delta_reserve`` the zCDP part converts at δ − reserve (the filter's
    ``conversion_delta``): the reserve pays for δ-events such as key discovery."""
    epsilon = _positive("epsilon", epsilon)
    delta = getattr(gate.filter, "conversion_delta", gate.metadata.delta)
    rho = zcdp_rho(epsilon, delta)
    remaining = gate.remaining_rho()
    if rho > remaining:
        if rho <= remaining * (1 + _CONVERSION_SLACK):
            rho = remaining
        else:
            from accountant.words import budget_words

            costs = gate.spent_costs()
            f = gate.filter
            words = budget_words(f, costs, max_epsilon_per_run=gate.policy.max_epsilon_per_run)
            raise BudgetExceeded(
                f"a run of epsilon {epsilon:g} does not fit what remains: {words.headline}; {words.next_run}; "
                f"nothing was charged (detail: the run needs rho {rho:.6g}, the ledger admits rho "
                f"{remaining:.6g} more; epsilon spent {f.epsilon_spent(costs):.6g} of {f.epsilon:g} at "
                f"delta {f.delta:g}, filter guarantee)",
                requested=rho * f.order, remaining=f.remaining(costs), budget=f.budget, order=f.order,
                epsilon_spent=f.epsilon_spent(costs), epsilon_budget=f.epsilon, delta=f.delta)
    run_filter = getattr(gate, "run_filter", None)
    if run_filter is not None:
        cap = run_filter.remaining_rho([])
        if rho > cap * (1 + _CONVERSION_SLACK):
            raise PolicyViolation(
                f"a run of epsilon {epsilon:g} exceeds the policy's max_epsilon_per_run = "
                f"{run_filter.epsilon:g}; nothing was charged")
        rho = min(rho, cap)
    return rho


def marginal_l2_sensitivity(relation: NeighbouringRelation) -> float:
    """L2 sensitivity of one marginal (a histogram of counts): one record moves one cell by
    one under add/remove, two cells by one under replace-one."""
    return 1.0 if NeighbouringRelation(relation) is NeighbouringRelation.ADD_OR_REMOVE_ONE else math.sqrt(2.0)


def rho_of_sigma(sigma: float, l2_sensitivity: float) -> float:
    """ρ of one discrete Gaussian measurement, computed by the accountant's own formula."""
    from accountant.rdp import event_rho

    return event_rho(DiscreteGaussianEvent(sigma, l2_sensitivity))


def sigma_for_rho(rho: float, l2_sensitivity: float) -> float:
    """The smallest σ (up to float rounding, never below) whose measurement costs ≤ ρ."""
    rho = _positive("rho", rho)
    sigma = l2_sensitivity / math.sqrt(2.0 * rho)
    while rho_of_sigma(sigma, l2_sensitivity) > rho:
        sigma = math.nextafter(sigma, math.inf)
    return sigma


def em_epsilon_for_rho(rho: float) -> float:
    """The largest ε whose exponential mechanism (bounded range, ρ = ε²/8) costs ≤ ρ."""
    from accountant.events import ExponentialMechanismEvent
    from accountant.rdp import event_rho

    rho = _positive("rho", rho)
    eps = math.sqrt(8.0 * rho)
    while event_rho(ExponentialMechanismEvent(eps)) > rho:
        eps = math.nextafter(eps, 0.0)
    return eps
