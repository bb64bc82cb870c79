"""What paid for a fitted model, and the seal that binds the model to it.

A fit leaves a trail in the ledger: for each measurement a `charge` (what was
spent), its `release` (the SHA-256 of the noisy output that left the table;
sessions have an `open` first), and at the end one `seal` entry over the
SHA-256 of the model's whole state (`state_digest`), naming every charge.  A
fitted model carries the receipts of all of them and the ledger's genesis.

`Provenance.verify` is what `sample`, `load` and `dpsynth model verify` run:
under a TRUSTED ledger key (never one from the file itself) every receipt's
signature and hash; the seal's commitment against the digest of the state as
it is now; that the seal names exactly the model's charges, each released
once, whose events are exactly the plan the model says it ran; and, where the
model keeps its noisy outputs, that each one hashes to its release commitment.
Edit a weight, swap a noisy marginal for an exact one, or graft receipts from
another run, and it fails.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from accountant.errors import InsecureModeWarning, InvalidReceipt
from accountant.keys import Ed25519PublicKey
from accountant.receipt import Receipt

__all__ = ["Provenance", "state_digest", "canonical_meta", "InvalidReceipt"]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def canonical_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a model's metadata (what a file stores and a reader gets back)."""
    return json.loads(json.dumps(meta, sort_keys=True, default=_json_default, allow_nan=False))


def state_digest(meta: Mapping[str, Any], arrays: Mapping[str, Any]) -> str:
    """SHA-256 of a model's whole state: its metadata as canonical JSON, then every array
    by name, dtype, shape and little-endian bytes."""
    h = hashlib.sha256(b"dpsynth/model-state-v1\0")
    h.update(json.dumps(canonical_meta(meta), sort_keys=True, separators=(",", ":")).encode("utf-8"))
    for name in sorted(arrays):
        a = arrays[name]
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        a = np.ascontiguousarray(np.asarray(a))
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        h.update(f"\0{name}\0{a.dtype.str}\0{list(a.shape)}\0".encode())
        h.update(hashlib.sha256(a.tobytes()).digest())
    return h.hexdigest()


@dataclass
class Provenance:
    """The receipts of a fit (charges, opens, releases), its seal and the ledger's genesis."""

    receipts: list[Receipt] = field(default_factory=list)
    seal: Receipt | None = None
    genesis: dict | None = None
    trusted_key: Ed25519PublicKey | None = field(default=None, repr=False)  # never saved
    insecure: bool = False                                                   # never saved

    @property
    def charges(self) -> list[Receipt]:
        return [r for r in self.receipts if r.is_charge]

    def events(self) -> list[str]:
        return [r.event for r in self.charges]

    def all_receipts(self) -> list[Receipt]:
        return [*self.receipts, *([self.seal] if self.seal is not None else [])]

    def releases(self) -> dict[int, Receipt]:
        """charge sequence -> its release receipt."""
        return {r.refs[0]: r for r in self.receipts if r.kind == "release"}

    # -- the check -------------------------------------------------------------------------
    def verify(self, digest: str, *, expected_events: Sequence[str],
               release_digests: Mapping[int, str] | None = None, key: Ed25519PublicKey | None = None) -> None:
        """Raise InvalidReceipt unless everything in the module docstring holds."""
        key = key if key is not None else self.trusted_key
        seal = self.seal
        if seal is None:
            raise InvalidReceipt("the model carries no seal: it was not fitted through a gate")
        if not self.receipts:
            raise InvalidReceipt("the model carries no receipts")
        if key is None:
            if not self.insecure:
                raise InvalidReceipt("no trusted ledger key to check the model's receipts against")
            warnings.warn("INSECURE DEVELOPMENT MODE: this model's receipts are unsigned", InsecureModeWarning,
                          stacklevel=3)
            for r in self.all_receipts():
                if r.entry().compute_hash() != r.entry_hash:
                    raise InvalidReceipt(f"receipt #{r.sequence}: its fields do not hash to its entry_hash")
        else:
            for r in self.all_receipts():
                r.verify(key)
        ids = {r.ledger_id for r in self.all_receipts()}
        datasets = {r.dataset_fingerprint for r in self.all_receipts()}
        if len(ids) != 1 or len(datasets) != 1:
            raise InvalidReceipt("the model's receipts come from more than one ledger or dataset")
        # The receipts must be entries of the ledger whose genesis the file carries (the genesis
        # by which an officer vouches for the ledger key).  Otherwise whoever holds one ledger key
        # of an officer could relabel receipts as entries of the officer's other ledgers (their
        # id and dataset), re-sign them, and the file would verify as sealed by that ledger.
        genesis = self._genesis_metadata()
        if (ids != {genesis.ledger_id} or datasets != {genesis.dataset_fingerprint}
                or {r.ledger_key_id for r in self.all_receipts()} != {genesis.ledger_key_id}):
            raise InvalidReceipt("the model's receipts are not entries of the ledger whose genesis it carries "
                                 "(another ledger id, dataset or ledger key)")
        if seal.kind != "seal":
            raise InvalidReceipt(f"the seal is a {seal.kind} entry, not a seal")
        if seal.commitment != digest:
            raise InvalidReceipt("the model's state does not match its seal: weights, potentials, noisy answers or "
                                 "settings were changed after the fit")
        charges = self.charges
        if [r.event for r in charges] != list(expected_events):
            raise InvalidReceipt("the model's receipts do not pay for the measurements it says it made")
        if list(seal.refs) != [r.sequence for r in charges]:
            raise InvalidReceipt("the seal names other charges than the receipts the model carries")
        seqs = [r.sequence for r in self.receipts]
        if len(set(seqs)) != len(seqs) or not all(s < seal.sequence for s in seqs):
            raise InvalidReceipt("the model's receipts repeat an entry or come after its seal")
        releases: dict[int, list[str]] = {}
        for r in self.receipts:
            if r.kind in ("open", "release"):
                if len(r.refs) != 1:
                    raise InvalidReceipt(f"receipt #{r.sequence} refers to more than one charge")
                releases.setdefault(r.refs[0], []).append(r.kind)
            elif r.kind != "charge":
                raise InvalidReceipt(f"receipt #{r.sequence} is a {r.kind} entry, which no fit writes")
        for c in charges:
            if releases.get(c.sequence) not in (["release"], ["open", "release"]):
                raise InvalidReceipt(f"charge #{c.sequence} was not released exactly once")
        if release_digests is not None:
            by_charge = self.releases()
            for seq, d in release_digests.items():
                rel = by_charge.get(seq)
                if rel is None or rel.commitment != d:
                    raise InvalidReceipt(f"the noisy output the model keeps for charge #{seq} is not the one the "
                                         "ledger's release committed to")

    def _genesis_metadata(self) -> Any:
        from accountant.ledger.entry import LedgerMetadata

        try:
            return LedgerMetadata.from_dict(self.genesis)
        except (TypeError, ValueError, AttributeError):
            raise InvalidReceipt("the model carries no readable ledger genesis") from None

    # -- files ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"receipts": [r.to_dict() for r in self.receipts], "genesis": self.genesis}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], seal: Mapping[str, Any] | None) -> "Provenance":
        if not isinstance(data, Mapping) or not isinstance(data.get("receipts"), list):
            raise InvalidReceipt("the model's provenance is malformed")
        return cls([Receipt.from_dict(r) for r in data["receipts"]],
                   None if seal is None else Receipt.from_dict(seal), data.get("genesis"))
