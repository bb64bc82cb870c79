"""What a run of a generator will charge, from public facts alone (no table, no ledger).

A run's events depend on its ε, its parameters, the policy (δ, the bound on n, the
neighbouring relation) and — for a run that takes the whole budget — the filter's order
α*.  Officers choose α* from the runs they expect (`dpsynth policy suggest-order`) and
a job that learns its schema checks learning and fit together; both need the events
before any table or ledger exists to ask.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Mapping

from accountant.conversions import zcdp_rho
from accountant.events import DpEvent, NeighbouringRelation, ZCdpEvent
from accountant.filter import RenyiFilter

__all__ = ["planned_events"]


def planned_events(name: str, epsilon: float, parameters: Mapping[str, Any] | None = None, *,
                   ledger_filter: RenyiFilter, max_records: int,
                   relation: NeighbouringRelation = NeighbouringRelation.ADD_OR_REMOVE_ONE,
                   has_categories: bool | None = None, model: Any = None) -> list[DpEvent]:
    """The events one run of generator `name` at `epsilon` would charge on a ledger whose
    filter is `ledger_filter` (`model`: an already built instance to ask instead of building
    one from `parameters`).  A conditional GAN also measures category counts when the table
    has a category column: `has_categories` None costs both cases and keeps the dearer."""
    from . import GENERATORS
    from .marginal.base import MarginalGenerator

    if name not in GENERATORS:
        raise KeyError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}")
    cls = GENERATORS[name]
    if issubclass(cls, MarginalGenerator):  # zCDP: ρ at the δ the filter converts at
        return [ZCdpEvent(zcdp_rho(float(epsilon), ledger_filter.conversion_delta))]
    if model is None:
        model = cls(epsilon=epsilon, **dict(parameters or {}))
    gate = SimpleNamespace(filter=ledger_filter, relation=relation,
                           metadata=SimpleNamespace(delta=ledger_filter.delta),
                           policy=SimpleNamespace(max_records=int(max_records)))
    cases = (0, 1) if has_categories is None else ((1,) if has_categories else (0,))
    plans = [model.make_plan(gate, n) for n in cases]
    return list(max(plans, key=lambda p: p.cost(ledger_filter.order)).events)
