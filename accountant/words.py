"""The budget in words people read: one honest figure first, the detail after.

The one figure is the share of the budget used: the filter's RDP spend at its fixed
order α* against its budget B (what decides whether a charge is admitted), and what
remains.  Then what that remainder buys, in the ε a researcher asks for: the largest
ε one more zCDP-shaped run (MST, AIM, Independent: `generators.marginal.budget.run_rho`)
can still have at the policy's δ, capped by the policy's per-run ε.  The filter's
guaranteed ε and the full curve's ε stay in the detail: they are different figures
(proofs/filter.md) and put side by side they read as contradictions.
"""

from __future__ import annotations

from typing import Sequence

from .conversions import zcdp_epsilon
from .filter import RenyiFilter

__all__ = ["BudgetWords", "budget_words"]

MARGINAL_RUNS = "MST, AIM or Independent"


class BudgetWords(dict):
    """{"used_fraction", "remaining_fraction", "next_marginal_epsilon", "headline",
    "next_run"}: the figures and the two sentences (a dict, JSON-ready)."""

    @property
    def headline(self) -> str:
        return self["headline"]

    @property
    def next_run(self) -> str:
        return self["next_run"]


def _pct(x: float) -> str:
    """A percentage that never shows a non-zero share as 0 % or a partial one as 100 %."""
    p = 100.0 * x
    if 0 < p < 0.1:
        return "< 0.1 %"
    if 99.9 < p < 100:
        return "> 99.9 %"
    return f"{p:.1f} %"


def budget_words(f: RenyiFilter, costs: Sequence[float], *,
                 max_epsilon_per_run: float | None = None) -> BudgetWords:
    """The budget of filter `f` after `costs` (RDP at α*, the ledger's charges), in words."""
    spent = f.total(costs)
    used = min(1.0, spent / f.budget) if f.budget > 0 else 1.0
    rho_left = f.remaining_rho(costs)
    eps_next = zcdp_epsilon(rho_left, f.conversion_delta) if rho_left > 0 else 0.0
    capped = max_epsilon_per_run is not None and eps_next > max_epsilon_per_run
    if capped:
        eps_next = float(max_epsilon_per_run)
    headline = (f"{_pct(used)} of the budget used (ε {f.epsilon:g} at δ {f.delta:g}); "
                f"{_pct(1.0 - used)} remains")
    if eps_next > 0:
        next_run = (f"one more {MARGINAL_RUNS} run can still have ε {eps_next:.3g} at this δ"
                    + (" (the policy's per-run cap)" if capped else ""))
    else:
        next_run = "nothing remains for another run"
    return BudgetWords(used_fraction=used, remaining_fraction=1.0 - used, next_marginal_epsilon=eps_next,
                       headline=headline, next_run=next_run)
