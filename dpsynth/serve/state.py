"""The service's own records (not the ledger): nonces seen, answers released, requests
that failed after their charge, jobs, dashboard sessions.  One SQLite file in the state folder, WAL, synchronous=FULL.

Nothing here decides what is spent — the ledger does, through the gate.  These
records let the service answer a retried request with what it already released,
refuse a replayed signature, and show jobs to their owner.  Answers are stored
before their release entry is written, so a crash between the two is repaired on
the retry (the stored answer is released then), and an answer whose release was
written is never lost.  A request that failed after its charge is remembered too: its
retry gets the same failure, never a second computation on the rows under the one
charge.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

__all__ = ["ServiceState", "StoredAnswer", "StoredFailure", "JobRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (key TEXT NOT NULL, nonce TEXT NOT NULL, expires REAL NOT NULL,
                                   PRIMARY KEY (key, nonce));
CREATE TABLE IF NOT EXISTS answers (person TEXT NOT NULL, request_id TEXT NOT NULL, dataset TEXT NOT NULL,
                                    request_sha256 TEXT NOT NULL, charge_sequence INTEGER NOT NULL,
                                    answer TEXT NOT NULL, receipts TEXT, PRIMARY KEY (person, request_id));
CREATE TABLE IF NOT EXISTS failures (person TEXT NOT NULL, request_id TEXT NOT NULL, dataset TEXT NOT NULL,
                                     request_sha256 TEXT NOT NULL, charge_sequence INTEGER NOT NULL,
                                     message TEXT NOT NULL, PRIMARY KEY (person, request_id));
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, person TEXT NOT NULL, request_id TEXT NOT NULL,
                                 dataset TEXT NOT NULL, request_sha256 TEXT NOT NULL, spec TEXT NOT NULL,
                                 state TEXT NOT NULL, stage TEXT NOT NULL, created TEXT NOT NULL,
                                 finished TEXT, error TEXT, receipts TEXT, epsilon REAL,
                                 UNIQUE (person, request_id));
CREATE TABLE IF NOT EXISTS sessions (token_sha256 TEXT PRIMARY KEY, person TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS login_codes (code_sha256 TEXT PRIMARY KEY, person TEXT NOT NULL, expires REAL NOT NULL);
"""


@dataclass(frozen=True)
class StoredAnswer:
    person: str
    request_id: str
    dataset: str
    request_sha256: str
    charge_sequence: int
    answer: Any
    receipts: list | None


@dataclass(frozen=True)
class StoredFailure:
    person: str
    request_id: str
    dataset: str
    request_sha256: str
    charge_sequence: int
    message: str


@dataclass(frozen=True)
class JobRecord:
    id: str
    person: str
    request_id: str
    dataset: str
    request_sha256: str
    spec: dict
    state: str            # queued | running | succeeded | failed | cancelled | interrupted
    stage: str
    created: str
    finished: str | None
    error: str | None
    receipts: list | None
    epsilon: float | None

    def to_public(self) -> dict[str, Any]:
        return {"id": self.id, "person": self.person, "dataset": self.dataset, "request_id": self.request_id,
                "spec": self.spec, "state": self.state, "stage": self.stage, "created": self.created,
                "finished": self.finished, "error": self.error, "epsilon": self.epsilon,
                "charges": None if self.receipts is None else sum(1 for r in self.receipts if r["kind"] == "charge")}


class ServiceState:
    """The state folder's database (thread-safe: one connection under a lock)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(folder / "service.db", isolation_level=None, check_same_thread=False,
                                     timeout=60)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- nonces ---------------------------------------------------------------------------------
    def use_nonce(self, key: str, nonce: str, ttl: float) -> bool:
        """Record a request nonce; False when it was seen before (a replay)."""
        now = time.time()
        with self._tx() as c:
            c.execute("DELETE FROM nonces WHERE expires < ?", (now,))
            try:
                c.execute("INSERT INTO nonces (key, nonce, expires) VALUES (?, ?, ?)", (key, nonce, now + ttl))
            except sqlite3.IntegrityError:
                return False
        return True

    # -- answers ----------------------------------------------------------------------------------
    def answer(self, person: str, request_id: str) -> StoredAnswer | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT person, request_id, dataset, request_sha256, charge_sequence, answer, receipts FROM answers "
                "WHERE person = ? AND request_id = ?", (person, request_id)).fetchone()
        if row is None:
            return None
        return StoredAnswer(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]),
                            None if row[6] is None else json.loads(row[6]))

    def keep_answer(self, person: str, request_id: str, dataset: str, request_sha256: str, charge_sequence: int,
                    answer: Any) -> bool:
        """Store an answer before its release; False (nothing changed) if one is stored already."""
        with self._tx() as c:
            try:
                c.execute("INSERT INTO answers (person, request_id, dataset, request_sha256, charge_sequence, answer)"
                          " VALUES (?, ?, ?, ?, ?, ?)",
                          (person, request_id, dataset, request_sha256, charge_sequence, json.dumps(answer)))
            except sqlite3.IntegrityError:
                return False
        return True

    def answer_released(self, person: str, request_id: str, receipts: list) -> None:
        with self._tx() as c:
            c.execute("UPDATE answers SET receipts = ? WHERE person = ? AND request_id = ?",
                      (json.dumps(receipts), person, request_id))

    def failure(self, person: str, request_id: str) -> StoredFailure | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT person, request_id, dataset, request_sha256, charge_sequence, message FROM failures "
                "WHERE person = ? AND request_id = ?", (person, request_id)).fetchone()
        return None if row is None else StoredFailure(*row)

    def keep_failure(self, person: str, request_id: str, dataset: str, request_sha256: str, charge_sequence: int,
                     message: str) -> None:
        """Remember that a request failed after its charge (its retries fail the same way)."""
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO failures (person, request_id, dataset, request_sha256, charge_sequence, "
                      "message) VALUES (?, ?, ?, ?, ?, ?)",
                      (person, request_id, dataset, request_sha256, charge_sequence, message))

    # -- jobs ---------------------------------------------------------------------------------------
    _JOB_COLUMNS = ("id, person, request_id, dataset, request_sha256, spec, state, stage, created, finished, error, "
                    "receipts, epsilon")

    def _job(self, row: tuple | None) -> JobRecord | None:
        if row is None:
            return None
        return JobRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), row[6], row[7], row[8], row[9],
                         row[10], None if row[11] is None else json.loads(row[11]), row[12])

    def add_job(self, job_id: str, person: str, request_id: str, dataset: str, request_sha256: str, spec: dict,
                created: str) -> tuple[JobRecord, bool]:
        """(the job, True) when new; (the job already submitted under this request id, False)."""
        with self._tx() as c:
            row = c.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE person = ? AND request_id = ?",
                            (person, request_id)).fetchone()
            if row is not None:
                return self._job(row), False
            c.execute("INSERT INTO jobs (id, person, request_id, dataset, request_sha256, spec, state, stage, created)"
                      " VALUES (?, ?, ?, ?, ?, ?, 'queued', 'queued', ?)",
                      (job_id, person, request_id, dataset, request_sha256, json.dumps(spec), created))
            row = c.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row), True

    def job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._job(self._conn.execute(f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE id = ?",
                                                (job_id,)).fetchone())

    def jobs(self, person: str | None = None, states: tuple[str, ...] | None = None) -> list[JobRecord]:
        sql, args = f"SELECT {self._JOB_COLUMNS} FROM jobs", []
        where = []
        if person is not None:
            where.append("person = ?")
            args.append(person)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            args.extend(states)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created, id"
        with self._lock:
            return [self._job(r) for r in self._conn.execute(sql, args).fetchall()]

    def update_job(self, job_id: str, **fields: Any) -> None:
        allowed = {"state", "stage", "finished", "error", "receipts", "epsilon"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update job fields {sorted(set(fields) - allowed)}")
        values = [json.dumps(v) if k == "receipts" and v is not None else v for k, v in fields.items()]
        with self._tx() as c:
            c.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", (*values, job_id))

    # -- dashboard sessions -----------------------------------------------------------------------
    def add_login_code(self, code_sha256: str, person: str, ttl: float) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM login_codes WHERE expires < ?", (time.time(),))
            c.execute("INSERT INTO login_codes VALUES (?, ?, ?)", (code_sha256, person, time.time() + ttl))

    def take_login_code(self, code_sha256: str) -> str | None:
        """The person a one-time login code was made for; the code is used up either way."""
        with self._tx() as c:
            row = c.execute("SELECT person, expires FROM login_codes WHERE code_sha256 = ?", (code_sha256,)).fetchone()
            c.execute("DELETE FROM login_codes WHERE code_sha256 = ?", (code_sha256,))
        if row is None or row[1] < time.time():
            return None
        return row[0]

    def add_session(self, token_sha256: str, person: str, ttl: float) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
            c.execute("INSERT INTO sessions VALUES (?, ?, ?)", (token_sha256, person, time.time() + ttl))

    def session_person(self, token_sha256: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT person, expires FROM sessions WHERE token_sha256 = ?",
                                     (token_sha256,)).fetchone()
        if row is None or row[1] < time.time():
            return None
        return row[0]

    def end_session(self, token_sha256: str) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM sessions WHERE token_sha256 = ?", (token_sha256,))
