"""SQLite backend: one file, WAL journal, `BEGIN IMMEDIATE` append transactions.

`BEGIN IMMEDIATE` takes SQLite's write lock before the gate reads the totals,
so two processes charging one ledger are serialised: the second one reads the
totals only after the first has committed (or rolled back).  With
`synchronous=FULL` a commit is on disk before `COMMIT` returns, so a receipt
(handed out only after the commit) always names an entry that survives a
crash of the process — or of the machine.

Records are stored as their canonical JSON text; the gate, export and verify
all read that text and nothing else, so no derived column can disagree with
what is hashed and signed.  Triggers make accidental UPDATE/DELETE fail (they
do not stop a deliberate attacker; the hash chain and signatures do that).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .entry import Entry, Head, LedgerMetadata
from .hashing import canonical_json
from .store import (
    LedgerExists,
    LedgerMissing,
    LedgerSnapshot,
    LedgerStore,
    LedgerStoreError,
    LedgerWriter,
)

__all__ = ["SQLiteLedgerStore"]

_SCHEMA = """
CREATE TABLE metadata (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
CREATE TABLE entries (sequence INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE head (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
  BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER metadata_no_update BEFORE UPDATE ON metadata
  BEGIN SELECT RAISE(ABORT, 'ledger metadata is immutable'); END;
"""

_BUSY_TIMEOUT_MS = 120_000


def _parse(text: str, what: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise LedgerStoreError(f"{what} is not valid JSON: {exc}") from None
    except RecursionError:  # a crafted record nested deeper than the parser recurses
        raise LedgerStoreError(f"{what} nests too deeply to be a ledger record") from None


class _SQLiteWriter(LedgerWriter):
    def __init__(self, conn: sqlite3.Connection, metadata: LedgerMetadata) -> None:
        self._conn = conn
        self.metadata = metadata

    def entries_after(self, sequence: int) -> list[Entry]:
        rows = self._conn.execute(
            "SELECT sequence, body FROM entries WHERE sequence > ? ORDER BY sequence", (sequence,)
        ).fetchall()
        return [_entry(seq, body) for seq, body in rows]

    def head(self) -> Head:
        row = self._conn.execute("SELECT body FROM head WHERE id = 1").fetchone()
        if row is None:
            raise LedgerStoreError("the ledger has no head record")
        return Head.from_dict(_parse(row[0], "head"))

    def append(self, entry: Entry, head: Head) -> None:
        self._conn.execute(
            "INSERT INTO entries (sequence, body) VALUES (?, ?)", (entry.sequence, canonical_json(entry.to_dict()))
        )
        self._conn.execute("UPDATE head SET body = ? WHERE id = 1", (canonical_json(head.to_dict()),))


def _entry(sequence: int, body: str) -> Entry:
    try:
        return Entry.from_dict(_parse(body, f"entry {sequence}"))
    except (TypeError, ValueError) as exc:
        raise LedgerStoreError(f"entry {sequence}: {exc}") from None


class SQLiteLedgerStore(LedgerStore):
    """A ledger in one SQLite file."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._identity: tuple[int, int] | None = None

    def _file_identity(self) -> tuple[int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            raise LedgerStoreError(f"the ledger file {self.path} vanished while it was open; the gate stays "
                                   "shut") from None
        return st.st_dev, st.st_ino

    def check_identity(self) -> None:
        """Raise LedgerStoreError unless the path still names the file this store opened.

        An open SQLite connection keeps writing to a file that was deleted or replaced
        (renamed over) under it; the charges would then go to a ledger nobody can see."""
        if self._identity is not None and self._pid == os.getpid() and self._file_identity() != self._identity:
            raise LedgerStoreError(f"the ledger file {self.path} was replaced while it was open; the gate "
                                   "stays shut")

    # -- connection -------------------------------------------------------------------------
    def _connect(self, create: bool = False) -> sqlite3.Connection:
        # A connection must not cross a fork: reopen in a child process.
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if not create and not self.path.exists():
            raise LedgerMissing(f"no ledger at {self.path} (create one with `dpsynth ledger init`)")
        mode = "rwc" if create else "rw"
        try:
            conn = sqlite3.connect(
                f"file:{self.path.resolve()}?mode={mode}", uri=True, timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None, check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise LedgerStoreError(f"cannot open ledger {self.path}: {exc}") from None
        self._conn, self._pid = conn, os.getpid()
        self._identity = self._file_identity()
        return conn

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
        self._identity = None

    # -- interface --------------------------------------------------------------------------
    def initialise(self, metadata: LedgerMetadata, head: Head) -> None:
        if self.path.exists() and self.path.stat().st_size > 0:
            raise LedgerExists(f"{self.path} already exists; a ledger is never re-initialised")
        conn = self._connect(create=True)
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split(_SCHEMA):
                conn.execute(statement)
            conn.execute("INSERT INTO metadata (id, body) VALUES (1, ?)", (canonical_json(metadata.to_dict()),))
            conn.execute("INSERT INTO head (id, body) VALUES (1, ?)", (canonical_json(head.to_dict()),))
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise LedgerStoreError(f"cannot create ledger {self.path}: {exc}") from None

    def metadata(self) -> LedgerMetadata:
        try:
            conn = self._connect()
            self.check_identity()
            row = conn.execute("SELECT body FROM metadata WHERE id = 1").fetchone()
        except sqlite3.DatabaseError as exc:
            raise LedgerStoreError(f"cannot read ledger {self.path}: {exc}") from None
        if row is None:
            raise LedgerMissing(f"{self.path} holds no ledger metadata")
        try:
            return LedgerMetadata.from_dict(_parse(row[0], "metadata"))
        except (TypeError, ValueError) as exc:
            raise LedgerStoreError(f"ledger metadata: {exc}") from None

    def snapshot(self) -> LedgerSnapshot:
        conn = self._connect()
        self.check_identity()
        try:
            conn.execute("BEGIN")  # one read transaction: a consistent WAL snapshot
            try:
                metadata = self.metadata()
                rows = conn.execute("SELECT sequence, body FROM entries ORDER BY rowid").fetchall()
                head_row = conn.execute("SELECT body FROM head WHERE id = 1").fetchone()
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise LedgerStoreError(f"cannot read ledger {self.path}: {exc}") from None
        if head_row is None:
            raise LedgerStoreError("the ledger has no head record")
        try:
            head = Head.from_dict(_parse(head_row[0], "head"))
        except (TypeError, ValueError) as exc:
            raise LedgerStoreError(f"ledger head: {exc}") from None
        return LedgerSnapshot(metadata, tuple(_entry(seq, body) for seq, body in rows), head)

    def tip(self) -> tuple[Head, Entry | None]:
        """The head and the entry it names (one consistent read; no full snapshot)."""
        conn = self._connect()
        self.check_identity()
        try:
            conn.execute("BEGIN")
            try:
                head_row = conn.execute("SELECT body FROM head WHERE id = 1").fetchone()
                if head_row is None:
                    raise LedgerStoreError("the ledger has no head record")
                head = Head.from_dict(_parse(head_row[0], "head"))
                row = conn.execute("SELECT sequence, body FROM entries WHERE sequence = ?",
                                   (head.sequence,)).fetchone()
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise LedgerStoreError(f"cannot read ledger {self.path}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise LedgerStoreError(f"ledger head: {exc}") from None
        return head, (None if row is None else _entry(*row))

    def entry(self, sequence: int) -> Entry | None:
        """The entry with this sequence number, or None."""
        conn = self._connect()
        self.check_identity()
        try:
            row = conn.execute("SELECT sequence, body FROM entries WHERE sequence = ?", (int(sequence),)).fetchone()
        except sqlite3.DatabaseError as exc:
            raise LedgerStoreError(f"cannot read ledger {self.path}: {exc}") from None
        return None if row is None else _entry(*row)

    @contextmanager
    def exclusive(self) -> Iterator[LedgerWriter]:
        conn = self._connect()
        self.check_identity()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.DatabaseError as exc:
            raise LedgerStoreError(f"cannot lock ledger {self.path}: {exc}") from None
        try:
            yield _SQLiteWriter(conn, self.metadata())
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise LedgerStoreError(f"commit to {self.path} failed; nothing was written: {exc}") from None


def _split(script: str) -> list[str]:
    """Split the schema into statements (triggers contain inner semicolons)."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        joined = "\n".join(current).strip()
        if joined.endswith(";") and (not joined.upper().startswith("CREATE TRIGGER") or joined.endswith("END;")):
            out.append(joined)
            current = []
    return out
