"""The append-only, hash-chained, signed record of every privacy spend.

`PostgresLedgerStore` (``accountant.ledger.postgres``) is not imported here: it needs
the optional psycopg; `open_store` loads it for a ``postgresql://`` URL."""

from .entry import FORMAT, NOISE_SOURCES, Entry, Head, LedgerMetadata, coarse_timestamp
from .hashing import canonical_bytes, canonical_json, sha256_hex
from .open_store import describe_location, is_postgres_url, open_store
from .sqlite import SQLiteLedgerStore
from .store import (
    CommitOutcomeUnknown,
    LedgerExists,
    LedgerMissing,
    LedgerSnapshot,
    LedgerStore,
    LedgerStoreError,
    LedgerWriter,
)

__all__ = [
    "FORMAT", "NOISE_SOURCES", "Entry", "Head", "LedgerMetadata", "coarse_timestamp",
    "canonical_bytes", "canonical_json", "sha256_hex",
    "SQLiteLedgerStore", "LedgerStore", "LedgerWriter", "LedgerSnapshot",
    "LedgerStoreError", "LedgerExists", "LedgerMissing", "CommitOutcomeUnknown",
    "open_store", "is_postgres_url", "describe_location",
]
