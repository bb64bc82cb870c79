"""PostgreSQL backend: several ledgers in one database, writers serialised by an advisory lock.

Same records as the SQLite backend (`sqlite.py`): metadata, entries and head are
stored as their canonical JSON text, and every reader parses that text and
nothing else; hashing, signing and verification live above the store and are
the same for both backends.  A ledger in PostgreSQL and a ledger in a file are
byte for byte the same ledger (`dpsynth ledger export` gives the same JSONL).

Layout.  All ledgers of a database share three tables in the schema
``dpsynth``, keyed by the ledger's *name* (``[a-z][a-z0-9_]{0,62}``, default
``default``)::

    dpsynth.ledgers (name PRIMARY KEY, store_id UNIQUE, metadata)   -- the genesis
    dpsynth.entries (ledger, sequence, body)  PRIMARY KEY (ledger, sequence)
    dpsynth.heads   (ledger PRIMARY KEY, body)

Shared tables rather than one schema per ledger: the name is only ever a bound
parameter, never spliced into SQL (no identifier quoting to get wrong, no DDL
when a ledger is added, one set of grants and triggers), and a DBA can create
the schema once and give the service a role that may only SELECT and INSERT
(and UPDATE the head).  Triggers refuse UPDATE, DELETE and TRUNCATE of entries
and metadata and DELETE/TRUNCATE of heads.  They stop mistakes, not a database
superuser (who can disable triggers): the hash chain, the signatures, the
officer-signed genesis and the witness catch what a superuser rewrites.

Writers.  `exclusive()` opens a READ COMMITTED transaction and takes
``pg_advisory_xact_lock(k)``, k a 64-bit key derived from the ledger name.  The
lock is held until COMMIT or ROLLBACK — including when the client dies (the
server rolls the transaction back and frees the lock) — so two writers on any
number of machines are serialised, and the gate's "read totals → check →
append" runs under it.  READ COMMITTED is what makes that sound: each
statement takes a fresh snapshot, so every read issued *after* the lock
statement returns sees every transaction that committed before the lock was
granted (PostgreSQL makes a commit visible before it releases the committer's
locks).  Under REPEATABLE READ the snapshot would be taken by the lock
statement itself, before the wait, and the gate would read stale totals.  An
advisory lock rather than SERIALIZABLE-with-retry: a serialisation failure
would surface at COMMIT, after the gate has built and signed an entry, and the
retry would have to re-run the gate's whole check; the lock makes conflicts
wait instead of fail.  The primary key (ledger, sequence) is a second guard: a
writer that somehow ran without the lock could not append the same sequence
number twice.

Durability.  COMMIT returns after the WAL is flushed: each write transaction
sets ``synchronous_commit = on`` locally if the session has it ``off``, and a
server running with ``fsync = off`` is refused outright.

Snapshots.  `snapshot()` and `tip()` read in one REPEATABLE READ, READ ONLY
transaction: a consistent view, never half a commit.

Connections.  One connection per store and process (reopened after a fork; an
inherited one is detached without touching the parent's session), guarded by a
lock so threads take turns.  A dropped connection (a restarted server, a killed
backend) is replaced transparently: a read is retried once on a new
connection, and so is the start of a write transaction, where nothing has been
sent yet.  Anything after that is never retried inside the store.  If the
connection is lost during COMMIT the outcome is unknown (the server may have
committed and lost only the acknowledgement): `CommitOutcomeUnknown` is raised,
no receipt is handed out, and the entry, if it was committed, is simply the
next entry the gate reads — its next transaction catches up with it (it is
signed with the gate's own key and chains correctly), so it is counted once
and never written twice.  Error messages never contain the DSN's password.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .entry import Entry, Head, LedgerMetadata
from .hashing import canonical_json
from .sqlite import _entry, _parse
from .store import (
    CommitOutcomeUnknown,
    LedgerExists,
    LedgerMissing,
    LedgerSnapshot,
    LedgerStore,
    LedgerStoreError,
    LedgerWriter,
)

__all__ = ["PostgresLedgerStore", "LEDGER_NAME", "DEFAULT_LEDGER_NAME", "is_ledger_name", "redact_dsn",
           "SCHEMA"]

LEDGER_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DEFAULT_LEDGER_NAME = "default"
SCHEMA = "dpsynth"
CONNECT_TIMEOUT_S = 10
LOCK_TIMEOUT_S = 120          # as long as SQLite's busy timeout: a writer waits, then fails cleanly
APPLICATION_NAME = "dpsynth-ledger"

_T = TypeVar("_T")

_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE {SCHEMA}.ledgers (
    name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{{0,62}}$'),
    store_id text NOT NULL UNIQUE,
    metadata text NOT NULL
);
CREATE TABLE {SCHEMA}.entries (
    ledger text NOT NULL REFERENCES {SCHEMA}.ledgers (name),
    sequence bigint NOT NULL CHECK (sequence >= 1),
    body text NOT NULL,
    PRIMARY KEY (ledger, sequence)
);
CREATE TABLE {SCHEMA}.heads (
    ledger text PRIMARY KEY REFERENCES {SCHEMA}.ledgers (name),
    body text NOT NULL
);
CREATE FUNCTION {SCHEMA}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0];
END
$$;
CREATE TRIGGER entries_append_only BEFORE UPDATE OR DELETE ON {SCHEMA}.entries
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change('ledger entries are append-only');
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON {SCHEMA}.entries
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change('ledger entries are append-only');
CREATE TRIGGER ledgers_immutable BEFORE UPDATE OR DELETE ON {SCHEMA}.ledgers
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change('ledger metadata is immutable');
CREATE TRIGGER ledgers_no_truncate BEFORE TRUNCATE ON {SCHEMA}.ledgers
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change('ledger metadata is immutable');
CREATE TRIGGER heads_never_deleted BEFORE DELETE ON {SCHEMA}.heads
    FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.refuse_change('a ledger head is replaced, never deleted');
CREATE TRIGGER heads_no_truncate BEFORE TRUNCATE ON {SCHEMA}.heads
    FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_change('a ledger head is replaced, never deleted');
"""

# Initialising (and creating the tables) is serialised database-wide by this key.
_SCHEMA_LOCK_KEY = int.from_bytes(hashlib.sha256(b"dpsynth ledger schema").digest()[:8], "big", signed=True)


def is_ledger_name(name: Any) -> bool:
    return isinstance(name, str) and LEDGER_NAME.match(name) is not None


def _lock_key(name: str) -> int:
    """The advisory lock key of a ledger: 64 bits of SHA-256 of its name.  Two names
    sharing a key (or another application's lock) only serialise more; never less."""
    return int.from_bytes(hashlib.sha256(b"dpsynth ledger\0" + name.encode()).digest()[:8], "big", signed=True)


_PASSWORD_KV = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact_dsn(dsn: str) -> str:
    """The DSN with any password replaced by ``***`` (URL userinfo, ?password=, password=…)."""
    if _is_url(dsn):
        try:
            parts = urlsplit(dsn)
        except ValueError:
            return "postgresql://(unparsable URL)"
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            if ":" in userinfo:
                userinfo = userinfo.split(":", 1)[0] + ":***"
            netloc = f"{userinfo}@{hostport}"
        query = _PASSWORD_KV.sub(r"\1***", parts.query.replace("&", " &")).replace(" &", "&")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return _PASSWORD_KV.sub(r"\1***", dsn)


# -- stores alive in this process, so a forked child can let go of inherited connections ---------
_STORES: "weakref.WeakSet[PostgresLedgerStore]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_STORES):
        store._forget_inherited_connection()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _PgWriter(LedgerWriter):
    def __init__(self, store: "PostgresLedgerStore", conn: Any, metadata: LedgerMetadata) -> None:
        self._store = store
        self._conn = conn
        self.metadata = metadata
        self._open = True

    def _check_open(self) -> None:
        if not self._open:
            raise LedgerStoreError("this ledger writer was used outside its transaction")

    def entries_after(self, sequence: int) -> list[Entry]:
        self._check_open()
        rows = self._store._statement(
            self._conn, "read",
            lambda c: c.execute(f"SELECT sequence, body FROM {SCHEMA}.entries WHERE ledger = %s AND sequence > %s "
                                "ORDER BY sequence", (self._store.ledger, int(sequence))).fetchall())
        return [_entry(seq, body) for seq, body in rows]

    def head(self) -> Head:
        self._check_open()
        row = self._store._statement(
            self._conn, "read",
            lambda c: c.execute(f"SELECT body FROM {SCHEMA}.heads WHERE ledger = %s",
                                (self._store.ledger,)).fetchone())
        if row is None:
            raise LedgerStoreError("the ledger has no head record")
        return _head(row[0])

    def append(self, entry: Entry, head: Head) -> None:
        self._check_open()
        name = self._store.ledger

        def write(c: Any) -> int:
            c.execute(f"INSERT INTO {SCHEMA}.entries (ledger, sequence, body) VALUES (%s, %s, %s)",
                      (name, entry.sequence, canonical_json(entry.to_dict())))
            return c.execute(f"UPDATE {SCHEMA}.heads SET body = %s WHERE ledger = %s",
                             (canonical_json(head.to_dict()), name)).rowcount

        if self._store._statement(self._conn, "append to", write) != 1:
            raise LedgerStoreError("the ledger has no head record to replace")


def _head(text: str) -> Head:
    try:
        return Head.from_dict(_parse(text, "head"))
    except (TypeError, ValueError) as exc:
        raise LedgerStoreError(f"ledger head: {exc}") from None


def _metadata(text: str) -> LedgerMetadata:
    try:
        return LedgerMetadata.from_dict(_parse(text, "metadata"))
    except (TypeError, ValueError) as exc:
        raise LedgerStoreError(f"ledger metadata: {exc}") from None


class PostgresLedgerStore(LedgerStore):
    """A ledger named `ledger` in the PostgreSQL database `dsn` (a libpq URL or key=value string).

    psycopg 3 is imported on first use (``pip install 'dpsynth[postgres]'``).  Prefer
    ``PGPASSWORD`` or a ``~/.pgpass`` file to a password in the DSN; either way no message
    of this store repeats it."""

    def __init__(self, dsn: str, *, ledger: str = DEFAULT_LEDGER_NAME,
                 connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ValueError("a PostgreSQL ledger needs a connection string (postgresql://…)")
        if not is_ledger_name(ledger):
            raise ValueError(f"ledger name {_shown(ledger)} is not a ledger name: 1 to 63 characters, a lower-case "
                             "letter, then lower-case letters, digits or _")
        self._dsn = dsn
        self.ledger = ledger
        self.connect_timeout = max(1, int(round(connect_timeout)))
        self._secrets = _password_forms(dsn)
        shown = redact_dsn(dsn)
        self.location = f"{shown}#ledger={ledger}" if _is_url(dsn) else f"'{shown}' (ledger {ledger})"
        self._conn: Any = None
        self._pid: int | None = None
        self._store_id: str | None = None
        self._lock = threading.RLock()
        self._writing = False
        _STORES.add(self)

    def __repr__(self) -> str:
        return f"PostgresLedgerStore({self.location!r})"

    __str__ = __repr__

    # -- messages ---------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(self, head: str, exc: BaseException, cls: type[LedgerStoreError] = LedgerStoreError
               ) -> LedgerStoreError:
        """`head` (a sentence about this ledger), then what the server or libpq said, password-free."""
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return cls(self._scrub(f"{head}: {detail}"))

    # -- connection -------------------------------------------------------------------------
    def _connection(self) -> Any:
        conn = self._conn
        if conn is not None and self._pid == os.getpid() and not conn.closed and not conn.broken:
            return conn
        if conn is not None and self._pid != os.getpid():
            self._forget_inherited_connection()
        elif conn is not None:
            self._drop_connection()
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(self._dsn, autocommit=True, prepare_threshold=None,
                                   connect_timeout=self.connect_timeout, **_defaults(self._dsn))
        except psycopg.Error as exc:
            raise self._error(f"cannot connect to the PostgreSQL ledger {self.location}", exc) from None
        except Exception as exc:  # noqa: BLE001 - malformed conninfo, DNS failures, …
            raise self._error(f"cannot connect to the PostgreSQL ledger {self.location}", exc) from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass

    def _forget_inherited_connection(self) -> None:
        """In a forked child: let go of the parent's connection without ending its session
        (closing it here would send the server a Terminate on the parent's socket)."""
        if self._pid == os.getpid():
            return
        conn, self._conn = self._conn, None
        self._writing = False
        self._lock = threading.RLock()  # the parent's lock may have been held at the fork
        if conn is None:
            return
        try:
            fd = conn.fileno()
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
            conn.close()
        except Exception:  # noqa: BLE001 - already closed, or no socket
            pass

    def close(self) -> None:
        if self._pid != os.getpid():
            self._forget_inherited_connection()
            return
        with self._lock:
            self._drop_connection()

    @staticmethod
    def _dead(conn: Any) -> bool:
        return conn is None or conn.closed or conn.broken

    def _statement(self, conn: Any, what: str, fn: Callable[[Any], _T]) -> _T:
        """Run `fn(conn)` inside the open transaction; psycopg errors become LedgerStoreError
        (the transaction is then rolled back by the caller, or was lost with the connection:
        either way nothing of it is written)."""
        psycopg = _psycopg()
        try:
            return fn(conn)
        except psycopg.Error as exc:
            lost = " (the connection was lost before COMMIT; nothing was written)" if self._dead(conn) else ""
            raise self._error(f"cannot {what} the PostgreSQL ledger {self.location}{lost}", exc) from None

    def _rollback(self, conn: Any) -> None:
        try:
            if not self._dead(conn):
                conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - a dead connection rolls back on the server by itself
            self._drop_connection()

    def _read(self, what: str, fn: Callable[[Any], _T]) -> _T:
        """Run `fn(conn)` in a REPEATABLE READ, READ ONLY transaction; once more on a fresh
        connection if the first one turns out to be dead (a read is safe to repeat)."""
        psycopg = _psycopg()
        with self._lock:
            if self._writing:  # this thread is inside exclusive(): read through its transaction
                return self._statement(self._conn, what, fn)
            for attempt in (0, 1):
                conn = self._connection()
                try:
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    try:
                        result = fn(conn)
                    except BaseException:
                        self._rollback(conn)
                        raise
                    conn.execute("COMMIT")
                    return result
                except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                    self._rollback(conn)
                    raise LedgerMissing(f"no ledger named {self.ledger!r} in {self.location} (the database holds "
                                        "no dpsynth ledgers; create one with `dpsynth ledger init`)") from None
                except psycopg.Error as exc:
                    if attempt == 0 and self._dead(conn):
                        self._drop_connection()
                        continue  # the server restarted or the backend was killed: reconnect once
                    self._rollback(conn)
                    raise self._error(f"cannot {what} the PostgreSQL ledger {self.location}", exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- identity -----------------------------------------------------------------------------
    def _identify(self, row: tuple | None) -> None:
        """Check the store id read with `row` against the one first seen (row[0] is the id)."""
        if row is None or row[0] is None:
            if self._store_id is not None:
                raise LedgerStoreError(f"the ledger {self.location} vanished from the database while it was open; "
                                       "the gate stays shut")
            raise LedgerMissing(f"no ledger named {self.ledger!r} in {self.location} (create one with "
                                "`dpsynth ledger init`)")
        store_id = row[0]
        if self._store_id is None:
            self._store_id = store_id
        elif store_id != self._store_id:
            raise LedgerStoreError(f"the database now holds another ledger under the name {self.ledger!r} (its store "
                                   "id changed while it was open); the gate stays shut")

    def check_identity(self) -> None:
        """Raise LedgerStoreError if the database now holds another ledger under this name
        (a random store id is written at initialise and compared on every access)."""
        row = self._read("read", lambda c: c.execute(
            f"SELECT store_id FROM {SCHEMA}.ledgers WHERE name = %s", (self.ledger,)).fetchone())
        self._identify(row)

    # -- interface ----------------------------------------------------------------------------
    def initialise(self, metadata: LedgerMetadata, head: Head) -> None:
        psycopg = _psycopg()
        store_id = secrets.token_hex(16)
        with self._lock:
            if self._writing:
                raise LedgerStoreError("initialise() inside exclusive()")
            conn = self._connection()
            try:
                conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
                try:
                    self._prologue(conn, _SCHEMA_LOCK_KEY)
                    if conn.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.heads",)).fetchone()[0] is None:
                        conn.execute(_DDL)
                    exists = conn.execute(f"SELECT 1 FROM {SCHEMA}.ledgers WHERE name = %s",
                                          (self.ledger,)).fetchone()
                    if exists is not None:
                        raise LedgerExists(f"{self.location} already holds a ledger; a ledger is never "
                                           "re-initialised")
                    conn.execute(f"INSERT INTO {SCHEMA}.ledgers (name, store_id, metadata) VALUES (%s, %s, %s)",
                                 (self.ledger, store_id, canonical_json(metadata.to_dict())))
                    conn.execute(f"INSERT INTO {SCHEMA}.heads (ledger, body) VALUES (%s, %s)",
                                 (self.ledger, canonical_json(head.to_dict())))
                except BaseException:
                    self._rollback(conn)
                    raise
            except psycopg.Error as exc:
                self._rollback(conn)
                raise self._error(f"cannot create the PostgreSQL ledger {self.location}", exc) from None
            self._commit(conn, "new ledger")
            self._store_id = store_id

    def metadata(self) -> LedgerMetadata:
        row = self._read("read", lambda c: c.execute(
            f"SELECT store_id, metadata FROM {SCHEMA}.ledgers WHERE name = %s", (self.ledger,)).fetchone())
        self._identify(row)
        return _metadata(row[1])

    def snapshot(self) -> LedgerSnapshot:
        def read(c: Any) -> tuple:
            md = c.execute(f"SELECT store_id, metadata FROM {SCHEMA}.ledgers WHERE name = %s",
                           (self.ledger,)).fetchone()
            rows = c.execute(f"SELECT sequence, body FROM {SCHEMA}.entries WHERE ledger = %s ORDER BY sequence",
                             (self.ledger,)).fetchall()
            head = c.execute(f"SELECT body FROM {SCHEMA}.heads WHERE ledger = %s", (self.ledger,)).fetchone()
            return md, rows, head

        md_row, rows, head_row = self._read("read", read)
        self._identify(md_row)
        metadata = _metadata(md_row[1])
        if head_row is None:
            raise LedgerStoreError("the ledger has no head record")
        return LedgerSnapshot(metadata, tuple(_entry(seq, body) for seq, body in rows), _head(head_row[0]))

    def tip(self) -> tuple[Head, Entry | None]:
        """The head and the entry it names (one consistent read; no full snapshot)."""
        def read(c: Any) -> tuple:
            ident = c.execute(f"SELECT store_id FROM {SCHEMA}.ledgers WHERE name = %s", (self.ledger,)).fetchone()
            head_row = c.execute(f"SELECT body FROM {SCHEMA}.heads WHERE ledger = %s", (self.ledger,)).fetchone()
            if ident is None or head_row is None:
                return ident, head_row, None, None
            head = _head(head_row[0])
            row = c.execute(f"SELECT sequence, body FROM {SCHEMA}.entries WHERE ledger = %s AND sequence = %s",
                            (self.ledger, int(head.sequence))).fetchone()
            return ident, head_row, head, row

        ident, head_row, head, row = self._read("read", read)
        self._identify(ident)
        if head is None:
            raise LedgerStoreError("the ledger has no head record")
        return head, (None if row is None else _entry(*row))

    def entry(self, sequence: int) -> Entry | None:
        """The entry with this sequence number, or None (one statement, with the identity check)."""
        row = self._read("read", lambda c: c.execute(
            f"SELECT l.store_id, e.sequence, e.body FROM {SCHEMA}.ledgers l LEFT JOIN {SCHEMA}.entries e "
            "ON e.ledger = l.name AND e.sequence = %s WHERE l.name = %s", (int(sequence), self.ledger)).fetchone())
        self._identify(row)
        return None if row[1] is None else _entry(row[1], row[2])

    # -- writing ------------------------------------------------------------------------------
    def _prologue(self, conn: Any, key: int) -> None:
        """Inside a fresh write transaction: wait (bounded) for the lock, make the commit durable."""
        conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_S}s'")
        fsync, _, _ = conn.execute(
            "SELECT current_setting('fsync'), pg_advisory_xact_lock(%s), "
            "CASE WHEN current_setting('synchronous_commit') = 'off' "
            "THEN set_config('synchronous_commit', 'on', true) END", (key,)).fetchone()
        if fsync != "on":
            raise LedgerStoreError(f"the PostgreSQL server of {self.location} runs with fsync = {fsync}: a commit "
                                   "would not survive a crash, so no ledger is written there")

    def _begin_write(self) -> tuple[Any, LedgerMetadata]:
        """BEGIN, the advisory lock, then the metadata read under it; once more on a fresh
        connection if the first one turns out to be dead (nothing was sent yet to undo)."""
        psycopg = _psycopg()
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
                self._prologue(conn, _lock_key(self.ledger))
                # A new statement, so a new snapshot: it sees every commit made before the lock.
                row = conn.execute(f"SELECT store_id, metadata FROM {SCHEMA}.ledgers WHERE name = %s",
                                   (self.ledger,)).fetchone()
                self._identify(row)
                return conn, _metadata(row[1])
            except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
                self._rollback(conn)
                raise LedgerMissing(f"no ledger named {self.ledger!r} in {self.location} (the database holds no "
                                    "dpsynth ledgers; create one with `dpsynth ledger init`)") from None
            except psycopg.errors.LockNotAvailable as exc:
                self._rollback(conn)
                raise self._error(f"cannot lock the PostgreSQL ledger {self.location} (another writer held it for "
                                  f"{LOCK_TIMEOUT_S} s)", exc) from None
            except psycopg.Error as exc:
                if attempt == 0 and self._dead(conn):
                    self._drop_connection()
                    continue
                self._rollback(conn)
                raise self._error(f"cannot lock the PostgreSQL ledger {self.location}", exc) from None
            except BaseException:
                self._rollback(conn)
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _commit(self, conn: Any, what: str) -> None:
        psycopg = _psycopg()
        try:
            conn.execute("COMMIT")
        except psycopg.Error as exc:
            if self._dead(conn):
                # COMMIT was sent and no answer came back: the server may have committed.
                self._drop_connection()
                raise self._error(
                    f"the connection to the PostgreSQL ledger {self.location} was lost during COMMIT, so whether "
                    f"the {what} was written is unknown (if it was, the next transaction reads it like any other "
                    "entry; it is never written twice)", exc, CommitOutcomeUnknown) from None
            self._rollback(conn)
            raise self._error(f"the {what} to the PostgreSQL ledger {self.location} failed at COMMIT; nothing "
                              "was written", exc) from None

    @contextmanager
    def exclusive(self) -> Iterator[LedgerWriter]:
        with self._lock:
            if self._writing:
                raise LedgerStoreError("exclusive() is not re-entrant")
            conn, md = self._begin_write()
            writer = _PgWriter(self, conn, md)
            self._writing = True
            try:
                yield writer
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                writer._open = False
                self._writing = False
            self._commit(conn, "append")


# -- helpers --------------------------------------------------------------------------------------
def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise LedgerStoreError("a PostgreSQL ledger needs psycopg 3: pip install 'dpsynth[postgres]' (or "
                               "'psycopg[binary]>=3.1')") from None
    return psycopg


def _defaults(conninfo: str) -> dict[str, Any]:
    """Connection options the DSN does not set: a name in pg_stat_activity, TCP keepalives
    (a dead peer is noticed in about a minute, and its lock freed by the server)."""
    try:
        given = _psycopg().conninfo.conninfo_to_dict(conninfo)
    except Exception:  # noqa: BLE001 - connect() reports the malformed DSN
        return {}
    wanted = {"fallback_application_name": APPLICATION_NAME, "keepalives": 1, "keepalives_idle": 30,
              "keepalives_interval": 10, "keepalives_count": 3}
    return {k: v for k, v in wanted.items() if k not in given}


def _password_forms(dsn: str) -> list[str]:
    """Every spelling of the DSN's password an error message might repeat (longest first)."""
    found: set[str] = set()
    base = dsn
    try:
        password = _psycopg().conninfo.conninfo_to_dict(base).get("password")
    except Exception:  # noqa: BLE001 - psycopg missing or DSN malformed: fall back to parsing it here
        password = None
    if _is_url(base):
        try:
            parts = urlsplit(base)
            userinfo = parts.netloc.rpartition("@")[0]
            if ":" in userinfo:
                found.add(userinfo.split(":", 1)[1])
            for m in re.finditer(r"(?:^|&)password=([^&]*)", parts.query):
                found.add(m.group(1))
        except ValueError:
            pass
    for m in _PASSWORD_KV.finditer(base):
        found.add(m.group(2).strip("'"))
    if password:
        found.add(password)
    for p in list(found):
        found.update({unquote(p), quote(p, safe="")})
    return sorted((p for p in found if p), key=len, reverse=True)


def _is_url(dsn: str) -> bool:
    return re.match(r"^postgres(ql)?://", dsn) is not None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"
