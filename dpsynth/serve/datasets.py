"""A governed dataset as the service holds it: the rows (bound once to the gate), the
schema, the open gate with its ledger key.  Nothing here leaves the service.

`open_dataset` makes every check a local run makes (dpsynth.jobs.run.prepare) before
the service answers anyone: the ledger's genesis is signed by the pinned officer,
the policy file on disk is the one the ledger was opened under, the schema is
complete, the table validates against it and carries the keyed fingerprint the
policy governs, within max_records.  A failure names the dataset and the field,
never a row or a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accountant.keys import Ed25519PublicKey

from .config import ConfigError, DatasetConfig

__all__ = ["ServedDataset", "open_dataset"]


@dataclass
class ServedDataset:
    config: DatasetConfig
    gate: Any                      # accountant.gate.Gate, shared by the service's threads
    schema: Any                    # dpsynth.schema.Schema (public)
    table: Any                     # the bound PrivateTable every request gets a view of

    @property
    def name(self) -> str:
        return self.config.name

    def public(self) -> dict[str, Any]:
        """What every authenticated person may read about the dataset (public facts only)."""
        policy = self.gate.policy
        return {"name": self.name, "policy": policy.summary(), "ledger_id": self.gate.ledger_id,
                "schema": self.schema.to_dict(), "default_cap": self.config.default_cap}

    def close(self) -> None:
        self.gate.close()


def _fail(cfg: DatasetConfig, field: str, message: str) -> ConfigError:
    return ConfigError(f"datasets.{cfg.name}.{field}: {message}")


def open_dataset(cfg: DatasetConfig, officer: Ed25519PublicKey, witness_dir: Path) -> ServedDataset:
    from accountant.fingerprint import load_dataset_key
    from accountant.gate import Gate, LedgerIntegrityError
    from accountant.keys import KeyFileError, load_private_key, public_key_from_pem
    from accountant.ledger.store import LedgerStoreError
    from accountant.policy import PolicyError, policy_hash, read_signature, verify_policy_signature
    from accountant.witness import Witness
    from dpsynth.jobs.tables import read_table
    from dpsynth.schema import EncodingError, Schema, SchemaError
    from dpsynth.table import PrivateTable

    try:
        ledger_key = load_private_key(cfg.ledger_key)
    except KeyFileError as exc:
        raise _fail(cfg, "ledger_key", str(exc)) from None
    try:
        gate = Gate.open(cfg.ledger, ledger_key=ledger_key, officer_public_key=officer,
                         witness=Witness(witness_dir))
    except (PolicyError, LedgerStoreError, LedgerIntegrityError, OSError) as exc:
        raise _fail(cfg, "ledger", f"cannot open the ledger: {exc}") from None
    try:
        try:
            raw = cfg.policy.read_bytes()
        except OSError as exc:
            raise _fail(cfg, "policy", f"cannot read it: {exc.strerror}") from None
        if policy_hash(raw) != gate.metadata.policy_sha256:
            raise _fail(cfg, "policy", "is not the policy this ledger was opened under (its SHA-256 differs)")
        try:
            verify_policy_signature(raw, read_signature(cfg.policy_signature),
                                    public_key_from_pem(gate.metadata.officer_public_key))
        except PolicyError as exc:
            raise _fail(cfg, "policy_signature", str(exc)) from None
        try:
            schema = Schema.load(cfg.schema)
        except (SchemaError, OSError) as exc:
            raise _fail(cfg, "schema", str(exc)) from None
        incomplete = [c.name for c in schema.columns if not c.is_complete]
        if incomplete:
            raise _fail(cfg, "schema", f"column {incomplete[0]!r} has no declared categories or bins; a served "
                                       "dataset's schema is complete")
        try:
            key = load_dataset_key(cfg.dataset_key)
        except (ValueError, OSError) as exc:
            raise _fail(cfg, "dataset_key", str(exc)) from None
        try:
            frame = read_table(cfg.data)
        except Exception as exc:  # noqa: BLE001 - a parser's message may quote private values
            raise _fail(cfg, "data", f"cannot read the table ({type(exc).__name__})") from None
        missing = [n for n in schema.names if n not in frame.columns]
        extra = [str(c) for c in frame.columns if c not in schema.names]
        if missing or extra:
            raise _fail(cfg, "data", f"column {(missing or extra)[0]!r} is "
                                     f"{'missing from the table' if missing else 'not in the schema'}")
        try:
            table = PrivateTable(frame, schema, gate, dataset_key=key, actor="service")
        except (EncodingError, SchemaError, ValueError) as exc:
            raise _fail(cfg, "data", f"{exc} (the data holder lists the rows with `dpsynth data check`)") from None
        return ServedDataset(cfg, gate, schema, table)
    except BaseException:
        gate.close()
        raise
