"""The append-only, hash-chained, signed record of every privacy spend."""

from .entry import FORMAT, NOISE_SOURCES, Entry, Head, LedgerMetadata, coarse_timestamp
from .hashing import canonical_bytes, canonical_json, sha256_hex
from .sqlite import SQLiteLedgerStore
from .store import LedgerExists, LedgerMissing, LedgerSnapshot, LedgerStore, LedgerStoreError, LedgerWriter

__all__ = [
    "FORMAT", "NOISE_SOURCES", "Entry", "Head", "LedgerMetadata", "coarse_timestamp",
    "canonical_bytes", "canonical_json", "sha256_hex",
    "SQLiteLedgerStore", "LedgerStore", "LedgerWriter", "LedgerSnapshot",
    "LedgerStoreError", "LedgerExists", "LedgerMissing",
]
