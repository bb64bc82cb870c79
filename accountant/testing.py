"""A real gate in a temporary directory, in one call — for tests of other modules.

    from accountant.testing import make_test_gate
    gate = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6).gate

Everything is real (Ed25519 keys, a signed policy, an officer-signed SQLite
ledger).  Pass `frame=` (a table) to get a dataset key and the keyed fingerprint
of that table in the policy; otherwise the fingerprint is a random placeholder
(and no table can be bound to the gate).  The policy allows every generator and
seeded test noise.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .events import NeighbouringRelation
from .fingerprint import FINGERPRINT_PREFIX, fingerprint_table, generate_dataset_key
from .gate import Gate, init_ledger
from .keys import write_keypair
from .policy import render_policy, sign_policy_file

__all__ = ["TestLedger", "make_test_gate", "policy_toml"]


@dataclass
class TestLedger:
    """Paths of everything made, and the open gate."""

    __test__ = False  # not a pytest test class

    directory: Path
    gate: Gate
    ledger_path: Path | str       # a file, or the postgresql:// URL given as `ledger`
    policy_path: Path
    signature_path: Path
    officer_key: Path
    officer_pub: Path
    ledger_key: Path
    ledger_pub: Path
    dataset_key: bytes | None = None

    def reopen(self) -> Gate:
        return Gate.open(self.ledger_path, ledger_key=self.ledger_key)


def make_test_gate(
    directory: str | os.PathLike | None = None,
    *,
    epsilon: float = 1.0,
    delta: float = 1e-6,
    relation: NeighbouringRelation | str = NeighbouringRelation.ADD_OR_REMOVE_ONE,
    generators: Sequence[str] = ("*",),
    order: float | None = None,
    max_epsilon_per_run: float | None = None,
    max_records: int | None = None,
    dataset_fingerprint: str | None = None,
    allow_seeded_noise: bool = True,
    delta_reserve: float | None = None,
    frame: Any = None,
    allow_custom_code: bool | None = None,
    ledger_id: str | None = None,
    ledger: str | os.PathLike | None = None,
) -> TestLedger:
    """Create officer and ledger keys, a signed policy and a ledger; open the gate.

    `delta_reserve` (policy budget.delta_reserve; None leaves the key out, i.e. 0) is the
    part of δ set aside for approximate mechanisms such as key discovery.  `ledger` is where
    the ledger goes (default: `ledger.db` in the folder; a ``postgresql://`` URL works too)."""
    d = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="dpsynth-test-ledger-"))
    d.mkdir(parents=True, exist_ok=True)
    if max_records is None:
        max_records = max(1, int(0.5 / delta))  # delta < 1/n with room to spare
    dataset_key = None
    if frame is not None:
        if dataset_fingerprint is not None:
            raise ValueError("pass frame= or dataset_fingerprint=, not both")
        dataset_key = generate_dataset_key()
        dataset_fingerprint = fingerprint_table(frame, dataset_key)
    fingerprint = dataset_fingerprint or FINGERPRINT_PREFIX + secrets.token_hex(32)
    relation = NeighbouringRelation(relation).value
    officer_key, officer_pub = write_keypair(d, "officer", overwrite=True)
    ledger_key, ledger_pub = write_keypair(d, "ledger", overwrite=True)
    policy_path = d / "policy.toml"
    policy_path.write_text(render_policy(
        epsilon=epsilon, delta=delta, relation=relation, fingerprint=fingerprint, max_records=max_records,
        generators=generators, order=order, max_epsilon_per_run=max_epsilon_per_run,
        allow_seeded_noise=allow_seeded_noise, delta_reserve=delta_reserve, allow_custom_code=allow_custom_code,
        ledger_id=ledger_id))
    from .keys import load_private_key

    signature_path = sign_policy_file(policy_path, load_private_key(officer_key))
    ledger_path = ledger if isinstance(ledger, str) else (Path(ledger) if ledger is not None else d / "ledger.db")
    init_ledger(ledger_path, policy_path, officer_key=officer_key, ledger_key=ledger_pub)
    gate = Gate.open(ledger_path, ledger_key=ledger_key)
    return TestLedger(d, gate, ledger_path, policy_path, signature_path, officer_key, officer_pub,
                      ledger_key, ledger_pub, dataset_key)


def policy_toml(**kwargs) -> str:
    """`accountant.policy.render_policy` with test defaults (seeded test noise allowed)."""
    kwargs.setdefault("allow_seeded_noise", True)
    return render_policy(**kwargs)
