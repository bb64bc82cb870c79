"""The audit's own ledger: every audit fit goes through the real gate, on tables the audit
built, charged to a ledger made for the audit in a temporary folder.

An audit must exercise the code path a data holder's run takes — a `PrivateTable` bound
to a signed policy, every measurement charged before it is computed, the model sealed
and its receipts checked when it samples — or it audits something else.  But it must
never touch governed data or spend a governed budget: its tables are the made-up worst-
case pair (`worlds.py`), and each world gets a fresh officer key, ledger key, dataset key
and signed policy (real Ed25519 keys and a real SQLite ledger) whose budget is large enough for all the fits it will carry.  The policy's
dataset name says it is an audit ledger; it is deleted with its folder when the fits are
done (their charges are summarised in the audit's results).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AuditLedger", "audit_gate", "AUDIT_BUDGET", "AUDIT_DATASET"]

AUDIT_BUDGET = 1e6  # total ε of an audit ledger: room for every fit of a chunk, never a governed budget
AUDIT_OFFICER = "dpsynth audit (no governed data)"
AUDIT_DATASET = "dpsynth-audit: a made-up worst-case table"


@dataclass
class AuditLedger:
    """An open gate on an audit ledger, and where its files are."""

    directory: Path
    gate: Any
    dataset_key: bytes
    policy_path: Path
    ledger_path: Path


def audit_gate(directory: str | os.PathLike, frame: Any, schema: Any, *, delta: float, relation: str,
               max_records: int, seeded: bool) -> AuditLedger:
    """A fresh gate governing `frame` only: officer, ledger and dataset keys, a signed policy
    naming the audit, and a ledger, all under `directory` (which must be new or empty).

    `seeded` lets the policy allow seeded noise (reproducible audits in tests); otherwise it
    refuses it and every fit draws secure noise."""
    from accountant.fingerprint import fingerprint_table, generate_dataset_key
    from accountant.gate import Gate, init_ledger
    from accountant.keys import load_private_key, write_keypair
    from accountant.policy import render_policy, sign_policy_file

    d = Path(directory)
    if d.exists() and any(d.iterdir()):
        raise FileExistsError(f"{d}: an audit ledger needs a fresh folder")
    d.mkdir(parents=True, exist_ok=True)
    dataset_key = generate_dataset_key()
    officer_key, _ = write_keypair(d, "officer")
    ledger_key, ledger_pub = write_keypair(d, "ledger")
    policy_path = d / "policy.toml"
    policy_path.write_text(render_policy(
        epsilon=AUDIT_BUDGET, delta=delta, relation=relation, max_records=max_records, generators=("*",),
        fingerprint=fingerprint_table(schema.validate(frame), dataset_key), allow_seeded_noise=seeded,
        officer=AUDIT_OFFICER, dataset_name=AUDIT_DATASET))
    sign_policy_file(policy_path, load_private_key(officer_key))
    ledger_path = d / "ledger.db"
    init_ledger(ledger_path, policy_path, officer_key=officer_key, ledger_key=ledger_pub)
    return AuditLedger(d, Gate.open(ledger_path, ledger_key=ledger_key), dataset_key, policy_path, ledger_path)
