"""Model files: read and write them safely, tell their kind, and audit what paid for them.

A model file is one `torch.save` archive of plain data — JSON text for the
metadata and the seal, tensors for the arrays — read back with
`torch.load(weights_only=True)`, so a crafted file cannot run code; every
field is then checked for type before a generator rebuilds itself from it.

`audit_model` is `dpsynth model verify`: the model's own verification under a
key the auditor trusts, then (with the ledger or its export) that the ledger
verifies and holds every receipt, field for field, and (with `rederive`, for
marginal models) that re-fitting from the committed noisy measurements gives
the sealed model back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from accountant.errors import InvalidReceipt
from accountant.receipt import Receipt, receipts_epsilon
from accountant.verify import load_snapshot, verify_snapshot

__all__ = ["read_model", "write_model", "load_model", "model_kind", "audit_model", "ModelAudit", "MODEL_FORMATS"]

MODEL_FORMATS = {"dpsynth.marginal/2": None, "dpsynth.dpctgan/2": "dpctgan", "dpsynth.pategan/1": "pategan"}
_MAX_JSON = 512 * 2**20


def write_model(path: str | os.PathLike, meta: dict, arrays: dict, seal: dict) -> None:
    import torch

    from .provenance import canonical_meta

    tensors = {}
    for k, v in arrays.items():
        t = v.detach().cpu() if hasattr(v, "detach") else torch.as_tensor(np.array(v, copy=True))
        tensors[k] = t.contiguous()
    torch.save({"meta": json.dumps(canonical_meta(meta), sort_keys=True), "arrays": tensors,
                "seal": json.dumps(seal, sort_keys=True)}, os.fspath(path))


def read_model(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray], dict]:
    """(metadata, arrays, seal) of a model file, or ValueError naming what is wrong."""
    import torch

    try:
        blob = torch.load(os.fspath(path), weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch's unpickler raises many kinds for a foreign file
        raise ValueError(f"{path}: not a dpsynth model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or set(blob) != {"meta", "arrays", "seal"}:
        raise ValueError(f"{path}: not a dpsynth model file (a model file holds meta, arrays and seal)")
    meta_text, arrays, seal_text = blob["meta"], blob["arrays"], blob["seal"]
    if not isinstance(meta_text, str) or not isinstance(seal_text, str) or len(meta_text) > _MAX_JSON:
        raise ValueError(f"{path}: malformed model file (meta and seal are JSON text)")
    if not isinstance(arrays, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in arrays.items()):
        raise ValueError(f"{path}: malformed model file (arrays must map names to tensors)")
    try:
        meta = json.loads(meta_text)
        seal = json.loads(seal_text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path}: malformed model file ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or not isinstance(seal, dict):
        raise ValueError(f"{path}: malformed model file (meta and seal are JSON objects)")
    if meta.get("format") not in MODEL_FORMATS:
        raise ValueError(f"{path}: not a dpsynth model file of a known format ({meta.get('format')!r}); model "
                         "files from before the sealed format must be fitted again")
    # Plain dense tensors only: a crafted file may hold a sparse, quantised, bfloat16 or
    # requires-grad tensor, which `numpy()` refuses with TypeError / RuntimeError (a crash,
    # not the "malformed model file" every reader expects).
    out = {}
    for k, v in arrays.items():
        if v.layout is not torch.strided or v.requires_grad or v.is_quantized:
            raise ValueError(f"{path}: malformed model file (array {k!r} is not a plain dense tensor)")
        try:
            out[k] = v.numpy()
        except (TypeError, RuntimeError):
            raise ValueError(f"{path}: malformed model file (array {k!r} has an unsupported dtype)") from None
    return meta, out, seal


def model_kind(path: str | os.PathLike) -> str:
    """The generator name ("mst", "aim", "independent", "dpctgan", "pategan") a model file holds."""
    meta, _, _ = read_model(path)
    kind = MODEL_FORMATS[meta["format"]] or meta.get("generator")
    if not isinstance(kind, str):
        raise ValueError(f"{path}: malformed model file (no generator name)")
    return kind


def load_model(path: str | os.PathLike, *, trust: Any = None, device: str = "auto") -> Any:
    """Load a model saved by any generator (its own `load`, which verifies it under `trust`)."""
    from . import GENERATORS

    kind = model_kind(path)
    if kind not in GENERATORS:
        raise ValueError(f"{path}: holds a {kind!r} model, which this dpsynth does not know")
    return GENERATORS[kind].load(path, trust=trust, device=device)


@dataclass
class ModelAudit:
    """What a model file's receipts say and what was checked of them."""

    path: str
    generator: str
    receipts: list[Receipt]
    epsilon: float                 # full-curve ε of the receipts' events at the policy's δ
    delta: float
    ledger_key_id: str | None      # the trusted key the receipts were checked under
    ledger_id: str | None
    seal: Receipt | None = None
    ledger_checked: str | None = None
    rederived: str | None = None
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        charges = [r for r in self.receipts if r.is_charge]
        seqs = [r.sequence for r in charges]
        named = "#" + ", #".join(map(str, seqs)) if len(seqs) <= 6 else f"#{seqs[0]} … #{seqs[-1]}"
        lines = [f"OK: {self.path} is a {self.generator!r} model sealed by entry #{self.seal.sequence} of ledger "
                 f"{self.ledger_id}, paid for by {len(seqs)} charge{'' if len(seqs) == 1 else 's'} ({named}), each "
                 f"released once; epsilon {self.epsilon:.6g} at delta {self.delta:g} (full RDP curve of their events)"]
        for r in charges:
            lines.append(f"  #{r.sequence} {r.entry_hash[:16]}  {r.timestamp}  {r.actor}  {r.purpose}")
        lines.append(f"the model's state hashes to its seal; every receipt checked under the trusted ledger key "
                     f"{self.ledger_key_id}")
        if self.ledger_checked:
            lines.append(f"every receipt is, field for field, an entry of the verified ledger {self.ledger_checked}")
        if self.rederived:
            lines.append(self.rederived)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "generator": self.generator, "epsilon": self.epsilon, "delta": self.delta,
                "ledger_key_id": self.ledger_key_id, "ledger_id": self.ledger_id,
                "seal": None if self.seal is None else {"sequence": self.seal.sequence,
                                                        "commitment": self.seal.commitment},
                "ledger_checked": self.ledger_checked, "rederived": self.rederived, "warnings": list(self.warnings),
                "receipts": [{"sequence": r.sequence, "kind": r.kind, "entry_hash": r.entry_hash,
                              "purpose": r.purpose, "event": None if r.event is None else json.loads(r.event),
                              "commitment": r.commitment, "cost": r.cost} for r in self.receipts]}


def audit_model(path: str | os.PathLike, *, trust: Any = None, ledger: str | os.PathLike | None = None,
                officer_public_key: Any = None, rederive: bool = False) -> ModelAudit:
    """Load and verify the model under `trust`, then (optionally) against the ledger and by
    re-deriving it.  Raises InvalidReceipt (or ValueError for an unreadable file)."""
    from accountant.trust import load_trust

    anchors = load_trust(trust) if trust is not None else None
    model = load_model(path, trust=anchors, device="cpu")
    prov = model.provenance
    if officer_public_key is None and anchors is not None:
        # A trusted key that signed the model's genesis is its officer: pin it for the ledger too.
        officer_public_key = anchors.officer_of(prov.genesis)
    receipts = prov.all_receipts()
    audit = ModelAudit(os.fspath(path), model_kind(path), receipts, receipts_epsilon(receipts), receipts[0].delta,
                       None if prov.trusted_key is None else _kid(prov.trusted_key), prov.seal.ledger_id, prov.seal)
    if ledger is not None:
        snapshot, problems, head_present = load_snapshot(ledger)
        if snapshot is None:
            raise InvalidReceipt(f"{ledger}: {problems[0] if problems else 'unreadable'}")
        report = verify_snapshot(snapshot, ledger_public_key=prov.trusted_key, officer_public_key=officer_public_key,
                                 head_present=head_present, receipts=receipts)
        for p in problems:
            report.fail(p.sequence, p.message)
        if not report.ok:
            raise InvalidReceipt(f"{ledger} does not verify: {report.first_problem}")
        audit.ledger_checked = os.fspath(ledger)
        if officer_public_key is None:
            audit.warnings.append("the ledger's policy was checked under the officer key the ledger itself "
                                  "stores: pass the officer's published key to pin it")
    if rederive:
        rederive_fn = getattr(model, "rederive", None)
        if rederive_fn is None:
            raise ValueError(f"{path}: a {audit.generator!r} model keeps no noisy measurements to re-derive it from "
                             "(only marginal models do)")
        audit.rederived = rederive_fn()
    return audit


def _kid(key: Any) -> str:
    from accountant.keys import key_id

    return key_id(key)
