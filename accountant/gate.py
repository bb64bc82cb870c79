"""The gate: nothing is measured on private data until a signed entry is written.

`Gate.charge(events, purpose=…)` checks the policy (neighbouring relation,
allowed generator, noise source, per-run cap) and the budget rule — Feldman &
Zrnic's fixed-order Rényi filter, `accountant.filter.RenyiFilter` — then
writes a hash-chained, Ed25519-signed ledger entry in one exclusive
transaction, and only after the commit returns a `Receipt`.  Over budget, it
raises `BudgetExceeded` and writes nothing.  See proofs/filter.md for why
this is sound under adaptive choice of runs and under concurrent processes.

What the gate reads it verifies first (proofs/threat_model.md): on opening and
inside every transaction it re-reads the entries it has not seen, checks each
one's hash, chain link, signature and recomputed cost (`ledger.chain`), checks
the signed head, that the file is still the one it opened, and that this
machine never saw the ledger further along (`witness`).  Any failure keeps the
gate shut: a ledger without a key cannot be cut, rewritten or swapped under it.

Beside charges the gate writes three kinds of zero-cost entries:
`open` / `release` (a charge's output left the table; the release commits to
its SHA-256, and a charge is released once) and `seal` (a fitted model's state
digest, paid for by released charges).
"""

from __future__ import annotations

import functools
import getpass
import math
import os
import threading
import warnings
from typing import Any, Mapping, Sequence

from .conversions import epsilon_at_order
from .errors import (
    ActorCapExceeded,
    BudgetExceeded,
    DatasetMismatch,
    InsecureModeWarning,
    InvalidReceipt,
    LedgerIntegrityError,
    PolicyViolation,
    RequestConflict,
    RunCapExceeded,
)
from .events import ComposedEvent, DpEvent, NeighbouringRelation
from .filter import RenyiFilter
from .fingerprint import fingerprints_match
from .genesis import genesis_is_signed_by, init_ledger
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    key_id,
    load_private_key,
    load_public_key,
    public_key_from_pem,
    sign,
    signature_is_valid,
)
from .ledger.chain import ChainState, is_request_id, is_sha256_hex
from .ledger.entry import ENTRY_PURPOSE, HEAD_PURPOSE, NOISE_SOURCES, Entry, Head, LedgerMetadata, coarse_timestamp
from .ledger.hashing import normalise_json_value
from .ledger.open_store import open_store
from .ledger.store import LedgerStore
from .policy import (
    Policy,
    PolicyError,
    PolicySignature,
    is_ledger_id,
    parse_policy,
    policy_hash,
    verify_policy_signature,
)
from .rdp import event_rdp, split, sum_up
from .receipt import Receipt, full_curve_epsilon, receipts_epsilon
from .witness import Witness

__all__ = [
    "Gate",
    "Receipt",
    "BudgetExceeded",
    "RunCapExceeded",
    "ActorCapExceeded",
    "RequestConflict",
    "PolicyViolation",
    "InvalidReceipt",
    "DatasetMismatch",
    "LedgerIntegrityError",
    "InsecureModeWarning",
    "init_ledger",
    "receipts_epsilon",
    "filter_for",
    "run_filter_for",
    "full_curve_epsilon",
]


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


def _private(key: str | os.PathLike | Ed25519PrivateKey | None) -> Ed25519PrivateKey | None:
    if key is None or isinstance(key, Ed25519PrivateKey):
        return key
    return load_private_key(key)


def _key_sha256(key: Ed25519PublicKey) -> str:
    """SHA-256 (hex) of a public key's raw bytes (the full digest, not the short key id)."""
    import hashlib

    from cryptography.hazmat.primitives import serialization

    return hashlib.sha256(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


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


def _text(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise PolicyViolation(f"{name} must be a non-empty string{' or None' if optional else ''}")
    if len(value) > 1000:
        raise PolicyViolation(f"{name} is longer than 1000 characters")
    return value.strip()


def _serialised(method: Any) -> Any:
    """Run a Gate method under the gate's lock: the chain state and the store's connection
    are shared by the threads of one process (a service's workers)."""
    @functools.wraps(method)
    def locked(self: "Gate", *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


class Gate:
    """The only way to spend privacy budget on a dataset.

    Open with `Gate.open(ledger_path, ledger_key=...)`.  One Gate object per
    process, shared by its threads (every method that reads or writes the ledger
    holds the gate's lock); any number of processes may share one ledger.
    """

    def __init__(self, store: LedgerStore, *, ledger_key: Ed25519PrivateKey | None, insecure: bool = False,
                 officer_public_key: Ed25519PublicKey | None = None, witness: Witness | None = None) -> None:
        self._store = store
        self._lock = threading.RLock()
        md = store.metadata()
        self.metadata = md
        self.insecure = bool(insecure)
        if md.is_legacy:
            raise LedgerIntegrityError(
                f"this is a {md.format} ledger: it still verifies (`dpsynth ledger verify`), but charging needs "
                "a ledger with an officer-signed genesis; the officer creates one with `dpsynth ledger init`")
        if md.insecure and not self.insecure:
            raise PolicyError("this ledger was created in insecure development mode; open it with insecure=True")
        if self.insecure and not md.insecure:
            raise PolicyError("this ledger was created secure: insecure development mode cannot be switched on "
                              "for it (its entries are always signed)")
        if self.insecure:
            warnings.warn("INSECURE DEVELOPMENT MODE: this ledger's entries are unsigned and prove nothing",
                          InsecureModeWarning, stacklevel=2)
        if not is_ledger_id(md.ledger_id):
            # verify reports it too; the gate must not use a crafted id (it names a witness file).
            raise LedgerIntegrityError(f"the ledger's id {md.ledger_id!r} is not 32 lower-case hex digits")
        raw = md.policy_toml.encode("utf-8")
        if policy_hash(raw) != md.policy_sha256:
            raise LedgerIntegrityError("the ledger's policy text does not match its recorded hash")
        self.policy = parse_policy(raw)
        if self.policy.ledger_id is not None and self.policy.ledger_id != md.ledger_id:
            raise LedgerIntegrityError(f"the policy governs ledger {self.policy.ledger_id}, but this ledger is "
                                       f"{md.ledger_id}")
        self._verifying_key: Ed25519PublicKey | None = None
        if not self.insecure:
            if md.officer_public_key is None or md.policy_signature is None:
                raise PolicyError("the ledger's policy is unsigned")
            officer = public_key_from_pem(md.officer_public_key)
            if officer_public_key is not None and key_id(officer_public_key) != key_id(officer):
                raise PolicyError("the ledger's officer key is not the officer key you trust")
            verify_policy_signature(raw, PolicySignature.from_dict(md.policy_signature), officer)
            if not genesis_is_signed_by(md, officer):
                raise LedgerIntegrityError("the ledger's genesis is not signed by its officer: it was not "
                                           "created by `dpsynth ledger init` with the officer's key")
            if ledger_key is None:
                raise PolicyError("the ledger's private key is required to sign entries (or use insecure mode)")
            if md.ledger_key_id != key_id(ledger_key) or md.ledger_public_key is None:
                raise PolicyError(
                    f"the ledger key given ({key_id(ledger_key)}) is not this ledger's key ({md.ledger_key_id})"
                )
            self._verifying_key = public_key_from_pem(md.ledger_public_key)
            if key_id(self._verifying_key) != md.ledger_key_id:
                raise LedgerIntegrityError("the genesis' ledger key id does not match its ledger public key")
        self._key = None if self.insecure else ledger_key
        self._witness = witness if witness is not None else Witness()
        if not self.insecure:
            # Trust on first use of the officer who starts this ledger key's ledgers (witness.check_officer).
            self._witness.check_officer(_key_sha256(self._verifying_key), _key_sha256(officer),
                                        pinned=officer_public_key is not None)
        self.filter = filter_for(md, self.policy)
        if self.filter.budget != md.filter_budget:
            raise LedgerIntegrityError("the ledger's recorded filter budget does not match its policy")
        self.run_filter = run_filter_for(self.policy)
        self._orders = list(md.curve_orders)
        self._genesis_hash = md.hash
        self._state = ChainState(md, self.policy, self.filter, self.run_filter, self._verifying_key, thorough=False)
        self._witness.check(md.ledger_id, self._genesis_hash, lambda: store.tip()[0].sequence, store.entry)
        snapshot = store.snapshot()
        self._catch_up(list(snapshot.entries))
        self._check_head(snapshot.head)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike, *, ledger_key: str | os.PathLike | Ed25519PrivateKey | None = None,
             insecure: bool = False, officer_public_key: str | os.PathLike | Ed25519PublicKey | None = None,
             witness: Witness | str | os.PathLike | None = None) -> "Gate":
        """Open the ledger at `path` for charging (verifying all of it first): a SQLite file,
        or a ``postgresql://…[#ledger=NAME]`` URL (`ledger.open_store`)."""
        officer = officer_public_key
        if officer is not None and not isinstance(officer, Ed25519PublicKey):
            officer = load_public_key(officer)
        if witness is not None and not isinstance(witness, Witness):
            witness = Witness(witness)
        store = open_store(path)
        try:
            return cls(store, ledger_key=_private(ledger_key), insecure=insecure, officer_public_key=officer,
                       witness=witness)
        except BaseException:
            store.close()
            raise

    @classmethod
    def for_testing(cls, epsilon: float = 1.0, delta: float = 1e-6, relation=NeighbouringRelation.ADD_OR_REMOVE_ONE,
                    path: str | os.PathLike | None = None, **kwargs: Any) -> "Gate":
        """A real gate (keys, signed policy, SQLite ledger) in a temporary directory."""
        from .testing import make_test_gate

        return make_test_gate(path, epsilon=epsilon, delta=delta, relation=relation, **kwargs).gate

    def close(self) -> None:
        self._store.close()

    @_serialised
    def snapshot(self) -> Any:
        """The stored ledger as it is now, unverified (what an auditor's export or `verify` reads)."""
        return self._store.snapshot()

    # -- properties -----------------------------------------------------------------------
    @property
    def relation(self) -> NeighbouringRelation:
        return self.policy.relation

    @property
    def dataset_fingerprint(self) -> str:
        return self.policy.dataset_fingerprint

    @property
    def ledger_id(self) -> str:
        return self.metadata.ledger_id

    @property
    def ledger_public_key(self) -> Ed25519PublicKey | None:
        """The key this ledger's entries are signed with (checked against the private key
        the gate was opened with, and named in the officer-signed genesis)."""
        return self._verifying_key

    def check_dataset(self, fingerprint: str) -> None:
        """Raise DatasetMismatch unless `fingerprint` is the governed dataset's."""
        if not isinstance(fingerprint, str) or not fingerprints_match(fingerprint, self.dataset_fingerprint):
            raise DatasetMismatch(
                f"this table is not the dataset the policy governs ({self.policy.dataset_name!r}): "
                "its keyed fingerprint differs"
            )

    @_serialised
    def _sync(self) -> None:
        """Read (and verify) what other processes appended since the last read."""
        with self._store.exclusive() as tx:
            self._catch_up(tx.entries_after(self._state.count))
            self._check_head(tx.head())

    def spent_costs(self) -> list[float]:
        """The filter costs of every charge, in order (a fresh, verified read)."""
        self._sync()
        return list(self._state.costs)

    def remaining_rho(self) -> float:
        """The largest ρ a zCDP event may still cost and be admitted by the total budget
        (a per-run cap may admit less; see `run_filter`)."""
        return self.filter.remaining_rho(self.spent_costs())

    def remaining(self) -> float:
        """RDP at α* still available."""
        return self.filter.remaining(self.spent_costs())

    def spent_delta_costs(self) -> list[float]:
        """The approximation δ of every charge, in order, recomputed from the entries' events."""
        self._sync()
        return list(self._state.delta_costs)

    def delta_spent(self) -> float:
        """Σδ of the approximation parts charged so far (exact sum), paid from delta_reserve."""
        return sum_up(self.spent_delta_costs())

    def remaining_delta(self) -> float:
        """δ still available in the policy's delta_reserve."""
        return self.filter.remaining_delta(self.spent_delta_costs())

    # -- reading the chain ----------------------------------------------------------------
    def _catch_up(self, new_entries: Sequence[Entry]) -> None:
        state = self._state
        for e in new_entries:
            problems = state.apply(e)
            if problems:
                raise LedgerIntegrityError(f"ledger entry #{state.count}: {problems[0]}; run `dpsynth ledger "
                                           "verify`; the gate stays shut")

    def _check_head(self, head: Head) -> None:
        state = self._state
        last_hash = state.last.entry_hash if state.last is not None else self._genesis_hash
        if head.sequence != state.count or head.entry_hash != last_hash:
            raise LedgerIntegrityError("the ledger head does not match its last entry (the ledger was cut short "
                                       "or rewritten); the gate stays shut")
        if state.count and self._verifying_key is not None and not signature_is_valid(
                self._verifying_key, HEAD_PURPOSE, head.message(), head.signature):
            raise LedgerIntegrityError("the ledger head's signature does not verify (the ledger was cut short or "
                                       "rewritten without the ledger key); the gate stays shut")
        if self.metadata.ledger_id is not None:
            self._witness.record(self.metadata.ledger_id, self._genesis_hash, head.sequence, head.entry_hash)

    def _begin(self, tx: Any) -> None:
        """Inside an exclusive transaction: the same ledger, verified up to its head."""
        if tx.metadata.hash != self._genesis_hash:
            raise LedgerIntegrityError("the ledger file now holds another ledger (its genesis changed); the gate "
                                       "stays shut")
        known = self._state.count
        if known == 0:
            self._catch_up(tx.entries_after(0))
        else:
            # The entry this gate last wrote or read must still be there, unchanged: a tail cut
            # behind a running gate (the head left in place) would otherwise go unseen, and the
            # next entry would be chained onto a hole.
            tail = tx.entries_after(known - 1)
            last = self._state.last
            if not tail or tail[0].sequence != known or tail[0].to_dict() != last.to_dict():
                raise LedgerIntegrityError(f"entry #{known}, which this gate has already read, is gone from the "
                                           "ledger or changed (the ledger was cut short or edited); the gate "
                                           "stays shut")
            self._catch_up(tail[1:])
        self._check_head(tx.head())

    # -- writing ----------------------------------------------------------------------------
    def _validate(self, event: DpEvent, purpose: str, generator: str | None, noise_source: str) -> None:
        _text(purpose, "purpose")
        for leaf, _ in event.leaves():
            if leaf.relation is not self.relation:
                raise PolicyViolation(
                    f"event {leaf.kind} was analysed under {leaf.relation.value}, but the policy's relation "
                    f"is {self.relation.value}"
                )
        _text(generator, "generator", optional=True)
        if not self.policy.allows_generator(generator):
            raise PolicyViolation(
                f"generator {generator!r} is not allowed by the policy (allowed: {', '.join(self.policy.generators)})"
            )
        if noise_source not in NOISE_SOURCES:
            raise PolicyViolation(f"noise_source must be one of {NOISE_SOURCES}, got {noise_source!r}")
        if noise_source == "seeded-test" and not self.policy.allow_seeded_noise:
            raise PolicyViolation("seeded-test noise is reproducible and not private; the policy does not allow it")

    @staticmethod
    def _actor(actor: str | None) -> str:
        if actor is None:
            try:
                return getpass.getuser()
            except Exception:  # noqa: BLE001 - no user database in some containers
                return "unknown"
        return _text(actor, "actor")

    def _write(self, tx: Any, entry: Entry) -> Entry:
        entry_hash = entry.compute_hash()
        signature = "" if self._key is None else sign(self._key, ENTRY_PURPOSE, entry_hash.encode())
        new_head = Head(entry.sequence, entry_hash, "")
        if self._key is not None:
            new_head = Head(entry.sequence, entry_hash, sign(self._key, HEAD_PURPOSE, new_head.message()))
        entry = Entry(**{**entry.to_dict(), "entry_hash": entry_hash, "signature": signature})
        tx.append(entry, new_head)
        return entry

    def _common(self) -> dict[str, Any]:
        md = self.metadata
        state = self._state
        return dict(sequence=state.count + 1, dataset_fingerprint=self.dataset_fingerprint,
                    relation=self.relation.value, filter_order=self.filter.order, filter_budget=self.filter.budget,
                    delta=md.delta, policy_sha256=md.policy_sha256,
                    prev_hash=state.last.entry_hash if state.last is not None else self._genesis_hash,
                    ledger_key_id=None if self._key is None else md.ledger_key_id, insecure=self._key is None,
                    ledger_id=md.ledger_id,
                    timestamp=max(coarse_timestamp(), state.last.timestamp if state.last else ""))

    def _commit(self, entry: Entry) -> Receipt:
        """Fold the committed entry into the state (it was verified as it was built)."""
        problems = self._state.apply(entry)
        if problems:  # pragma: no cover - would be a bug in the gate itself
            raise LedgerIntegrityError(f"the gate wrote an entry it cannot verify: {problems[0]}")
        if self.metadata.ledger_id is not None:
            self._witness.record(self.metadata.ledger_id, self._genesis_hash, entry.sequence, entry.entry_hash)
        return Receipt.of_entry(entry)

    @_serialised
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
        code_sha256: str | None = None,
        request_id: str | None = None,
        actor_cap: float | None = None,
    ) -> Receipt:
        """Check the policy and the filter, write the signed entry, then return its receipt.

        Several events are recorded as one entry (their composition).  `run_id` groups
        the charges of one run for the policy's per-run cap (a charge without one is a
        run of its own).  `code_sha256` names caller-supplied code that will read the
        rows (only where the policy says allow_custom_code).  Raises PolicyViolation or
        BudgetExceeded, writing nothing, when the charge is refused.

        `request_id` is the caller's idempotency key: when the ledger already holds a
        charge of this actor under it, that charge's receipt is returned and nothing is
        written (the same charge asked twice, e.g. a retry after a lost response); the
        same key with a different charge raises RequestConflict.  Whether the charge's
        output was released is the caller's to ask (`lifecycle`).  `actor_cap` (ε at the
        ledger's δ) caps what this actor may spend on the ledger in all (a service's
        per-person cap); over it, ActorCapExceeded and nothing written.
        """
        event = _as_event(events)
        self._validate(event, purpose, generator, noise_source)
        params = normalise_json_value(dict(parameters or {}), field="parameters")
        actor = self._actor(actor)
        run_id = _text(run_id, "run_id", optional=True)
        if code_sha256 is not None:
            if not is_sha256_hex(code_sha256):
                raise PolicyViolation("code_sha256 must be a SHA-256 digest (64 lower-case hex digits)")
            if not self.policy.allow_custom_code:
                raise PolicyViolation("caller-supplied code may not read the rows: the policy does not set "
                                      "allow_custom_code = true")
        try:
            cost = self.filter.cost(event)
        except ArithmeticError:  # e.g. σ = 1e-320: σ² underflows to 0 and ρ = Δ²/(2σ²) divides by it
            cost = math.inf
        if not (math.isfinite(cost) and cost >= 0):
            raise PolicyViolation(f"event has no finite RDP at order {self.filter.order}: cost {cost!r}")
        delta_cost = self.filter.delta_cost(event)
        curve = [float(x) for x in event_rdp(event, self._orders)]
        rho = math.fsum(split(event).rho_terms)
        if request_id is not None and not is_request_id(request_id):
            raise PolicyViolation("request_id must be 8-128 characters of A-Z a-z 0-9 . _ : -")
        cap = self._actor_filter(actor_cap)

        with self._store.exclusive() as tx:
            self._begin(tx)
            state = self._state
            if request_id is not None and (actor, request_id) in state.requests:
                return self._same_request(state.requests[(actor, request_id)], event=event.to_json(),
                                          purpose=purpose.strip(), generator=generator, parameters=params,
                                          run_id=run_id, noise_source=noise_source, code_sha256=code_sha256)
            self._check_run_cap(event, run_id)
            if cap is not None:
                self._check_actor_cap(cap, actor, event)
            if not self.filter.admits(state.costs, cost):
                raise self._exceeded(cost)
            if not self.filter.admits_delta(state.delta_costs, delta_cost):
                raise self._delta_exceeded(cost, delta_cost)
            costs = [*state.costs, cost]
            accountant = state.accountant.copy()
            accountant.compose(event)
            entry = Entry(
                **self._common(), actor=actor, purpose=purpose.strip(), generator=generator, parameters=params,
                run_id=run_id, event=event.to_json(), noise_source=noise_source, cost=cost, rho=rho, curve=curve,
                filter_total=self.filter.total(costs), epsilon_filter=self.filter.epsilon_spent(costs),
                epsilon_curve=full_curve_epsilon(accountant, self.metadata.delta), kind="charge", refs=[],
                commitment=None, code_sha256=code_sha256, request_id=request_id,
            )
            entry = self._write(tx, entry)
        # Committed: only now does the caller learn it may run the mechanism.
        return self._commit(entry)

    @staticmethod
    def _same_request(existing: Entry, **asked: Any) -> Receipt:
        """The receipt of a charge asked again under its request id, if it is the same charge."""
        differs = sorted(k for k, v in asked.items() if getattr(existing, k) != v)
        if differs:
            raise RequestConflict(f"request_id {existing.request_id!r} was charged before (#{existing.sequence}) "
                                  f"with another {', '.join(differs)}: a request id names one request; nothing "
                                  "was written")
        return Receipt.of_entry(existing)

    def _actor_filter(self, actor_cap: float | None) -> RenyiFilter | None:
        if actor_cap is None:
            return None
        if isinstance(actor_cap, bool) or not isinstance(actor_cap, (int, float)) or not (
                math.isfinite(actor_cap) and actor_cap > 0):
            raise PolicyViolation(f"actor_cap must be a finite epsilon > 0, got {actor_cap!r}")
        # A filter of its own at the cap's own optimal order (any fixed order is sound; the
        # ledger's α*, chosen for the whole budget, can admit nothing at a much smaller cap).
        return RenyiFilter(float(actor_cap), self.metadata.delta, delta_reserve=self.filter.delta_reserve)

    def _check_actor_cap(self, cap: RenyiFilter, actor: str, event: DpEvent) -> None:
        costs = [cap.cost(e) for e in self._state.actor_events.get(actor, [])]
        cost = cap.cost(event)
        if not cap.admits(costs, cost):
            remaining = cap.remaining(costs)
            raise ActorCapExceeded(
                f"{actor!r} has reached their cap on this dataset: this charge costs {cost:.6g} (RDP at order "
                f"{cap.order:.4g}), {remaining:.6g} of their {cap.budget:.6g} remains (epsilon {cap.epsilon:g} at "
                f"delta {cap.delta:g}); nothing was written",
                requested=cost, remaining=remaining, budget=cap.budget, order=cap.order,
                epsilon_spent=cap.epsilon_spent(costs), epsilon_budget=cap.epsilon, delta=cap.delta)

    @_serialised
    def lifecycle(self, receipt: Receipt) -> str:
        """"charged", "open" or "released": where the charge `receipt` names stands (a fresh,
        verified read).  Raises InvalidReceipt for a receipt of another ledger or not a charge."""
        self._check_own(receipt)
        if not receipt.is_charge:
            raise InvalidReceipt(f"receipt #{receipt.sequence} is a {receipt.kind} entry, not a charge")
        self._sync()
        if self._state.charge_hashes.get(receipt.sequence) != receipt.entry_hash:
            raise InvalidReceipt(f"receipt #{receipt.sequence} names a charge this ledger does not hold")
        return self._state.lifecycle[receipt.sequence]

    @_serialised
    def charge_receipt(self, actor: str, request_id: str) -> Receipt | None:
        """The receipt of the charge `actor` made under `request_id`, or None (a fresh read)."""
        self._sync()
        entry = self._state.requests.get((actor, request_id))
        return None if entry is None else Receipt.of_entry(entry)

    @_serialised
    def release_receipt(self, charge: Receipt) -> Receipt | None:
        """The receipt of the release entry that closed `charge`, or None while it is not
        released (a fresh, verified read; what a service hands back on a retried request)."""
        if self.lifecycle(charge) != "released":
            return None
        stored = self._store.entry(self._state.releases[charge.sequence])
        if stored is None:  # pragma: no cover - the chain was verified up to its head just now
            raise LedgerIntegrityError("the ledger lost a release entry it held; the gate stays shut")
        return Receipt.of_entry(stored)

    @_serialised
    def check_actor_cap(self, actor: str, events: DpEvent | Sequence[DpEvent], actor_cap: float) -> None:
        """Raise ActorCapExceeded unless `actor` could still be charged `events` under
        `actor_cap` (a service checks a whole run this way before its first charge)."""
        event = _as_event(events)
        cap = self._actor_filter(actor_cap)
        self._sync()
        self._check_actor_cap(cap, self._actor(actor), event)

    @_serialised
    def actor_spent(self, actor: str, actor_cap: float | None = None) -> dict[str, Any]:
        """What `actor`'s charges add up to: their number, and with a cap the ε spent and left
        under it (a fresh, verified read)."""
        self._sync()
        events = self._state.actor_events.get(actor, [])
        out: dict[str, Any] = {"charges": len(events)}
        if actor_cap is not None:
            cap = self._actor_filter(actor_cap)
            costs = [cap.cost(e) for e in events]
            out.update(cap_epsilon=cap.epsilon, epsilon_spent=cap.epsilon_spent(costs),
                       fraction_used=cap.total(costs) / cap.budget)
        return out

    @_serialised
    def _lifecycle_entry(self, kind: str, charges: Sequence[Receipt], commitment: str | None, *, purpose: str,
                         generator: str | None, run_id: str | None, actor: str | None,
                         parameters: Mapping[str, Any] | None) -> Receipt:
        if commitment is not None and not is_sha256_hex(commitment):
            raise ValueError("a commitment is a SHA-256 digest: 64 lower-case hex digits")
        charges = list(charges)
        if not charges:
            raise InvalidReceipt(f"a {kind} entry needs the receipt(s) of the charge(s) it refers to")
        if len({getattr(r, "sequence", None) for r in charges}) != len(charges):
            # Refused before writing: every reader refuses an entry naming a charge twice, so
            # writing one would keep the gate shut for ever (it was written, then found bad).
            raise InvalidReceipt(f"a {kind} entry names each charge once")
        for r in charges:
            self._check_own(r)
            if not r.is_charge:
                raise InvalidReceipt(f"receipt #{r.sequence} is a {r.kind} entry, not a charge")
        params = normalise_json_value(dict(parameters or {}), field="parameters")
        first = charges[0]
        with self._store.exclusive() as tx:
            self._begin(tx)
            state = self._state
            for r in charges:
                if state.charge_hashes.get(r.sequence) != r.entry_hash:
                    raise InvalidReceipt(f"receipt #{r.sequence} names a charge this ledger does not hold")
                lifecycle = state.lifecycle.get(r.sequence)
                if kind == "open" and lifecycle != "charged":
                    raise InvalidReceipt(f"receipt #{r.sequence} was already {lifecycle}: a receipt buys one release")
                if kind == "release" and lifecycle == "released":
                    raise InvalidReceipt(f"receipt #{r.sequence} was already released: a receipt buys one release")
                if kind == "seal" and (lifecycle != "released" or r.sequence in state.sealed):
                    raise InvalidReceipt(f"receipt #{r.sequence} cannot be sealed: it is "
                                         f"{'already sealed' if r.sequence in state.sealed else lifecycle}")
            entry = Entry(
                **self._common(), actor=self._actor(actor), purpose=_text(purpose, "purpose"),
                generator=first.generator if generator is None else generator,
                parameters=params, run_id=first.run_id if run_id is None else run_id, event=None,
                noise_source=first.noise_source, cost=0.0, rho=0.0, curve=[], filter_total=state.total,
                epsilon_filter=state.epsilon_filter, epsilon_curve=state.epsilon_curve, kind=kind,
                refs=[r.sequence for r in charges], commitment=commitment, code_sha256=None,
            )
            entry = self._write(tx, entry)
        return self._commit(entry)

    def open_release(self, charge: Receipt, *, purpose: str | None = None, actor: str | None = None,
                     parameters: Mapping[str, Any] | None = None) -> Receipt:
        """Record that a multi-step release (a DP-SGD or PATE session) starts: the charge is
        consumed; its `release` later commits to everything the session released."""
        return self._lifecycle_entry("open", [charge], None, purpose=purpose or f"open #{charge.sequence}",
                                     generator=None, run_id=None, actor=actor, parameters=parameters)

    def release(self, charge: Receipt, commitment: str, *, purpose: str | None = None, actor: str | None = None,
                parameters: Mapping[str, Any] | None = None) -> Receipt:
        """Record that the output the charge paid for leaves the table, committing to its
        SHA-256.  Refused (InvalidReceipt, nothing written) if the charge was released before."""
        return self._lifecycle_entry("release", [charge], commitment,
                                     purpose=purpose or f"release of #{charge.sequence}", generator=None,
                                     run_id=None, actor=actor, parameters=parameters)

    def seal(self, charges: Sequence[Receipt], commitment: str, *, purpose: str, generator: str | None = None,
             run_id: str | None = None, actor: str | None = None,
             parameters: Mapping[str, Any] | None = None) -> Receipt:
        """Seal a fitted model: a signed entry over the SHA-256 of its whole state, naming the
        (released) charges that paid for it.  Each charge pays for one sealed model."""
        return self._lifecycle_entry("seal", charges, commitment, purpose=purpose, generator=generator,
                                     run_id=run_id, actor=actor, parameters=parameters)

    @_serialised
    def confirm(self, receipt: Receipt) -> None:
        """A cheap check before output leaves: the ledger is still the one opened, it still
        holds `receipt`'s entry, and it was not rolled back.  Raises LedgerIntegrityError.

        Called before every step's output of a session: it compares hashes only (the receipt
        came from this gate and was verified when it was written)."""
        if not isinstance(receipt, Receipt) or receipt.ledger_id != self.metadata.ledger_id:
            raise InvalidReceipt("confirm() takes a receipt this gate wrote")
        try:
            md = self._store.metadata()
            head, _ = self._store.tip()
            stored = self._store.entry(receipt.sequence)
        except Exception as exc:  # noqa: BLE001 - any failure to read keeps the gate shut
            raise LedgerIntegrityError(f"the ledger cannot be read ({exc}); nothing is released") from None
        if md.hash != self._genesis_hash:
            raise LedgerIntegrityError("the ledger file now holds another ledger; nothing is released")
        if head.sequence < self._state.count or stored is None or stored.entry_hash != receipt.entry_hash:
            raise LedgerIntegrityError(f"the ledger no longer holds entry #{receipt.sequence} (it was rolled back or "
                                       "replaced); nothing is released")

    def _check_run_cap(self, event: DpEvent, run_id: str | None) -> None:
        rf = self.run_filter
        if rf is None:
            return
        previous = self._state.events_of_run(run_id)
        costs = [rf.cost(e) for e in previous]
        new = rf.cost(event)
        if not rf.admits(costs, new):
            remaining = rf.remaining(costs)
            raise RunCapExceeded(
                f"per-run cap exceeded for {'run ' + repr(run_id) if run_id else 'this charge (a run of its own)'}: "
                f"this charge costs {new:.6g} (RDP at order {rf.order:.4g}), the run has {remaining:.6g} of "
                f"{rf.budget:.6g} left (max_epsilon_per_run = {rf.epsilon} at delta = {rf.delta}); nothing was written",
                requested=new, remaining=remaining, budget=rf.budget, order=rf.order,
                epsilon_spent=rf.epsilon_spent(costs), epsilon_budget=rf.epsilon, delta=rf.delta,
            )

    def _exceeded(self, cost: float) -> BudgetExceeded:
        f = self.filter
        costs = self._state.costs
        remaining = f.remaining(costs)
        spent = f.epsilon_spent(costs)
        alone = max(0.0, float(epsilon_at_order(f.order, cost, f.delta)))
        from .words import budget_words

        words = budget_words(f, costs, max_epsilon_per_run=self.policy.max_epsilon_per_run)
        return BudgetExceeded(
            f"privacy budget exceeded: this charge is about epsilon {alone:.4g} on its own at delta {f.delta:g}, "
            f"more than remains: {words.headline}; {words.next_run}; nothing was written "
            f"(detail: RDP at order {f.order:.4g}: cost {cost:.6g}, {remaining:.6g} of {f.budget:.6g} remains; "
            f"epsilon spent so far {spent:.4g} of {f.epsilon:g}, filter guarantee)",
            requested=cost, remaining=remaining, budget=f.budget, order=f.order, epsilon_spent=spent,
            epsilon_budget=f.epsilon, delta=f.delta,
        )

    def _delta_exceeded(self, cost: float, delta_cost: float) -> BudgetExceeded:
        f = self.filter
        costs, delta_costs = self._state.costs, self._state.delta_costs
        remaining = f.remaining_delta(delta_costs)
        if f.delta_reserve == 0:
            why = ("the policy sets no budget.delta_reserve (it is 0), so no approximate mechanism "
                   "can be paid for; the officer must set delta_reserve (0 <= delta_reserve < delta)")
        else:
            why = (f"only {remaining:.6g} of the policy's budget.delta_reserve = {f.delta_reserve:g} remains "
                   f"(delta spent so far {sum_up(delta_costs):.6g})")
        return BudgetExceeded(
            f"privacy budget exceeded: this charge has an approximation part delta = {delta_cost:.6g} "
            f"(e.g. thresholded key discovery), but {why}; nothing was written",
            requested=cost, remaining=f.remaining(costs), budget=f.budget, order=f.order,
            epsilon_spent=f.epsilon_spent(costs), epsilon_budget=f.epsilon, delta=f.delta,
            delta_requested=delta_cost, delta_remaining=remaining, delta_reserve=f.delta_reserve,
        )

    # -- receipts -------------------------------------------------------------------------
    def _check_own(self, receipt: Receipt) -> None:
        if not isinstance(receipt, Receipt):
            raise InvalidReceipt(f"expected a Receipt, got {type(receipt).__name__}")
        if receipt.ledger_id != self.metadata.ledger_id:
            raise InvalidReceipt(f"receipt #{receipt.sequence} is from ledger {receipt.ledger_id}, not this ledger "
                                 f"{self.metadata.ledger_id}")
        if self._verifying_key is not None:
            receipt.verify(self._verifying_key)
        elif receipt.entry().compute_hash() != receipt.entry_hash:
            raise InvalidReceipt(f"receipt #{receipt.sequence}: its fields do not hash to its entry_hash")

    @_serialised
    def verify_receipt(self, receipt: Receipt) -> None:
        """Raise InvalidReceipt unless the receipt is signed by this ledger's key and names
        an entry, with the same hash, that this ledger holds (a fresh, verified read)."""
        if self._verifying_key is None:
            raise InvalidReceipt("this ledger has no signing key (insecure development mode)")
        self._check_own(receipt)
        if not fingerprints_match(receipt.dataset_fingerprint, self.dataset_fingerprint):
            raise InvalidReceipt(f"receipt #{receipt.sequence} is for another dataset")
        self._sync()
        stored = self._store.entry(receipt.sequence)
        if stored is None or stored.entry_hash != receipt.entry_hash or stored.to_dict() != receipt.entry().to_dict():
            raise InvalidReceipt(f"receipt #{receipt.sequence} does not match the ledger's entry")
