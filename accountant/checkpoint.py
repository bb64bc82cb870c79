"""The officer's signed checkpoints: a head published outside the ledger.

A ledger can be replaced by an older copy of itself; every signature in the
copy is valid.  What catches it is a record kept elsewhere.  The officer signs
the current head — ledger id, genesis hash, sequence number, entry hash, a
minute-resolution time — and publishes the checkpoint; `dpsynth ledger verify
--checkpoint FILE` then fails on any ledger that does not still hold that
entry at that position (rolled back, rewritten or re-initialised).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from .keys import Ed25519PrivateKey, Ed25519PublicKey, key_id, sign, signature_is_valid
from .ledger.entry import LedgerMetadata, coarse_timestamp
from .ledger.hashing import canonical_bytes
from .ledger.store import LedgerSnapshot

__all__ = ["Checkpoint", "make_checkpoint", "read_checkpoint", "write_checkpoint", "check_checkpoint",
           "CHECKPOINT_PURPOSE"]

CHECKPOINT_PURPOSE = "ledger-checkpoint-v1"


@dataclass(frozen=True)
class Checkpoint:
    ledger_id: str
    genesis_hash: str
    sequence: int
    entry_hash: str
    created: str
    officer_key_id: str
    signature: str = ""

    def body(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("signature")
        return d

    def message(self) -> bytes:
        return canonical_bytes(self.body())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Checkpoint":
        names = set(cls.__dataclass_fields__)
        if not isinstance(data, Mapping) or set(data) != names:
            raise ValueError(f"a checkpoint has exactly the fields {sorted(names)}")
        if not isinstance(data["sequence"], int) or isinstance(data["sequence"], bool):
            raise ValueError("checkpoint sequence must be an integer")
        for k in names - {"sequence"}:
            if not isinstance(data[k], str):
                raise ValueError(f"checkpoint {k} must be a string")
        return cls(**dict(data))


def make_checkpoint(snapshot: LedgerSnapshot, officer_key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the snapshot's head with the officer's key."""
    md = snapshot.metadata
    if md.ledger_id is None:
        raise ValueError("format-1 ledgers have no ledger id to checkpoint")
    cp = Checkpoint(ledger_id=md.ledger_id, genesis_hash=md.hash, sequence=snapshot.head.sequence,
                    entry_hash=snapshot.head.entry_hash, created=coarse_timestamp(),
                    officer_key_id=key_id(officer_key))
    return Checkpoint(**{**cp.to_dict(), "signature": sign(officer_key, CHECKPOINT_PURPOSE, cp.message())})


def write_checkpoint(cp: Checkpoint, path: str | os.PathLike) -> Path:
    p = Path(path)
    p.write_text(json.dumps(cp.to_dict(), indent=2, sort_keys=True) + "\n")
    return p


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    try:
        return Checkpoint.from_dict(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"checkpoint {path} is not JSON: {exc}") from None
    except RecursionError:  # crafted: nested deeper than the parser recurses
        raise ValueError(f"checkpoint {path} is not a checkpoint (nested too deeply)") from None


def check_checkpoint(cp: Checkpoint, metadata: LedgerMetadata, officer: Ed25519PublicKey | None) -> list[str]:
    """Problems with the checkpoint itself (signature, ledger); whether the ledger still
    holds its entry is the verifier's check."""
    problems = []
    if cp.ledger_id != metadata.ledger_id:
        problems.append(f"the checkpoint is for ledger {cp.ledger_id}, not this ledger {metadata.ledger_id}")
    elif cp.genesis_hash != metadata.hash:
        problems.append("the checkpoint names another genesis for this ledger id: the ledger was re-initialised")
    if officer is None:
        problems.append("no officer key to check the checkpoint's signature")
    elif cp.officer_key_id != key_id(officer) or not signature_is_valid(officer, CHECKPOINT_PURPOSE, cp.message(),
                                                                         cp.signature):
        problems.append("the checkpoint's signature does not verify under the officer's key")
    return problems
