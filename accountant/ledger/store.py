"""The storage interface the gate writes through.

Deliberately narrow so that a server database can replace SQLite for teams:
a store keeps one metadata record, an append-only sequence of entries and one
head record, and offers (a) consistent read snapshots and (b) an exclusive
append transaction.  Everything else — hashing, signing, the budget rule,
verification — lives above it and is the same for every backend.

A backend must guarantee:

* `exclusive()` serialises writers: between entering and leaving the block no
  other writer can append, so "read totals → check → append" is atomic;
* nothing appended inside the block is visible to anyone, or survives a crash,
  unless the block exits normally — and once it has, the entries are durable;
* `snapshot()` returns a consistent view (never half a transaction).

Backends: `sqlite.SQLiteLedgerStore` (a file) and `postgres.PostgresLedgerStore`
(named ledgers in a PostgreSQL database); `open_store.open_store(location)` picks
one from a path or a ``postgresql://`` URL.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass

from .entry import Entry, Head, LedgerMetadata

__all__ = ["LedgerSnapshot", "LedgerWriter", "LedgerStore", "LedgerStoreError", "LedgerExists", "LedgerMissing",
           "CommitOutcomeUnknown"]


class LedgerStoreError(RuntimeError):
    """The store cannot be read or written (missing, corrupt, truncated, locked)."""


class LedgerExists(LedgerStoreError):
    """`initialise` was called on a store that already holds a ledger."""


class LedgerMissing(LedgerStoreError):
    """The store holds no ledger (not initialised)."""


class CommitOutcomeUnknown(LedgerStoreError):
    """The connection to a server store was lost during COMMIT: the append may or may not
    have been written.  Nothing is handed out for it; the next exclusive transaction reads
    it (like any entry another writer appended) if it was.  Never retried by the store."""


@dataclass(frozen=True)
class LedgerSnapshot:
    """A consistent, read-only view of a whole ledger (what export and verify consume)."""

    metadata: LedgerMetadata
    entries: tuple[Entry, ...]
    head: Head


class LedgerWriter(abc.ABC):
    """Handle valid only inside `LedgerStore.exclusive()`."""

    metadata: LedgerMetadata

    @abc.abstractmethod
    def entries_after(self, sequence: int) -> list[Entry]:
        """Entries with sequence > `sequence`, in order."""

    @abc.abstractmethod
    def head(self) -> Head:
        """The current head record."""

    @abc.abstractmethod
    def append(self, entry: Entry, head: Head) -> None:
        """Append one entry and replace the head, as part of the transaction."""


class LedgerStore(abc.ABC):
    """An append-only ledger store."""

    @abc.abstractmethod
    def initialise(self, metadata: LedgerMetadata, head: Head) -> None:
        """Create the ledger; raises LedgerExists if it already holds one."""

    @abc.abstractmethod
    def metadata(self) -> LedgerMetadata:
        """The metadata record; raises LedgerMissing if not initialised."""

    @abc.abstractmethod
    def snapshot(self) -> LedgerSnapshot:
        """A consistent view of the whole ledger."""

    @abc.abstractmethod
    def exclusive(self) -> AbstractContextManager[LedgerWriter]:
        """An exclusive append transaction; commits (durably) on normal exit only."""

    @abc.abstractmethod
    def tip(self) -> tuple[Head, Entry | None]:
        """The head record and the entry it names, in one consistent read."""

    @abc.abstractmethod
    def entry(self, sequence: int) -> Entry | None:
        """The entry with this sequence number, or None."""

    def check_identity(self) -> None:
        """Raise LedgerStoreError if the store is no longer the one opened (file replaced)."""

    def close(self) -> None:  # pragma: no cover - default no-op
        """Release resources."""
