"""The receipts a fitted model carries, and the check that they pay for it.

A model may only be sampled when every ledger entry that paid for it verifies:
the Ed25519 signature over the entry hash under the ledger's public key (or,
with an open gate, the entry is in the ledger), and the events the receipts
name are exactly the events the model's fit says it spent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from accountant.gate import InvalidReceipt, Receipt
from accountant.keys import public_key_from_pem

__all__ = ["ReceiptBook", "InvalidReceipt"]


@dataclass
class ReceiptBook:
    """Receipts in charge order, with the ledger key that signed them."""

    receipts: list[Receipt] = field(default_factory=list)
    ledger_public_key_pem: str | None = None

    def add(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)

    def events(self) -> list[str]:
        return [r.event for r in self.receipts]

    def verify(self, expected_events: Sequence[str] | None = None, gate: Any = None) -> None:
        """Raise InvalidReceipt unless the receipts verify and pay for `expected_events`."""
        if not self.receipts:
            raise InvalidReceipt("the model carries no receipts")
        if expected_events is not None and list(expected_events) != self.events():
            raise InvalidReceipt("the model's receipts do not pay for the measurements it was fitted on")
        if gate is not None:
            for r in self.receipts:
                gate.verify_receipt(r)
            return
        if self.ledger_public_key_pem is None:
            raise InvalidReceipt("no ledger key to verify the receipts against (insecure ledger)")
        key = public_key_from_pem(self.ledger_public_key_pem)
        for r in self.receipts:
            r.verify(key)

    def to_dict(self) -> dict[str, Any]:
        return {"receipts": [r.to_dict() for r in self.receipts],
                "ledger_public_key": self.ledger_public_key_pem}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReceiptBook":
        return cls([Receipt.from_dict(r) for r in data["receipts"]], data.get("ledger_public_key"))

    @classmethod
    def of(cls, receipts: Iterable[Receipt], ledger_public_key_pem: str | None) -> "ReceiptBook":
        return cls(list(receipts), ledger_public_key_pem)
