"""Open a saved model of any generator, and audit what paid for it.

`load` of each generator checks a model's receipts against the ledger key stored
in the same file: that proves the file is consistent, not who signed it.  An
auditor pins the ledger's published key and, better, the ledger (or its export)
itself: `audit_model` then checks every receipt's signature and entry hash under
the pinned key and finds each receipt, field for field, as an entry of a ledger
that verifies.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from accountant.gate import InvalidReceipt, Receipt, receipts_epsilon
from accountant.keys import Ed25519PublicKey, key_id, load_public_key
from accountant.verify import load_snapshot, verify_snapshot

__all__ = ["load_model", "model_kind", "audit_model", "ModelAudit"]

_MARGINAL_FORMAT = "dpsynth.marginal/1"
_DPCTGAN_FORMAT = "dpsynth.dpctgan/1"


def model_kind(path: str | os.PathLike) -> str:
    """The generator name ("mst", "aim", "independent", "dpctgan") a model file holds."""
    import torch

    try:
        blob = torch.load(os.fspath(path), weights_only=True)
        meta = json.loads(blob["meta"])
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch's unpickler raises many kinds for a foreign file
        raise ValueError(f"{path}: not a dpsynth model file ({type(exc).__name__})") from None
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt == _MARGINAL_FORMAT:
        return str(meta["generator"])
    if fmt == _DPCTGAN_FORMAT:
        return "dpctgan"
    raise ValueError(f"{path}: not a dpsynth model file (format {fmt!r})")


def load_model(path: str | os.PathLike, *, device: str = "auto") -> Any:
    """Load a model saved by any generator (its own `load`, which re-verifies its receipts)."""
    from . import GENERATORS

    kind = model_kind(path)
    if kind not in GENERATORS:
        raise ValueError(f"{path}: holds a {kind!r} model, which this dpsynth does not know")
    return GENERATORS[kind].load(path, device=device)


@dataclass
class ModelAudit:
    """What a model file's receipts say and what was checked of them."""

    path: str
    generator: str
    receipts: list[Receipt]
    epsilon: float                 # full-curve ε of the receipts' events at the policy's δ
    delta: float
    ledger_key_id: str | None      # the key the receipts are signed with
    key_pinned: bool = False
    ledger_checked: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        seqs = [r.sequence for r in self.receipts]
        contiguous = len(seqs) > 2 and seqs == list(range(seqs[0], seqs[-1] + 1))
        named = f"#{seqs[0]}–#{seqs[-1]}" if contiguous else "#" + ", #".join(map(str, seqs))
        lines = [f"OK: {self.path} is a {self.generator!r} model paid for by {len(seqs)} ledger "
                 f"entr{'y' if len(seqs) == 1 else 'ies'} ({named}); epsilon "
                 f"{self.epsilon:.6g} at delta {self.delta:g} (full RDP curve of their events)"]
        for r in self.receipts:
            lines.append(f"  #{r.sequence} {r.entry_hash[:16]}  {r.timestamp}  {r.actor}  {r.purpose}")
        if self.key_pinned:
            lines.append(f"signatures and entry hashes checked under the pinned ledger key {self.ledger_key_id}")
        if self.ledger_checked:
            lines.append(f"every receipt is, field for field, an entry of the verified ledger {self.ledger_checked}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "generator": self.generator, "epsilon": self.epsilon, "delta": self.delta,
                "ledger_key_id": self.ledger_key_id, "key_pinned": self.key_pinned,
                "ledger_checked": self.ledger_checked, "warnings": list(self.warnings),
                "receipts": [{"sequence": r.sequence, "entry_hash": r.entry_hash, "purpose": r.purpose,
                              "event": json.loads(r.event), "cost": r.cost} for r in self.receipts]}


def audit_model(path: str | os.PathLike, *, ledger_public_key: str | os.PathLike | Ed25519PublicKey | None = None,
                ledger: str | os.PathLike | None = None,
                officer_public_key: str | os.PathLike | Ed25519PublicKey | None = None) -> ModelAudit:
    """Load the model (its receipts checked against its own stored key and its fit), then
    check them against what an auditor pins: the ledger's published key, and the ledger
    file or export.  Raises InvalidReceipt (or ValueError for an unreadable file)."""
    model = load_model(path, device="cpu")
    receipts = list(model.receipts)
    # Computed by the accountant from the receipts' events, not taken from the model's fit.
    audit = ModelAudit(os.fspath(path), model_kind(path), receipts, receipts_epsilon(receipts),
                       receipts[0].delta, receipts[0].ledger_key_id)
    pinned = None
    if ledger_public_key is not None:
        pinned = ledger_public_key if isinstance(ledger_public_key, Ed25519PublicKey) else \
            load_public_key(ledger_public_key)
        for r in receipts:
            r.verify(pinned)
        audit.key_pinned = True
        audit.ledger_key_id = key_id(pinned)
    else:
        audit.warnings.append("ledger key taken from the model file itself: pass the ledger's published key "
                              "to detect receipts signed by some other key")
    if ledger is not None:
        snapshot, problems, head_present = load_snapshot(ledger)
        if snapshot is None:
            raise InvalidReceipt(f"{ledger}: {problems[0] if problems else 'unreadable'}")
        report = verify_snapshot(snapshot, ledger_public_key=pinned, officer_public_key=officer_public_key,
                                 head_present=head_present)
        for p in problems:
            report.fail(p.sequence, p.message)
        if not report.ok:
            raise InvalidReceipt(f"{ledger} does not verify: {report.first_problem}")
        entries = snapshot.entries
        for r in receipts:
            if not 1 <= r.sequence <= len(entries) or entries[r.sequence - 1] != r.entry():
                raise InvalidReceipt(f"receipt #{r.sequence} is not an entry of {ledger}")
        audit.ledger_checked = os.fspath(ledger)
        if officer_public_key is None:
            audit.warnings.append("the ledger's policy was checked under the officer key the ledger itself "
                                  "stores: pass the officer's published key to pin it")
    return audit
