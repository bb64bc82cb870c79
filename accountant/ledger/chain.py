"""Reading a ledger's chain entry by entry, with every check a reader must make.

The gate (before it admits a charge) and `verify` (for an auditor) read the
same chain; both build a `ChainState` and feed it the entries in order.
`ChainState.apply(entry)` returns the problems it found with that entry (an
empty list for a good one) and folds the entry into the state: the hash chain,
the signature under the ledger key, the policy's rules, the cost and running
total recomputed from the event, and the life cycle of every charge:

    charge ──release──▶ released ──seal──▶ sealed
       └──open──▶ open ──release──▶ released

A charge is released at most once (a receipt buys one release) and sealed into
at most one model.  The gate stays shut on any problem; `verify` reports them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..accountant import RDPAccountant
from ..events import DpEvent, event_from_json
from ..filter import RenyiFilter
from ..keys import Ed25519PublicKey, key_id, signature_is_valid
from ..policy import Policy
from ..rdp import event_rdp, split, sum_up
from ..receipt import full_curve_epsilon
from .entry import ENTRY_KINDS, ENTRY_PURPOSE, NOISE_SOURCES, Entry, LedgerMetadata

__all__ = ["ChainState", "SHA256_HEX", "is_sha256_hex", "is_request_id", "REQUEST_ID"]

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: An idempotency key: 8-128 characters a URL, a header and a log line carry unchanged.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and SHA256_HEX.match(value) is not None


def is_request_id(value: Any) -> bool:
    return isinstance(value, str) and REQUEST_ID.match(value) is not None


@dataclass
class ChainState:
    """What the entries read so far add up to (see the module docstring)."""

    metadata: LedgerMetadata
    policy: Policy
    filter: RenyiFilter
    run_filter: RenyiFilter | None
    ledger_key: Ed25519PublicKey | None      # None: unsigned entries are expected (insecure ledger)
    thorough: bool = True                     # also recompute every entry's ε (verify does; the gate need not)
    count: int = 0
    last: Entry | None = None
    costs: list[float] = field(default_factory=list)
    delta_costs: list[float] = field(default_factory=list)
    run_events: dict[str, list[DpEvent]] = field(default_factory=dict)
    lifecycle: dict[int, str] = field(default_factory=dict)   # charge sequence -> charged | open | released
    charge_hashes: dict[int, str] = field(default_factory=dict)
    sealed: set[int] = field(default_factory=set)
    releases: dict[int, int] = field(default_factory=dict)   # charge sequence -> its release entry's sequence
    requests: dict[tuple[str, str], Entry] = field(default_factory=dict)   # (actor, request_id) -> its charge
    actor_events: dict[str, list[DpEvent]] = field(default_factory=dict)  # each actor's charged events
    epsilon_filter: float = 0.0
    epsilon_curve: float = 0.0
    last_time: str = ""

    def __post_init__(self) -> None:
        self.accountant = RDPAccountant(self.policy.relation, orders=self.metadata.curve_orders)
        self.prev_hash = self.metadata.hash

    # -- what the next entry must chain to ------------------------------------------------
    @property
    def total(self) -> float:
        return self.filter.total(self.costs)

    def events_of_run(self, run_id: str | None) -> list[DpEvent]:
        return list(self.run_events.get(run_id, [])) if run_id is not None else []

    # -- one entry ----------------------------------------------------------------------
    def apply(self, e: Entry) -> list[str]:
        """Check `e` as the next entry and fold it into the state; return its problems.

        Never raises on a malformed entry: a field of the wrong type is a problem too."""
        problems: list[str] = []
        try:
            self._apply(e, problems)
        except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, RecursionError) as exc:
            # ArithmeticError: a crafted event whose cost divides by zero (σ = 1e-320).
            problems.append(f"malformed entry ({type(exc).__name__}: {exc})")
        self.count += 1
        self.prev_hash = e.entry_hash if isinstance(e.entry_hash, str) else ""
        self.last = e
        return problems

    def _apply(self, e: Entry, bad: list[str]) -> None:
        md, policy, filt = self.metadata, self.policy, self.filter
        position = self.count + 1
        if e.sequence != position:
            bad.append(f"holds sequence number {e.sequence!r}: an entry was deleted, inserted or reordered")
        if e.prev_hash != self.prev_hash:
            bad.append("prev_hash does not match the previous entry's hash: the chain is broken here "
                       "(an entry before it was deleted, inserted or reordered)")
        if e.compute_hash() != e.entry_hash:
            bad.append("its content does not match its hash: a field was edited")
        self._check_signature(e, bad)
        if not md.is_legacy and e.ledger_id != md.ledger_id:
            bad.append(f"belongs to ledger {e.ledger_id!r}, not to this ledger {md.ledger_id!r}")
        for name, value, expected in (
            ("policy_sha256", e.policy_sha256, md.policy_sha256),
            ("dataset_fingerprint", e.dataset_fingerprint, md.dataset_fingerprint),
            ("relation", e.relation, md.relation),
            ("delta", e.delta, md.delta),
            ("filter_order", e.filter_order, filt.order),
            ("filter_budget", e.filter_budget, filt.budget),
        ):
            if value != expected:
                bad.append(f"{name} {value!r} differs from the ledger's {expected!r}")
        if not isinstance(e.timestamp, str) or not TIMESTAMP.match(e.timestamp):
            bad.append(f"timestamp {e.timestamp!r} is not a minute-resolution UTC time")
        elif e.timestamp < self.last_time:
            bad.append(f"timestamp {e.timestamp} is earlier than the previous entry's {self.last_time}")
        else:
            self.last_time = e.timestamp
        if e.noise_source not in NOISE_SOURCES:
            bad.append(f"noise_source {e.noise_source!r} is not one of {NOISE_SOURCES}")
        elif e.noise_source == "seeded-test" and not policy.allow_seeded_noise:
            bad.append("uses seeded-test noise, which the policy does not allow")
        if not policy.allows_generator(e.generator):
            bad.append(f"generator {e.generator!r} is not allowed by the policy")
        if e.request_id is not None:
            if e.kind != "charge":
                bad.append(f"a {e.kind} entry carries a request_id: only charges do")
            elif not is_request_id(e.request_id):
                bad.append(f"request_id {e.request_id!r} is not an idempotency key")
            elif (e.actor, e.request_id) in self.requests:
                bad.append(f"request_id {e.request_id!r} of {e.actor!r} was charged before (#"
                           f"{self.requests[(e.actor, e.request_id)].sequence}): a request is charged once")
            else:
                self.requests[(e.actor, e.request_id)] = e
        if e.kind not in ENTRY_KINDS:
            bad.append(f"kind {e.kind!r} is not one of {ENTRY_KINDS}")
        elif e.kind == "charge":
            self._charge(e, bad)
        else:
            self._lifecycle(e, bad)

    def _check_signature(self, e: Entry, bad: list[str]) -> None:
        if self.metadata.insecure:
            if not e.insecure:
                bad.append("claims to be signed in a ledger created in insecure development mode")
            return
        if e.insecure:
            bad.append("UNSIGNED (insecure development mode) in a ledger created secure: entries of a "
                       "secure ledger are always signed")
            return
        key = self.ledger_key
        if key is None:
            bad.append("signed, but the ledger has no public key to check it")
            return
        if e.ledger_key_id != key_id(key):
            bad.append(f"signed by key {e.ledger_key_id}, not by the ledger key {key_id(key)}")
        if not signature_is_valid(key, ENTRY_PURPOSE, str(e.entry_hash).encode(), e.signature):
            bad.append("signature does not verify under the ledger's public key")

    def _charge(self, e: Entry, bad: list[str]) -> None:
        filt, policy = self.filter, self.policy
        if not self.metadata.is_legacy and (e.refs != [] or e.commitment is not None):
            bad.append("a charge refers to no other entry and commits to no output")
        if e.code_sha256 is not None:
            if not is_sha256_hex(e.code_sha256):
                bad.append("code_sha256 is not a SHA-256 digest")
            if not policy.allow_custom_code:
                bad.append("ran caller-supplied code, which the policy does not allow (allow_custom_code)")
        try:
            event = event_from_json(e.event)
        except (ValueError, TypeError) as exc:
            bad.append(f"event does not parse: {exc}")
            return
        if event.to_json() != e.event:
            bad.append("event JSON is not canonical")
        if any(leaf.relation is not policy.relation for leaf, _ in event.leaves()):
            bad.append("event is analysed under another neighbouring relation than the policy's")
            return
        cost = filt.cost(event)
        if cost != e.cost:
            bad.append(f"cost {e.cost!r} differs from the event's RDP at order {filt.order!r}: {cost!r}")
        if math.fsum(split(event).rho_terms) != e.rho:
            bad.append(f"rho {e.rho!r} differs from the event's zCDP part")
        if self.thorough and [float(x) for x in event_rdp(event, self.metadata.curve_orders)] != list(e.curve):
            bad.append("curve differs from the event's RDP curve")
        over = filt.exceeds(self.costs, cost)
        self.costs.append(cost)
        total = filt.total(self.costs)
        if total != e.filter_total:
            bad.append(f"running total {e.filter_total!r} differs from the recomputed {total!r}")
        if over:
            bad.append(f"running total {total!r} is above the budget {filt.budget!r}: the filter would have "
                       "refused it")
        # The δ part has no stored field: it is recomputed from the signed event JSON.
        delta_cost = filt.delta_cost(event)
        if delta_cost > 0 and not filt.admits_delta(self.delta_costs, delta_cost):
            bad.append(f"its approximation delta {delta_cost!r} takes the delta spent over the policy's "
                       f"budget.delta_reserve = {filt.delta_reserve!r}: the filter would have refused it")
        self.delta_costs.append(delta_cost)
        self.accountant.compose(event)
        if self.run_filter is not None and e.run_id is not None:
            previous = self.run_events.get(e.run_id, [])
            run_costs = [self.run_filter.cost(x) for x in (*previous, event)]
            if self.run_filter.exceeds(run_costs):
                bad.append(f"run {e.run_id!r} exceeds the policy's max_epsilon_per_run")
        if e.run_id is not None:
            self.run_events.setdefault(e.run_id, []).append(event)
        self.actor_events.setdefault(e.actor, []).append(event)
        self.lifecycle[e.sequence] = "charged"
        self.charge_hashes[e.sequence] = e.entry_hash
        if self.thorough:
            self.epsilon_filter = filt.epsilon_spent(self.costs)
            if self.epsilon_filter != e.epsilon_filter:
                bad.append(f"epsilon_filter {e.epsilon_filter!r} differs from the recomputed {self.epsilon_filter!r}")
            self.epsilon_curve = full_curve_epsilon(self.accountant, self.metadata.delta)
            if self.epsilon_curve != e.epsilon_curve:
                bad.append(f"epsilon_curve {e.epsilon_curve!r} differs from the recomputed {self.epsilon_curve!r}")
        else:
            self.epsilon_filter, self.epsilon_curve = e.epsilon_filter, e.epsilon_curve

    def _lifecycle(self, e: Entry, bad: list[str]) -> None:
        """open / release / seal: no cost; the refs must follow each charge's life cycle."""
        if e.event is not None or e.cost != 0.0 or e.rho != 0.0 or e.curve != [] or e.code_sha256 is not None:
            bad.append(f"a {e.kind} entry spends nothing: event null, cost and rho 0, no curve, no code")
        if e.filter_total != self.total:
            bad.append(f"running total {e.filter_total!r} differs from the recomputed {self.total!r}")
        if self.thorough and (e.epsilon_filter != self.epsilon_filter or e.epsilon_curve != self.epsilon_curve):
            bad.append("a non-charge entry repeats the running epsilon of the charges before it")
        refs = e.refs
        if not isinstance(refs, list) or not refs:
            bad.append(f"a {e.kind} entry must name the charge(s) it refers to")
            return
        if e.kind in ("open", "release") and len(refs) != 1:
            bad.append(f"a {e.kind} entry refers to exactly one charge")
            return
        if e.kind == "open":
            if e.commitment is not None:
                bad.append("an open entry commits to nothing yet")
        elif not is_sha256_hex(e.commitment):
            bad.append(f"a {e.kind} entry must commit to a SHA-256 digest")
        if len(set(refs)) != len(refs):
            bad.append("names a charge twice")
        for ref in refs:
            state = self.lifecycle.get(ref)
            if state is None:
                bad.append(f"refers to #{ref}, which is not an earlier charge of this ledger")
                continue
            if e.kind == "open":
                if state != "charged":
                    bad.append(f"opens charge #{ref}, which was already {state}: a receipt buys one release")
                else:
                    self.lifecycle[ref] = "open"
            elif e.kind == "release":
                if state == "released":
                    bad.append(f"releases charge #{ref} a second time: a receipt buys one release")
                else:
                    self.lifecycle[ref] = "released"
                    self.releases[ref] = e.sequence
            else:  # seal
                if state != "released":
                    bad.append(f"seals charge #{ref}, whose output was never released (it is {state})")
                if ref in self.sealed:
                    bad.append(f"seals charge #{ref} a second time: it already paid for a sealed model")
                self.sealed.add(ref)

    # -- summaries ----------------------------------------------------------------------
    @property
    def delta_spent(self) -> float:
        return sum_up(self.delta_costs)
