"""The gate: nothing is measured on private data until a signed entry is written.

`Gate.charge(events, purpose=…)` checks the policy (neighbouring relation,
allowed generator, noise source, per-run cap) and the budget rule — Feldman &
Zrnic's fixed-order Rényi filter, `accountant.filter.RenyiFilter` — then
writes a hash-chained, Ed25519-signed ledger entry in one exclusive
transaction, and only after the commit returns a `Receipt`.  Over budget, it
raises `BudgetExceeded` and writes nothing.  See proofs/filter.md for why
this is sound under adaptive choice of runs and under concurrent processes.
"""

from __future__ import annotations

import copy
import getpass
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .accountant import RDPAccountant
from .conversions import epsilon_at_order
from .events import ComposedEvent, DpEvent, NeighbouringRelation, event_from_json
from .filter import RenyiFilter
from .fingerprint import fingerprints_match
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    key_id,
    load_private_key,
    load_public_key,
    public_key_from_pem,
    public_key_pem,
    sign,
    signature_is_valid,
)
from .ledger.entry import (
    ENTRY_PURPOSE,
    FORMAT,
    HEAD_PURPOSE,
    NOISE_SOURCES,
    Entry,
    Head,
    LedgerMetadata,
    coarse_timestamp,
)
from .ledger.hashing import normalise_json_value
from .ledger.sqlite import SQLiteLedgerStore
from .ledger.store import LedgerStore
from .orders import orders_with
from .policy import (
    Policy,
    PolicyError,
    PolicySignature,
    parse_policy,
    policy_hash,
    read_signature,
    signature_path_for,
    verify_policy_signature,
)
from .rdp import event_rdp, split, sum_up

__all__ = [
    "Gate",
    "Receipt",
    "BudgetExceeded",
    "RunCapExceeded",
    "PolicyViolation",
    "InvalidReceipt",
    "DatasetMismatch",
    "LedgerIntegrityError",
    "init_ledger",
    "receipts_epsilon",
    "filter_for",
    "run_filter_for",
    "full_curve_epsilon",
]


class PolicyViolation(ValueError):
    """The charge breaks a rule of the policy (relation, generator, noise source…)."""


class BudgetExceeded(RuntimeError):
    """The charge would take the spend over the budget; nothing was written."""

    def __init__(self, message: str, *, requested: float, remaining: float, budget: float, order: float,
                 epsilon_spent: float, epsilon_budget: float, delta: float, delta_requested: float = 0.0,
                 delta_remaining: float = 0.0, delta_reserve: float = 0.0) -> None:
        super().__init__(message)
        self.delta_requested = delta_requested
        self.delta_remaining = delta_remaining
        self.delta_reserve = delta_reserve
        self.requested = requested
        self.remaining = remaining
        self.budget = budget
        self.order = order
        self.epsilon_spent = epsilon_spent
        self.epsilon_budget = epsilon_budget
        self.delta = delta


class RunCapExceeded(BudgetExceeded):
    """The charge would take one run over the policy's per-run cap; nothing was written."""


class InvalidReceipt(ValueError):
    """A receipt does not verify (bad signature, unknown entry, other dataset)."""


class DatasetMismatch(ValueError):
    """The table's fingerprint differs from the one the policy governs."""


class LedgerIntegrityError(RuntimeError):
    """The stored ledger is inconsistent with itself (tampered or corrupt); the gate stays shut."""


@dataclass(frozen=True)
class Receipt:
    """Proof that a charge was recorded: returned only after the entry is committed.

    It carries every field of its ledger entry, so the signed `entry_hash` binds all of
    them: an offline check recomputes the hash from the receipt's own fields, and a
    receipt whose event, cost or ε was edited no longer verifies."""

    sequence: int
    entry_hash: str
    signature: str
    ledger_key_id: str | None
    dataset_fingerprint: str
    policy_sha256: str
    timestamp: str
    purpose: str
    generator: str | None
    run_id: str | None
    event: str
    cost: float
    filter_total: float
    epsilon_filter: float
    epsilon_curve: float
    insecure: bool
    actor: str
    parameters: dict
    relation: str
    noise_source: str
    filter_order: float
    rho: float
    curve: list
    filter_budget: float
    delta: float
    prev_hash: str

    __hash__ = None  # type: ignore[assignment]  # dict and list fields

    @classmethod
    def of_entry(cls, entry: Entry) -> "Receipt":
        return cls(**entry.to_dict())

    def entry(self) -> Entry:
        """The ledger entry this receipt is a copy of."""
        return Entry(**asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Receipt":
        names = set(cls.__dataclass_fields__)
        if not isinstance(data, Mapping) or set(data) != names:
            raise InvalidReceipt(f"a receipt must have exactly the fields {sorted(names)}")
        return cls(**dict(data))

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Check the ledger's signature over the entry hash; raises InvalidReceipt."""
        if self.insecure or not self.signature:
            raise InvalidReceipt(f"receipt #{self.sequence} is unsigned (insecure development mode)")
        if self.entry().compute_hash() != self.entry_hash:
            raise InvalidReceipt(f"receipt #{self.sequence}: its fields do not hash to its entry_hash "
                                 "(the receipt was altered)")
        if self.ledger_key_id != key_id(public_key):
            raise InvalidReceipt(
                f"receipt #{self.sequence} was signed by {self.ledger_key_id}, not by {key_id(public_key)}"
            )
        if not signature_is_valid(public_key, ENTRY_PURPOSE, self.entry_hash.encode(), self.signature):
            raise InvalidReceipt(f"receipt #{self.sequence}: signature does not verify")


def filter_for(metadata: LedgerMetadata, policy: Policy | None = None) -> RenyiFilter:
    """The budget filter a ledger's metadata fixes (order pinned at init).  The δ reserve
    comes from the signed policy recorded in the metadata (0 for policies without one)."""
    if policy is None:
        policy = parse_policy(metadata.policy_toml.encode("utf-8"))
    return RenyiFilter(metadata.epsilon, metadata.delta, order=metadata.filter_order,
                       delta_reserve=policy.delta_reserve)


def run_filter_for(policy: Policy) -> RenyiFilter | None:
    """The per-run cap as a filter of its own: a run may spend what (cap, δ − reserve) admits
    in RDP (its δ-costs are bounded by the ledger's reserve, not per run)."""
    if policy.max_epsilon_per_run is None:
        return None
    return RenyiFilter(policy.max_epsilon_per_run, policy.delta, delta_reserve=policy.delta_reserve)


def receipts_epsilon(receipts: Sequence[Receipt], delta: float | None = None) -> float:
    """ε at `delta` (default: their policy's δ) of the events the receipts name, composed
    over the full RDP curve on the ledger's grid plus its filter order (see `orders_with`).

    This is what those charges cost as a run of their own; the ledger's filter figure is
    what they cost against the adaptive budget."""
    receipts = list(receipts)
    if not receipts:
        return 0.0
    relations = {r.relation for r in receipts}
    deltas = {r.delta for r in receipts}
    if len(relations) != 1 or len(deltas) != 1:
        raise InvalidReceipt("the receipts come from ledgers with different neighbouring relations or deltas")
    accountant = RDPAccountant(NeighbouringRelation(relations.pop()),
                               orders=orders_with(*{r.filter_order for r in receipts}))
    for r in receipts:
        accountant.compose(event_from_json(r.event))
    return full_curve_epsilon(accountant, deltas.pop() if delta is None else delta)


def full_curve_epsilon(accountant: RDPAccountant, delta: float) -> float:
    """ε from the whole RDP curve (tight if the runs had been fixed in advance)."""
    if not accountant.events:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(accountant.get_epsilon(delta))


def init_ledger(
    path: str | os.PathLike,
    policy_path: str | os.PathLike,
    *,
    officer_public_key: str | os.PathLike | Ed25519PublicKey | None,
    ledger_key: str | os.PathLike | Ed25519PrivateKey | None,
    signature_path: str | os.PathLike | None = None,
    insecure: bool = False,
    store: LedgerStore | None = None,
) -> LedgerMetadata:
    """Create a ledger governed by a signed policy.

    Verifies the policy's signature with the officer's public key, pins the
    filter order, and records the policy text, both public keys and the filter
    in the ledger's metadata.  With `insecure=True` (development only) an
    unsigned policy and a missing ledger key are accepted and the ledger is
    marked insecure for ever.
    """
    raw = Path(policy_path).read_bytes()
    try:
        policy = parse_policy(raw)
    except PolicyError as exc:
        raise PolicyError(f"{policy_path}: {exc}") from None
    sig: PolicySignature | None = None
    officer: Ed25519PublicKey | None = None
    if officer_public_key is not None:
        officer = officer_public_key if isinstance(officer_public_key, Ed25519PublicKey) else load_public_key(
            officer_public_key)
    sig_path = Path(signature_path) if signature_path is not None else signature_path_for(policy_path)
    if sig_path.exists():
        sig = read_signature(sig_path)
    if not insecure:
        if officer is None:
            raise PolicyError("the officer's public key is required (it verifies the policy signature)")
        if sig is None:
            raise PolicyError(f"{policy_path} is not signed (no {sig_path}); run `dpsynth policy sign`")
        verify_policy_signature(raw, sig, officer)
        if ledger_key is None:
            raise PolicyError("the ledger's private key is required to sign entries")
    elif sig is not None and officer is not None:
        verify_policy_signature(raw, sig, officer)
    lkey = _private(ledger_key)
    filt = RenyiFilter(policy.epsilon, policy.delta, order=policy.order, delta_reserve=policy.delta_reserve)
    metadata = LedgerMetadata(
        format=FORMAT,
        created=coarse_timestamp(),
        policy_toml=raw.decode("utf-8"),
        policy_sha256=policy_hash(raw),
        policy_signature=None if sig is None else sig.to_dict(),
        officer_public_key=None if officer is None else public_key_pem(officer),
        officer_key_id=None if officer is None else key_id(officer),
        ledger_public_key=None if lkey is None else public_key_pem(lkey),
        ledger_key_id=None if lkey is None else key_id(lkey),
        dataset_fingerprint=policy.dataset_fingerprint,
        relation=policy.relation.value,
        epsilon=policy.epsilon,
        delta=policy.delta,
        filter_order=filt.order,
        filter_budget=filt.budget,
        # The filter's α* joins the grid: a run filling the budget at α* then also has a
        # full-curve ε at most the filter's (older ledgers keep the plain grid they recorded).
        curve_orders=[float(a) for a in orders_with(filt.order)],
        insecure=bool(insecure),
    )
    head = Head(sequence=0, entry_hash=metadata.hash,
                signature="" if (insecure or lkey is None) else sign(lkey, HEAD_PURPOSE,
                                                                     f"0:{metadata.hash}".encode()))
    store = store if store is not None else SQLiteLedgerStore(path)
    store.initialise(metadata, head)
    return metadata


def _private(key: str | os.PathLike | Ed25519PrivateKey | None) -> Ed25519PrivateKey | None:
    if key is None or isinstance(key, Ed25519PrivateKey):
        return key
    return load_private_key(key)


def _as_event(events: DpEvent | Sequence[DpEvent]) -> DpEvent:
    if isinstance(events, DpEvent):
        return events
    items = tuple(events)
    if not items:
        raise ValueError("charge() needs at least one event")
    for i, e in enumerate(items):
        if not isinstance(e, DpEvent):
            raise TypeError(f"events[{i}] must be a DpEvent, got {type(e).__name__}")
    return items[0] if len(items) == 1 else ComposedEvent(items)


class Gate:
    """The only way to spend privacy budget on a dataset.

    Open with `Gate.open(ledger_path, ledger_key=...)`.  One Gate object per
    process; any number of processes may share one ledger file.
    """

    def __init__(self, store: LedgerStore, *, ledger_key: Ed25519PrivateKey | None, insecure: bool = False,
                 officer_public_key: Ed25519PublicKey | None = None) -> None:
        self._store = store
        self.metadata = store.metadata()
        self.insecure = bool(insecure)
        md = self.metadata
        if md.insecure and not self.insecure:
            raise PolicyError("this ledger was created in insecure development mode; open it with insecure=True")
        raw = md.policy_toml.encode("utf-8")
        if policy_hash(raw) != md.policy_sha256:
            raise LedgerIntegrityError("the ledger's policy text does not match its recorded hash")
        self.policy = parse_policy(raw)
        if not self.insecure:
            if md.officer_public_key is None or md.policy_signature is None:
                raise PolicyError("the ledger's policy is unsigned")
            officer = public_key_from_pem(md.officer_public_key)
            if officer_public_key is not None and key_id(officer_public_key) != key_id(officer):
                raise PolicyError("the ledger's officer key is not the officer key you trust")
            verify_policy_signature(raw, PolicySignature.from_dict(md.policy_signature), officer)
            if ledger_key is None:
                raise PolicyError("the ledger's private key is required to sign entries (or use insecure mode)")
            if md.ledger_key_id != key_id(ledger_key):
                raise PolicyError(
                    f"the ledger key given ({key_id(ledger_key)}) is not this ledger's key ({md.ledger_key_id})"
                )
        self._key = None if self.insecure else ledger_key
        self.filter = filter_for(md, self.policy)
        if self.filter.budget != md.filter_budget:
            raise LedgerIntegrityError("the ledger's recorded filter budget does not match its policy")
        self.run_filter = run_filter_for(self.policy)
        self._orders = list(md.curve_orders)
        # Cache of what has been read from the append-only store (entries never change).
        self._seen = 0
        self._last: Entry | None = None
        self._costs: list[float] = []
        self._delta_costs: list[float] = []
        self._run_events: dict[str, list[DpEvent]] = {}
        self._accountant = RDPAccountant(self.relation, orders=md.curve_orders)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, ledger_key: str | os.PathLike | Ed25519PrivateKey | None = None,
             insecure: bool = False, officer_public_key: str | os.PathLike | Ed25519PublicKey | None = None,
             ) -> "Gate":
        """Open the SQLite ledger at `path` for charging."""
        officer = officer_public_key
        if officer is not None and not isinstance(officer, Ed25519PublicKey):
            officer = load_public_key(officer)
        return cls(SQLiteLedgerStore(path), ledger_key=_private(ledger_key), insecure=insecure,
                   officer_public_key=officer)

    @classmethod
    def for_testing(cls, epsilon: float = 1.0, delta: float = 1e-6, relation=NeighbouringRelation.ADD_OR_REMOVE_ONE,
                    path: str | os.PathLike | None = None, **kwargs: Any) -> "Gate":
        """A real gate (keys, signed policy, SQLite ledger) in a temporary directory."""
        from .testing import make_test_gate

        return make_test_gate(path, epsilon=epsilon, delta=delta, relation=relation, **kwargs).gate

    def close(self) -> None:
        self._store.close()

    # -- properties -----------------------------------------------------------------------
    @property
    def relation(self) -> NeighbouringRelation:
        return self.policy.relation

    @property
    def dataset_fingerprint(self) -> str:
        return self.policy.dataset_fingerprint

    @property
    def ledger_public_key(self) -> Ed25519PublicKey | None:
        pem = self.metadata.ledger_public_key
        return None if pem is None else public_key_from_pem(pem)

    def check_dataset(self, fingerprint: str) -> None:
        """Raise DatasetMismatch unless `fingerprint` is the governed dataset's."""
        if not fingerprints_match(fingerprint, self.dataset_fingerprint):
            raise DatasetMismatch(
                f"this table is not the dataset the policy governs ({self.policy.dataset_name!r}): "
                "its keyed fingerprint differs"
            )

    def spent_costs(self) -> list[float]:
        """The filter costs of every entry, in order (a fresh read)."""
        return [e.cost for e in self._store.snapshot().entries]

    def remaining_rho(self) -> float:
        """The largest ρ a zCDP event may still cost and be admitted by the total budget
        (a per-run cap may admit less; see `run_filter`)."""
        return self.filter.remaining_rho(self.spent_costs())

    def remaining(self) -> float:
        """RDP at α* still available."""
        return self.filter.remaining(self.spent_costs())

    def spent_delta_costs(self) -> list[float]:
        """The approximation δ of every entry, in order, recomputed from the entries' events."""
        return [self.filter.delta_cost(event_from_json(e.event)) for e in self._store.snapshot().entries]

    def delta_spent(self) -> float:
        """Σδ of the approximation parts charged so far (exact sum), paid from delta_reserve."""
        return sum_up(self.spent_delta_costs())

    def remaining_delta(self) -> float:
        """δ still available in the policy's delta_reserve."""
        return self.filter.remaining_delta(self.spent_delta_costs())

    # -- charging -------------------------------------------------------------------------
    def _validate(self, event: DpEvent, purpose: str, generator: str | None, noise_source: str) -> None:
        if not isinstance(purpose, str) or not purpose.strip():
            raise PolicyViolation("purpose must be a non-empty string saying why privacy is spent")
        for leaf, _ in event.leaves():
            if leaf.relation is not self.relation:
                raise PolicyViolation(
                    f"event {leaf.kind} was analysed under {leaf.relation.value}, but the policy's relation "
                    f"is {self.relation.value}"
                )
        if generator is not None and (not isinstance(generator, str) or not generator.strip()):
            raise PolicyViolation("generator must be a non-empty name or None")
        if not self.policy.allows_generator(generator):
            raise PolicyViolation(
                f"generator {generator!r} is not allowed by the policy (allowed: {', '.join(self.policy.generators)})"
            )
        if noise_source not in NOISE_SOURCES:
            raise PolicyViolation(f"noise_source must be one of {NOISE_SOURCES}, got {noise_source!r}")
        if noise_source == "seeded-test" and not self.policy.allow_seeded_noise:
            raise PolicyViolation("seeded-test noise is reproducible and not private; the policy does not allow it")

    def _catch_up(self, new_entries: list[Entry]) -> None:
        for e in new_entries:
            expected_prev = self._last.entry_hash if self._last is not None else self.metadata.hash
            if e.sequence != self._seen + 1 or e.prev_hash != expected_prev or e.compute_hash() != e.entry_hash:
                raise LedgerIntegrityError(f"ledger entry #{e.sequence} breaks the hash chain; run `dpsynth ledger "
                                           "verify`; the gate stays shut")
            event = event_from_json(e.event)
            self._accountant.compose(event)
            self._costs.append(e.cost)
            self._delta_costs.append(self.filter.delta_cost(event))
            if e.run_id is not None:
                self._run_events.setdefault(e.run_id, []).append(event)
            self._seen, self._last = e.sequence, e

    def charge(
        self,
        events: DpEvent | Sequence[DpEvent],
        *,
        purpose: str,
        generator: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        actor: str | None = None,
        noise_source: str = "secure",
        run_id: str | None = None,
    ) -> Receipt:
        """Check the policy and the filter, write the signed entry, then return its receipt.

        Several events are recorded as one entry (their composition).  `run_id`
        groups the charges of one run for the policy's per-run cap (a charge
        without one is a run of its own).  Raises PolicyViolation or
        BudgetExceeded, writing nothing, when the charge is refused.
        """
        event = _as_event(events)
        self._validate(event, purpose, generator, noise_source)
        params = normalise_json_value(dict(parameters or {}), field="parameters")
        if actor is None:
            try:
                actor = getpass.getuser()
            except Exception:  # noqa: BLE001 - no user database in some containers
                actor = "unknown"
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise PolicyViolation("run_id must be a non-empty string or None")
        cost = self.filter.cost(event)
        if not (math.isfinite(cost) and cost >= 0):
            raise PolicyViolation(f"event has no finite RDP at order {self.filter.order}: cost {cost!r}")
        delta_cost = self.filter.delta_cost(event)
        curve = [float(x) for x in event_rdp(event, self._orders)]
        rho = math.fsum(split(event).rho_terms)

        with self._store.exclusive() as tx:
            self._catch_up(tx.entries_after(self._seen))
            head = tx.head()
            last_hash = self._last.entry_hash if self._last is not None else self.metadata.hash
            if head.sequence != self._seen or head.entry_hash != last_hash:
                raise LedgerIntegrityError("the ledger head does not match its last entry; the gate stays shut")
            self._check_run_cap(event, run_id)
            if not self.filter.admits(self._costs, cost):
                raise self._exceeded(cost)
            if not self.filter.admits_delta(self._delta_costs, delta_cost):
                raise self._delta_exceeded(cost, delta_cost)
            costs = [*self._costs, cost]
            accountant = copy.deepcopy(self._accountant)
            accountant.compose(event)
            timestamp = max(coarse_timestamp(), self._last.timestamp if self._last else "")
            entry = Entry(
                sequence=self._seen + 1, timestamp=timestamp, dataset_fingerprint=self.dataset_fingerprint,
                actor=str(actor), purpose=purpose.strip(), generator=generator, parameters=params, run_id=run_id,
                event=event.to_json(), relation=self.relation.value, noise_source=noise_source,
                filter_order=self.filter.order, cost=cost, rho=rho, curve=curve,
                filter_total=self.filter.total(costs), filter_budget=self.filter.budget,
                epsilon_filter=self.filter.epsilon_spent(costs),
                epsilon_curve=full_curve_epsilon(accountant, self.metadata.delta), delta=self.metadata.delta,
                policy_sha256=self.metadata.policy_sha256, prev_hash=last_hash,
                ledger_key_id=None if self._key is None else self.metadata.ledger_key_id,
                insecure=self._key is None,
            )
            entry_hash = entry.compute_hash()
            signature = "" if self._key is None else sign(self._key, ENTRY_PURPOSE, entry_hash.encode())
            new_head = Head(entry.sequence, entry_hash, "")
            if self._key is not None:
                new_head = Head(entry.sequence, entry_hash, sign(self._key, HEAD_PURPOSE, new_head.message()))
            entry = Entry(**{**entry.to_dict(), "entry_hash": entry_hash, "signature": signature})
            tx.append(entry, new_head)
        # Committed: only now does the caller learn it may run the mechanism.
        self._catch_up_committed(entry, event, accountant, delta_cost)
        return Receipt.of_entry(entry)

    def _catch_up_committed(self, entry: Entry, event: DpEvent, accountant: RDPAccountant,
                            delta_cost: float) -> None:
        self._accountant = accountant
        self._costs.append(entry.cost)
        self._delta_costs.append(delta_cost)
        if entry.run_id is not None:
            self._run_events.setdefault(entry.run_id, []).append(event)
        self._seen, self._last = entry.sequence, entry

    def _check_run_cap(self, event: DpEvent, run_id: str | None) -> None:
        rf = self.run_filter
        if rf is None:
            return
        previous = self._run_events.get(run_id, []) if run_id is not None else []
        costs = [rf.cost(e) for e in previous]
        new = rf.cost(event)
        if not rf.admits(costs, new):
            remaining = rf.remaining(costs)
            raise RunCapExceeded(
                f"per-run cap exceeded for {'run ' + repr(run_id) if run_id else 'this charge (a run of its own)'}: this charge costs {new:.6g} (RDP at order "
                f"{rf.order:.4g}), the run has {remaining:.6g} of {rf.budget:.6g} left "
                f"(max_epsilon_per_run = {rf.epsilon} at delta = {rf.delta}); nothing was written",
                requested=new, remaining=remaining, budget=rf.budget, order=rf.order,
                epsilon_spent=rf.epsilon_spent(costs), epsilon_budget=rf.epsilon, delta=rf.delta,
            )

    def _exceeded(self, cost: float) -> BudgetExceeded:
        f = self.filter
        remaining = f.remaining(self._costs)
        spent = f.epsilon_spent(self._costs)
        alone = max(0.0, float(epsilon_at_order(f.order, cost, f.delta)))
        return BudgetExceeded(
            f"privacy budget exceeded: this charge costs {cost:.6g} (RDP at order {f.order:.4g}; about "
            f"epsilon {alone:.4g} on its own at delta {f.delta:g}), but only {remaining:.6g} of {f.budget:.6g} "
            f"remains (epsilon spent so far {spent:.4g} of {f.epsilon:g}); nothing was written",
            requested=cost, remaining=remaining, budget=f.budget, order=f.order, epsilon_spent=spent,
            epsilon_budget=f.epsilon, delta=f.delta,
        )

    def _delta_exceeded(self, cost: float, delta_cost: float) -> BudgetExceeded:
        f = self.filter
        remaining = f.remaining_delta(self._delta_costs)
        if f.delta_reserve == 0:
            why = ("the policy sets no budget.delta_reserve (it is 0), so no approximate mechanism "
                   "can be paid for; the officer must set delta_reserve (0 <= delta_reserve < delta)")
        else:
            why = (f"only {remaining:.6g} of the policy's budget.delta_reserve = {f.delta_reserve:g} remains "
                   f"(delta spent so far {sum_up(self._delta_costs):.6g})")
        return BudgetExceeded(
            f"privacy budget exceeded: this charge has an approximation part delta = {delta_cost:.6g} "
            f"(e.g. thresholded key discovery), but {why}; nothing was written",
            requested=cost, remaining=f.remaining(self._costs), budget=f.budget, order=f.order,
            epsilon_spent=f.epsilon_spent(self._costs), epsilon_budget=f.epsilon, delta=f.delta,
            delta_requested=delta_cost, delta_remaining=remaining, delta_reserve=f.delta_reserve,
        )

    # -- receipts -------------------------------------------------------------------------
    def verify_receipt(self, receipt: Receipt) -> None:
        """Raise InvalidReceipt unless the receipt is signed by this ledger's key and names
        an entry, with the same hash, that this ledger holds for this dataset."""
        if not isinstance(receipt, Receipt):
            raise InvalidReceipt(f"expected a Receipt, got {type(receipt).__name__}")
        key = self.ledger_public_key
        if key is None:
            raise InvalidReceipt("this ledger has no signing key (insecure development mode)")
        receipt.verify(key)
        if not fingerprints_match(receipt.dataset_fingerprint, self.dataset_fingerprint):
            raise InvalidReceipt(f"receipt #{receipt.sequence} is for another dataset")
        entries = self._store.snapshot().entries
        if not 1 <= receipt.sequence <= len(entries):
            raise InvalidReceipt(f"receipt #{receipt.sequence} names an entry this ledger does not hold")
        entry = entries[receipt.sequence - 1]
        if entry.sequence != receipt.sequence or entry.entry_hash != receipt.entry_hash \
                or entry.compute_hash() != receipt.entry_hash:
            raise InvalidReceipt(f"receipt #{receipt.sequence} does not match the ledger's entry")
