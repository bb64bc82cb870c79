"""The ledger's records: metadata (the genesis, once), entries, the signed head.

Each record is a frozen dataclass whose `body()` is a plain JSON dict; its hash
is SHA-256 of the canonical JSON of that body, and its signature is an Ed25519
signature over the hash (domain-separated).  The first entry's `prev_hash` is
the hash of the metadata, so the whole chain is bound to the policy and keys
the ledger was opened with.

Format 2 (this one) adds, against rollback, re-initialisation and replay:

* the metadata is a *genesis*: it names a fresh random `ledger_id` and is signed
  by the privacy officer (`genesis_signature`, not part of the hashed body), so
  only the officer can start a ledger, and a re-initialised ledger is a new one;
* every entry carries the `ledger_id` and a `kind`:
  - ``charge``: privacy spent on an event (the only kind with a cost);
  - ``open``: a multi-step release (a DP-SGD or PATE session) starts, consuming
    the charge it refers to (`refs`);
  - ``release``: the noisy output a charge paid for left the private table;
    `commitment` is its SHA-256; a release consumes its charge, or closes the
    session an ``open`` started;
  - ``seal``: a fitted model, `commitment` the SHA-256 of its whole state, paid
    for by the charges in `refs`;
* `code_sha256` names the caller-supplied code a custom-mechanism charge ran;
* `request_id` (optional, charges only) is the caller's idempotency key: a
  retried request finds its charge instead of paying twice.  It is left out of
  the hashed body when absent, so entries written before it existed keep their
  hashes.

Format 1 ledgers (no genesis signature, no ledger id, charges only) still
verify; their body leaves the format-2 fields out, so their hashes are unchanged.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .hashing import canonical_bytes, sha256_hex
from .plain import plain_fields

__all__ = [
    "FORMAT",
    "LedgerMetadata",
    "Entry",
    "Head",
    "NOISE_SOURCES",
    "coarse_timestamp",
    "ENTRY_PURPOSE",
    "HEAD_PURPOSE",
    "GENESIS_PURPOSE",
    "ENTRY_KINDS",
    "FORMATS",
    "LEGACY_FORMAT",
]

FORMAT = "dpsynth-ledger/2"
LEGACY_FORMAT = "dpsynth-ledger/1"
FORMATS = (FORMAT, LEGACY_FORMAT)
ENTRY_PURPOSE = "ledger-entry-v1"
HEAD_PURPOSE = "ledger-head-v1"
GENESIS_PURPOSE = "ledger-genesis-v1"
NOISE_SOURCES = ("secure", "seeded-test")
ENTRY_KINDS = ("charge", "open", "release", "seal")
# Fields a format-1 record does not have (left out of its hashed body).
_V2_METADATA = ("ledger_id", "genesis_nonce")
_V2_ENTRY = ("kind", "refs", "commitment", "ledger_id", "code_sha256")
# Format-2 fields that are left out of the body (and the dict) when they are None.
_OPTIONAL_ENTRY = ("request_id",)


def coarse_timestamp(now: _dt.datetime | None = None) -> str:
    """UTC time truncated to the minute, e.g. ``2025-01-31T14:07Z``.

    Entries are written before a mechanism runs, so the gap between two
    entries bounds how long the first run took.  Noise samplers with
    data-independent but variable running time (rejection samplers) could
    leak through fine timestamps; a minute is far coarser than any sampler.
    """
    now = _dt.datetime.now(_dt.timezone.utc) if now is None else now.astimezone(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%MZ")


def _from_fields(cls, data: Mapping[str, Any], what: str, optional: tuple[str, ...] = ()):
    names = [f.name for f in fields(cls)]
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    missing = sorted(set(names) - set(data) - set(optional))
    extra = sorted(set(data) - set(names))
    if missing or extra:
        raise ValueError(f"{what} has missing fields {missing} / unknown fields {extra}")
    return cls(**{n: data[n] for n in names if n in data})


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
    ledger_id: str | None = None      # a fresh random id (32 hex); None only in format 1
    genesis_nonce: str | None = None  # random: two inits never share a genesis hash
    genesis_signature: str = ""       # the officer's signature over `hash` (not hashed itself)

    @property
    def is_legacy(self) -> bool:
        return self.format == LEGACY_FORMAT

    def body(self) -> dict[str, Any]:
        """Everything the genesis hash covers (all fields but the officer's signature)."""
        d = plain_fields(self)
        d.pop("genesis_signature")
        if self.is_legacy:
            for k in _V2_METADATA:
                d.pop(k)
        return d

    def to_dict(self) -> dict[str, Any]:
        d = self.body()
        if not self.is_legacy:
            d["genesis_signature"] = self.genesis_signature
        return d

    @property
    def hash(self) -> str:
        return sha256_hex(canonical_bytes(self.body()))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LedgerMetadata":
        legacy = isinstance(data, Mapping) and data.get("format") == LEGACY_FORMAT
        optional = (*_V2_METADATA, "genesis_signature") if legacy else ()
        md = _from_fields(cls, data, "ledger metadata", optional)
        if legacy and any(k in data for k in (*_V2_METADATA, "genesis_signature")):
            raise ValueError("a format-1 ledger's metadata has no genesis fields")
        return md


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
    kind: str = "charge"              # one of ENTRY_KINDS (format 2)
    refs: list | None = None          # sequence numbers of the charges it consumes / seals
    commitment: str | None = None     # SHA-256 (hex) of the released output or sealed model
    ledger_id: str | None = None      # the genesis' ledger id; None only in format 1
    code_sha256: str | None = None    # caller-supplied code a custom-mechanism charge ran
    request_id: str | None = None     # the caller's idempotency key (charges only; absent when None)
    entry_hash: str = ""
    signature: str = ""

    _UNHASHED = ("entry_hash", "signature")

    @property
    def is_legacy(self) -> bool:
        return self.ledger_id is None

    @property
    def is_charge(self) -> bool:
        return self.kind == "charge"

    def body(self) -> dict[str, Any]:
        """Everything the hash covers (all fields except the hash and the signature)."""
        d = self.to_dict()
        for k in self._UNHASHED:
            d.pop(k)
        return d

    def compute_hash(self) -> str:
        return sha256_hex(canonical_bytes(self.body()))

    def to_dict(self) -> dict[str, Any]:
        d = plain_fields(self)
        if self.is_legacy:
            for k in _V2_ENTRY:
                d.pop(k)
        for k in _OPTIONAL_ENTRY:
            if d[k] is None:
                d.pop(k)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Entry":
        legacy = isinstance(data, Mapping) and data.get("ledger_id") is None
        entry = _from_fields(cls, data, "ledger entry", (*(_V2_ENTRY if legacy else ()), *_OPTIONAL_ENTRY))
        if legacy and any(k in data for k in (*_V2_ENTRY, *_OPTIONAL_ENTRY) if k != "ledger_id"):
            raise ValueError("ledger entry: format-2 fields without a ledger_id")
        if isinstance(data, Mapping) and any(k in data and data[k] is None for k in _OPTIONAL_ENTRY):
            # An absent field is left out, never written as null: two spellings of one entry
            # would hash differently.
            raise ValueError("ledger entry: an optional field is absent, not null")
        if not legacy:
            if entry.kind not in ENTRY_KINDS:
                raise ValueError(f"ledger entry: kind {entry.kind!r} is not one of {ENTRY_KINDS}")
            if not isinstance(entry.refs, list) or not all(
                    isinstance(r, int) and not isinstance(r, bool) for r in entry.refs):
                raise ValueError("ledger entry: refs must be a list of sequence numbers")
        return entry


@dataclass(frozen=True)
class Head:
    """The signed pointer to the last entry: detects a chain cut short at the end."""

    sequence: int
    entry_hash: str
    signature: str

    def message(self) -> bytes:
        return f"{self.sequence}:{self.entry_hash}".encode()

    def to_dict(self) -> dict[str, Any]:
        return plain_fields(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Head":
        return _from_fields(cls, data, "ledger head")
