"""What the dashboard and `GET /ledgers/{dataset}/summary` show: the budget burn-down, the
spend per person and per generator, and the verification of the chain and its head.
All of it is computed from the ledger's entries (public to auditors), nothing else."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

__all__ = ["ledger_summary", "verification"]


def _epsilon(events: list, relation: Any, orders: list, delta: float) -> float:
    from accountant import RDPAccountant
    from accountant.receipt import full_curve_epsilon

    acc = RDPAccountant(relation, orders=orders)
    for e in events:
        acc.compose(e)
    return full_curve_epsilon(acc, delta)


def ledger_summary(snapshot: Any, policy: Any) -> dict[str, Any]:
    from accountant.events import event_from_json

    md = snapshot.metadata
    burn = []
    by_person: dict[str, list] = defaultdict(list)
    by_generator: dict[str, list] = defaultdict(list)
    cost_person: dict[str, float] = defaultdict(float)
    cost_generator: dict[str, float] = defaultdict(float)
    kinds: dict[str, int] = defaultdict(int)
    for e in snapshot.entries:
        kinds[e.kind] += 1
        if e.kind != "charge":
            continue
        event = event_from_json(e.event)
        by_person[e.actor].append(event)
        by_generator[e.generator or "(none)"].append(event)
        cost_person[e.actor] += e.cost
        cost_generator[e.generator or "(none)"] += e.cost
        burn.append({"sequence": e.sequence, "timestamp": e.timestamp, "actor": e.actor, "generator": e.generator,
                     "epsilon_filter": e.epsilon_filter, "fraction_used": e.filter_total / e.filter_budget})
    orders = list(md.curve_orders)

    def groups(d: dict[str, list]) -> list[dict[str, Any]]:
        return [{"name": k, "charges": len(v), "epsilon": _epsilon(v, policy.relation, orders, md.delta)}
                for k, v in sorted(d.items())]

    last = next((e for e in reversed(snapshot.entries) if e.kind == "charge"), None)
    used = 0.0 if last is None else last.filter_total / last.filter_budget
    return {
        "dataset": policy.dataset_name, "ledger_id": md.ledger_id,
        "budget": {"epsilon": md.epsilon, "delta": md.delta, "relation": md.relation},
        "fraction_used": used, "fraction_left": max(0.0, 1.0 - used),
        "epsilon_spent": 0.0 if last is None else last.epsilon_filter,
        "epsilon_curve": 0.0 if last is None else last.epsilon_curve,
        "entries": len(snapshot.entries), "kinds": dict(kinds),
        "head": {"sequence": snapshot.head.sequence, "entry_hash": snapshot.head.entry_hash},
        "burn_down": burn, "by_person": groups(by_person), "by_generator": groups(by_generator),
        "person_share": {k: v / md.filter_budget for k, v in sorted(cost_person.items())},
        "generator_share": {k: v / md.filter_budget for k, v in sorted(cost_generator.items())},
    }


def verification(snapshot: Any, officer: Any, ledger_public_key: Any) -> dict[str, Any]:
    """The full verification of the stored chain and its signed head under the pinned keys."""
    from accountant.verify import verify_snapshot

    report = verify_snapshot(snapshot, officer_public_key=officer, ledger_public_key=ledger_public_key)
    return {"ok": report.ok, "entries": report.entries,
            "problems": [{"sequence": p.sequence, "message": p.message} for p in report.problems[:50]],
            "head": None if report.head is None else {"sequence": report.head[0], "entry_hash": report.head[1]},
            "epsilon_filter": report.epsilon_filter if math.isfinite(report.epsilon_filter) else None,
            "summary": report.summary()}
