"""Receipts: copies of ledger entries, handed out only after the entry is committed.

A receipt carries every field of its entry, so the signed `entry_hash` binds all
of them: an offline check recomputes the hash from the receipt's own fields,
and a receipt whose event, cost, ε or commitment was edited no longer verifies.
It also carries the ledger id and `prev_hash` (the head the entry extended), so
an auditor holding receipts can tell a ledger that lost one of them.

A receipt is a proof, never a key: no method of dpsynth opens data for a
receipt.  The table charges and releases inside one call; the ledger records
which charge each release consumed, once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .accountant import RDPAccountant
from .errors import InvalidReceipt
from .events import NeighbouringRelation, event_from_json
from .keys import Ed25519PublicKey, key_id, signature_is_valid
from .ledger.entry import ENTRY_PURPOSE, Entry
from .ledger.plain import plain_fields
from .orders import orders_with

__all__ = ["Receipt", "receipts_epsilon", "full_curve_epsilon"]


@dataclass(frozen=True)
class Receipt:
    """Proof that an entry was recorded (see the module docstring)."""

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
    event: str | None
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
    kind: str
    refs: list
    commitment: str | None
    ledger_id: str
    code_sha256: str | None
    request_id: str | None = None     # the charge's idempotency key, when the caller gave one

    __hash__ = None  # type: ignore[assignment]  # dict and list fields

    @classmethod
    def of_entry(cls, entry: Entry) -> "Receipt":
        if entry.is_legacy:
            raise InvalidReceipt("format-1 ledger entries have no receipts of this format")
        return cls(**entry.to_dict())

    def entry(self) -> Entry:
        """The ledger entry this receipt is a copy of."""
        return Entry(**plain_fields(self))

    _OPTIONAL = ("request_id",)

    @property
    def is_charge(self) -> bool:
        return self.kind == "charge"

    def to_dict(self) -> dict[str, Any]:
        d = plain_fields(self)
        for k in self._OPTIONAL:   # absent, never null: as in the entry it copies
            if d[k] is None:
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Receipt":
        names = set(cls.__dataclass_fields__)
        required = names - set(cls._OPTIONAL)
        if not isinstance(data, Mapping) or not required <= set(data) <= names:
            raise InvalidReceipt(f"a receipt must have exactly the fields {sorted(required)} (and optionally "
                                 f"{list(cls._OPTIONAL)})")
        try:
            entry = Entry.from_dict(dict(data))
        except (TypeError, ValueError) as exc:
            raise InvalidReceipt(f"not a receipt: {exc}") from None
        return cls(**entry.to_dict())

    def verify(self, public_key: Ed25519PublicKey) -> None:
        """Check the ledger's signature over the entry hash; raises InvalidReceipt.

        `public_key` must come from somewhere you trust (pinned, a trust store, a
        genesis signed by a trusted officer), never from the file the receipt came in."""
        if self.insecure or not self.signature:
            raise InvalidReceipt(f"receipt #{self.sequence} is unsigned (insecure development mode)")
        try:
            recomputed = self.entry().compute_hash()
        except (TypeError, ValueError) as exc:
            raise InvalidReceipt(f"receipt #{self.sequence} is malformed: {exc}") from None
        if recomputed != self.entry_hash:
            raise InvalidReceipt(f"receipt #{self.sequence}: its fields do not hash to its entry_hash "
                                 "(the receipt was altered)")
        if self.ledger_key_id != key_id(public_key):
            raise InvalidReceipt(
                f"receipt #{self.sequence} was signed by {self.ledger_key_id}, not by {key_id(public_key)}"
            )
        if not signature_is_valid(public_key, ENTRY_PURPOSE, self.entry_hash.encode(), self.signature):
            raise InvalidReceipt(f"receipt #{self.sequence}: signature does not verify")


def full_curve_epsilon(accountant: RDPAccountant, delta: float) -> float:
    """ε from the whole RDP curve (tight if the runs had been fixed in advance)."""
    if not accountant.events:
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(accountant.get_epsilon(delta))


def receipts_epsilon(receipts: Sequence[Receipt], delta: float | None = None) -> float:
    """ε at `delta` (default: their policy's δ) of the events the charge receipts name,
    composed over the full RDP curve on the ledger's grid plus its filter order.

    Release and seal receipts spend nothing and are skipped.  This is what those
    charges cost as a run of their own; the ledger's filter figure is what they cost
    against the adaptive budget."""
    charges = [r for r in receipts if r.is_charge]
    if not charges:
        return 0.0
    relations = {r.relation for r in charges}
    deltas = {r.delta for r in charges}
    if len(relations) != 1 or len(deltas) != 1:
        raise InvalidReceipt("the receipts come from ledgers with different neighbouring relations or deltas")
    accountant = RDPAccountant(NeighbouringRelation(relations.pop()),
                               orders=orders_with(*{r.filter_order for r in charges}))
    for r in charges:
        accountant.compose(event_from_json(r.event))
    return full_curve_epsilon(accountant, deltas.pop() if delta is None else delta)
