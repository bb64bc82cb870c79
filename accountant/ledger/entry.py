"""The ledger's records: metadata (once), entries (one per charge), the signed head.

Each record is a frozen dataclass whose `body()` is a plain JSON dict; its hash
is SHA-256 of the canonical JSON of that body, and its signature is an Ed25519
signature over the hash (domain-separated).  The first entry's `prev_hash` is
the hash of the metadata, so the whole chain is bound to the policy and keys
the ledger was opened with.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from .hashing import canonical_bytes, sha256_hex

__all__ = [
    "FORMAT",
    "LedgerMetadata",
    "Entry",
    "Head",
    "NOISE_SOURCES",
    "coarse_timestamp",
    "ENTRY_PURPOSE",
    "HEAD_PURPOSE",
]

FORMAT = "dpsynth-ledger/1"
ENTRY_PURPOSE = "ledger-entry-v1"
HEAD_PURPOSE = "ledger-head-v1"
NOISE_SOURCES = ("secure", "seeded-test")


def coarse_timestamp(now: _dt.datetime | None = None) -> str:
    """UTC time truncated to the minute, e.g. ``2025-01-31T14:07Z``.

    Entries are written before a mechanism runs, so the gap between two
    entries bounds how long the first run took.  Noise samplers with
    data-independent but variable running time (rejection samplers) could
    leak through fine timestamps; a minute is far coarser than any sampler.
    """
    now = _dt.datetime.now(_dt.timezone.utc) if now is None else now.astimezone(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%MZ")


def _from_fields(cls, data: Mapping[str, Any], what: str):
    names = [f.name for f in fields(cls)]
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    missing = sorted(set(names) - set(data))
    extra = sorted(set(data) - set(names))
    if missing or extra:
        raise ValueError(f"{what} has missing fields {missing} / unknown fields {extra}")
    return cls(**{n: data[n] for n in names})


@dataclass(frozen=True)
class LedgerMetadata:
    """What the ledger was opened with: the signed policy, both public keys, the filter."""

    format: str
    created: str
    policy_toml: str                  # the policy file's exact text
    policy_sha256: str
    policy_signature: dict | None     # PolicySignature.to_dict(); None only in insecure mode
    officer_public_key: str | None    # PEM; None only in insecure mode
    officer_key_id: str | None
    ledger_public_key: str | None     # PEM; None only in insecure mode
    ledger_key_id: str | None
    dataset_fingerprint: str
    relation: str
    epsilon: float
    delta: float
    filter_order: float               # α*, fixed at init (any fixed order is sound)
    filter_budget: float              # B at α*
    curve_orders: list                # the grid each entry's RDP curve is given on
    insecure: bool                    # opened in insecure development mode

    def body(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_bytes(self.body()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LedgerMetadata":
        return _from_fields(cls, data, "ledger metadata")


@dataclass(frozen=True)
class Entry:
    """One charge: what was spent, by whom, for what, and the totals after it."""

    sequence: int
    timestamp: str
    dataset_fingerprint: str
    actor: str
    purpose: str
    generator: str | None
    parameters: dict
    run_id: str | None
    event: str                        # canonical event JSON
    relation: str
    noise_source: str                 # "secure" | "seeded-test"
    filter_order: float
    cost: float                       # RDP at α*
    rho: float                        # the event's zCDP part (exact, summed with fsum)
    curve: list                       # the event's RDP on metadata.curve_orders
    filter_total: float               # fsum of all costs up to and including this one
    filter_budget: float
    epsilon_filter: float             # ε at the policy δ guaranteed by the filter
    epsilon_curve: float              # ε from the full RDP curve of all events (non-adaptive)
    delta: float
    policy_sha256: str
    prev_hash: str
    ledger_key_id: str | None
    insecure: bool                    # written in insecure development mode: unsigned
    entry_hash: str = ""
    signature: str = ""

    _UNHASHED = ("entry_hash", "signature")

    def body(self) -> dict[str, Any]:
        """Everything the hash covers (all fields except the hash and the signature)."""
        d = asdict(self)
        for k in self._UNHASHED:
            d.pop(k)
        return d

    def compute_hash(self) -> str:
        return sha256_hex(canonical_bytes(self.body()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Entry":
        return _from_fields(cls, data, "ledger entry")


@dataclass(frozen=True)
class Head:
    """The signed pointer to the last entry: detects a chain cut short at the end."""

    sequence: int
    entry_hash: str
    signature: str

    def message(self) -> bytes:
        return f"{self.sequence}:{self.entry_hash}".encode()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Head":
        return _from_fields(cls, data, "ledger head")
