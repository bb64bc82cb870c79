"""The LedgerStore interface, the same tests on every backend (SQLite file, PostgreSQL).

What store.py promises: initialise once; a consistent snapshot and tip; an
exclusive append transaction that serialises writers, shows nothing until it
commits and nothing at all if its block raises; records kept as their canonical
JSON text; entries and metadata that ordinary SQL cannot update or delete.
The stores are fed records of a real signed ledger (the store itself checks
no signature: that is the layer above).
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time

import pytest

from accountant.events import GaussianEvent
from accountant.ledger.entry import Head
from accountant.ledger.hashing import canonical_json
from accountant.ledger.open_store import open_store
from accountant.ledger.store import LedgerExists, LedgerMissing, LedgerStoreError
from accountant.testing import make_test_gate
from tests.postgres_server import fresh_ledger_name

BACKENDS = ["sqlite", "postgres"]


class Backend:
    """Where a fresh ledger goes, and raw SQL on it (what the tests check behind the store)."""

    def __init__(self, kind: str, tmp_path, server=None) -> None:
        self.kind, self.tmp_path, self.server = kind, tmp_path, server

    def new_location(self) -> str:
        if self.kind == "sqlite":
            return str(self.tmp_path / f"{fresh_ledger_name('s')}.db")
        return self.server.url(fresh_ledger_name())

    def _name(self, location: str) -> str:
        return location.rsplit("#ledger=", 1)[1]

    def raw(self, location: str, sql_sqlite: str, sql_pg: str, *params):
        """Run one statement as a plain SQL client (triggers left in place)."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(location, isolation_level=None)
            try:
                return conn.execute(sql_sqlite, params).fetchall()
            finally:
                conn.close()
        with self.server.connect() as conn:
            args = (self._name(location), *params) if "%s" in sql_pg else params
            cur = conn.execute(sql_pg, args or None)
            return cur.fetchall() if cur.description else []

    def bodies(self, location: str) -> list[str]:
        return [b for (b,) in self.raw(location, "SELECT body FROM entries ORDER BY sequence",
                                       "SELECT body FROM dpsynth.entries WHERE ledger = %s ORDER BY sequence")]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    server = request.getfixturevalue("postgres_server") if request.param == "postgres" else None
    return Backend(request.param, tmp_path, server)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """(metadata, genesis head, [(entry, head)]) of a real ledger with three charges."""
    tl = make_test_gate(tmp_path_factory.mktemp("source"), epsilon=1.0, delta=1e-6)
    for i in range(3):
        tl.gate.charge(GaussianEvent(40.0), purpose=f"charge {i}", generator="mst", parameters={"i": i})
    tl.gate.close()
    snap = open_store(tl.ledger_path).snapshot()
    heads = [Head(e.sequence, e.entry_hash, f"head-signature-{e.sequence}") for e in snap.entries]
    return snap.metadata, Head(0, snap.metadata.hash, ""), list(zip(snap.entries, heads))


def _fresh(backend, records):
    md, genesis, _ = records
    location = backend.new_location()
    store = open_store(location)
    store.initialise(md, genesis)
    return location, store


def _append(store, pairs):
    with store.exclusive() as tx:
        for entry, head in pairs:
            tx.append(entry, head)


def test_a_store_without_a_ledger_is_missing(backend):
    store = open_store(backend.new_location())
    with pytest.raises(LedgerMissing):
        store.metadata()
    with pytest.raises(LedgerMissing):
        store.snapshot()
    with pytest.raises(LedgerMissing):
        with store.exclusive():
            pass
    store.close()


def test_a_ledger_is_initialised_once(backend, records):
    md, genesis, _ = records
    location, store = _fresh(backend, records)
    snap = store.snapshot()
    assert snap.metadata == md and snap.entries == () and snap.head == genesis
    assert store.tip() == (genesis, None)
    for again in (store, open_store(location)):
        with pytest.raises(LedgerExists):
            again.initialise(md, genesis)
        again.close()


def test_appends_are_read_back_exactly_and_stored_as_canonical_json(backend, records):
    _, _, pairs = records
    location, store = _fresh(backend, records)
    _append(store, pairs[:2])
    _append(store, pairs[2:])
    other = open_store(location)
    snap = other.snapshot()
    assert snap.entries == tuple(e for e, _ in pairs) and snap.head == pairs[-1][1]
    assert other.tip() == (pairs[-1][1], pairs[-1][0])
    assert other.entry(2) == pairs[1][0] and other.entry(4) is None and other.entry(0) is None
    with other.exclusive() as tx:
        assert tx.metadata == records[0]
        assert tx.entries_after(1) == [e for e, _ in pairs[1:]]
        assert tx.head() == pairs[-1][1]
    # What readers parse is the canonical JSON text, byte for byte.
    assert backend.bodies(location) == [canonical_json(e.to_dict()) for e, _ in pairs]
    store.close()
    other.close()


def test_a_block_that_raises_appends_nothing(backend, records):
    _, genesis, pairs = records
    location, store = _fresh(backend, records)
    _append(store, pairs[:1])
    with pytest.raises(RuntimeError, match="the gate refused"):
        with store.exclusive() as tx:
            tx.append(*pairs[1])
            raise RuntimeError("the gate refused")
    fresh = open_store(location)
    assert fresh.snapshot().entries == (pairs[0][0],) and fresh.tip() == (pairs[0][1], pairs[0][0])
    assert backend.bodies(location) == [canonical_json(pairs[0][0].to_dict())]
    # The store is still usable after the rollback.
    _append(store, pairs[1:2])
    assert [e.sequence for e in fresh.snapshot().entries] == [1, 2]
    store.close()
    fresh.close()


def test_nothing_appended_is_visible_before_the_block_exits(backend, records):
    _, genesis, pairs = records
    location, store = _fresh(backend, records)
    reader = open_store(location)
    with store.exclusive() as tx:
        tx.append(*pairs[0])
        assert reader.snapshot().entries == () and reader.tip() == (genesis, None)
        assert reader.entry(1) is None
    assert reader.snapshot().entries == (pairs[0][0],)
    store.close()
    reader.close()


def test_exclusive_serialises_writers(backend, records):
    """A second writer enters only after the first commits, and then sees its append
    (a broken lock would let it read the totals without the first one's entry)."""
    _, _, pairs = records
    location, first = _fresh(backend, records)
    second = open_store(location)
    seen: list = []
    entered = threading.Event()

    def writer() -> None:
        with second.exclusive() as tx:
            entered.set()
            seen.append(tx.entries_after(0))

    with first.exclusive() as tx:
        thread = threading.Thread(target=writer)
        thread.start()
        entered.wait(0.5)  # would be set by now if the lock did not hold the second writer
        assert not entered.is_set()
        tx.append(*pairs[0])
    thread.join(30)
    assert seen == [[pairs[0][0]]]
    first.close()
    second.close()


def test_entries_and_metadata_cannot_be_updated_or_deleted_with_sql(backend, records):
    _, _, pairs = records
    location, store = _fresh(backend, records)
    _append(store, pairs[:2])
    store.close()
    errors = (sqlite3.DatabaseError,) if backend.kind == "sqlite" else (__import__("psycopg").Error,)
    attempts = [
        ("UPDATE entries SET body = 'x'", "UPDATE dpsynth.entries SET body = 'x' WHERE ledger = %s"),
        ("DELETE FROM entries WHERE sequence = 2", "DELETE FROM dpsynth.entries WHERE ledger = %s AND sequence = 2"),
        ("UPDATE metadata SET body = 'x'", "UPDATE dpsynth.ledgers SET metadata = 'x' WHERE name = %s"),
    ]
    if backend.kind == "postgres":
        attempts += [("", "DELETE FROM dpsynth.heads WHERE ledger = %s"),
                     ("", "DELETE FROM dpsynth.ledgers WHERE name = %s"),
                     ("", "TRUNCATE dpsynth.entries")]
    for sql_sqlite, sql_pg in attempts:
        with pytest.raises(errors, match="append-only|immutable|never deleted"):
            backend.raw(location, sql_sqlite, sql_pg)
    assert open_store(location).snapshot().entries == tuple(e for e, _ in pairs[:2])


def test_the_store_is_reopened_in_a_forked_child(backend, records):
    import multiprocessing as mp

    _, _, pairs = records
    location, store = _fresh(backend, records)
    _append(store, pairs[:1])
    session = store._conn.info.backend_pid if backend.kind == "postgres" else None
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=_child_appends, args=(store, pairs[1]))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    # The parent's own connection still works (the child did not end its session on the
    # way out), and sees the child's commit.
    assert [e.sequence for e in store.snapshot().entries] == [1, 2]
    if session is not None:
        assert store._conn.info.backend_pid == session
    _append(store, pairs[2:])
    assert dataclasses.astuple(store.tip()[0]) == dataclasses.astuple(pairs[2][1])
    store.close()


def _child_appends(store, pair) -> None:
    import gc
    import sys

    _append(store, [pair])
    store.close()
    gc.collect()
    sys.stdout.flush()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_threads_sharing_one_store_take_turns(backend, records):
    """Readers and a writer on one store object from several threads: no interleaved
    transactions, every read consistent.  (PostgreSQL's store promises it, for a service's
    threads; the SQLite store is used by one thread at a time, which the gate ensures.)"""
    _, genesis, pairs = records
    location, store = _fresh(backend, records)
    problems: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                head, last = store.tip()
                snap = store.snapshot()
                assert head.sequence == (0 if last is None else last.sequence)
                assert len(snap.entries) == snap.head.sequence
        except BaseException as exc:  # noqa: BLE001 - reported below
            problems.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    for pair in pairs:
        _append(store, [pair])
        time.sleep(0.01)
    done.set()
    for t in readers:
        t.join(30)
    assert not problems, problems
    assert len(store.snapshot().entries) == 3
    store.close()


def test_a_vanished_or_replaced_store_keeps_the_store_shut(backend, records):
    md, genesis, pairs = records
    location, store = _fresh(backend, records)
    _append(store, pairs[:1])
    if backend.kind == "sqlite":
        import os

        os.replace(location, location + ".old")
        with pytest.raises(LedgerStoreError, match="vanished|replaced"):
            store.snapshot()
    else:
        with backend.server.connect() as conn, conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            conn.execute("UPDATE dpsynth.ledgers SET store_id = 'another' WHERE name = %s",
                         (backend._name(location),))
        with pytest.raises(LedgerStoreError, match="another ledger"):
            store.snapshot()
        with pytest.raises(LedgerStoreError, match="another ledger"):
            store.check_identity()
        with pytest.raises(LedgerStoreError, match="another ledger"):
            with store.exclusive():
                pass
    store.close()
