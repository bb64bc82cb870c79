"""Ledgers in PostgreSQL: the gate, the CLI, racing processes, tampering by a database
superuser, restarts and killed sessions, lost commit acknowledgements, passwords and
hostile ledger names — all against a real, throwaway server (tests/postgres_server.py).

The store-interface tests shared with SQLite are in test_store.py.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import threading
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from accountant.errors import LedgerIntegrityError
from accountant.events import GaussianEvent
from accountant.export import to_jsonl
from accountant.filter import RenyiFilter
from accountant.gate import Gate
from accountant.keys import load_public_key
from accountant.ledger.open_store import describe_location, open_store, parse_postgres_url
from accountant.ledger.postgres import PostgresLedgerStore, redact_dsn
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.ledger.store import CommitOutcomeUnknown, LedgerExists, LedgerMissing, LedgerStoreError
from accountant.policy import PolicyError
from accountant.receipt import Receipt
from accountant.testing import make_test_gate
from accountant.verify import verify_path
from dpsynth.cli import app
from tests.postgres_server import PASSWORD, PASSWORD_DATABASE, PASSWORD_USER, fresh_ledger_name

from . import _workers

COMMIT = "ab" * 32


def _cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def _name(url: str) -> str:
    return parse_postgres_url(url)[1]


def _snapshot(location):
    store = open_store(location)
    try:
        return store.snapshot()
    finally:
        store.close()


def _verify(tl, **kwargs):
    return verify_path(tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub, **kwargs)


@contextlib.contextmanager
def _attacker(server):
    """A database superuser editing the tables: one transaction, ordinary triggers off."""
    with server.connect() as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        yield conn


def _wait_for(server, sql: str, params=(), timeout: float = 30.0):
    """Poll `sql` on a fresh connection until it returns a row (a deadline, not a delay)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.connect() as conn:
            row = conn.execute(sql, params).fetchone()
        if row is not None:
            return row
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for: {sql}")


@contextlib.contextmanager
def _server_setting(server, name: str, value: str):
    """ALTER SYSTEM for the duration of the block (this test process has its own server)."""
    with server.connect() as conn:
        conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
    _wait_for(server, "SELECT 1 WHERE current_setting(%s) = %s", (name, value))
    try:
        yield
    finally:
        with server.connect() as conn:
            conn.execute(f"ALTER SYSTEM RESET {name}")
            conn.execute("SELECT pg_reload_conf()")
        _wait_for(server, "SELECT 1 WHERE current_setting(%s) <> %s", (name, value))


@pytest.fixture
def pg_ledger(tmp_path, pg_ledger_url):
    tl = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6, ledger=pg_ledger_url)
    yield tl
    tl.gate.close()


# -- addresses and names -------------------------------------------------------------------------
def test_ledger_urls_and_names():
    assert parse_postgres_url("postgresql://u@h/db") == ("postgresql://u@h/db", "default")
    assert parse_postgres_url("postgres://u@h/db?sslmode=require#ledger=census_2030") == (
        "postgres://u@h/db?sslmode=require", "census_2030")
    for bad in ("postgresql://h/db#census", "postgresql://h/db#name=x", "postgresql://h/db#ledger"):
        with pytest.raises(ValueError, match="#ledger=NAME"):
            parse_postgres_url(bad)
    assert isinstance(open_store("postgresql://u@h/db#ledger=a_1"), PostgresLedgerStore)  # no connection yet
    assert isinstance(open_store("ledger.db"), SQLiteLedgerStore)
    assert isinstance(open_store(Path("ledger.db")), SQLiteLedgerStore)
    with pytest.raises(ValueError, match="give the URL as a string"):
        open_store(Path("postgresql://u@h/db"))  # pathlib folded '//' into '/'
    assert redact_dsn("postgresql://alice:s3cr%40t@h:5432/db?password=x2&sslmode=require#ledger=a") == \
        "postgresql://alice:***@h:5432/db?password=***&sslmode=require#ledger=a"
    assert redact_dsn("host=h password='a b' user=alice") == "host=h password=*** user=alice"
    assert describe_location("postgres://bob:hunter2@h/db") == "postgres://bob:***@h/db"


HOSTILE = ["x'; DROP TABLE dpsynth.entries; --", "default\"; DROP SCHEMA dpsynth CASCADE; --", "Default",
           "1st", "", "a" * 64, "a-b", "a b", "ledger\x00", "é", "a;b", "../x", "a%27"]


def test_a_hostile_ledger_name_is_refused_before_any_sql(postgres_server, pg_ledger, tmp_path):
    assert PostgresLedgerStore(postgres_server.dsn(), ledger="a" * 63).ledger == "a" * 63
    for name in HOSTILE:
        with pytest.raises(ValueError, match="not a ledger name"):
            PostgresLedgerStore(postgres_server.dsn(), ledger=name)
        with pytest.raises(ValueError, match="not a ledger name"):
            open_store(postgres_server.url(name))
        with pytest.raises(ValueError, match="not a ledger name"):
            Gate.open(postgres_server.url(name), ledger_key=pg_ledger.ledger_key)
    res = _cli("ledger", "verify", postgres_server.url(HOSTILE[0]))
    assert res.exit_code == 1 and "not a ledger name" in res.output
    res = _cli("ledger", "init", postgres_server.url(HOSTILE[1]), "--policy", pg_ledger.policy_path,
               "--officer-key", pg_ledger.officer_key, "--ledger-key", pg_ledger.ledger_pub)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit) and "not a ledger name" in res.output
    # The tables are all there, and the open ledger still charges and verifies.
    with postgres_server.connect() as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'dpsynth'")}
    assert tables == {"ledgers", "entries", "heads"}
    pg_ledger.gate.charge(GaussianEvent(50.0), purpose="still fine", generator="mst")
    assert _verify(pg_ledger).ok
    # The database refuses such a name too (belt and braces).
    with pytest.raises(psycopg.errors.CheckViolation):
        with postgres_server.connect() as conn:
            conn.execute("INSERT INTO dpsynth.ledgers (name, store_id, metadata) VALUES ('Bad Name', 'x', '{}')")


# -- the gate and the CLI ----------------------------------------------------------------------------
def test_charge_release_seal_verify_and_export_round_trip(pg_ledger, tmp_path):
    gate = pg_ledger.gate
    r1 = gate.charge(GaussianEvent(30.0), purpose="marginals", generator="mst", actor="alice",
                     parameters={"cliques": [["a", "b"]]})
    r2 = gate.charge(GaussianEvent(40.0), purpose="more", generator="mst", actor="bob", run_id="run-1")
    rel = gate.release(r1, COMMIT)
    gate.release(r2, COMMIT)
    seal = gate.seal([r1, r2], "cd" * 32, purpose="model", generator="mst")
    gate.confirm(seal)
    gate.verify_receipt(r1)
    assert [r1.sequence, r2.sequence, rel.sequence, seal.sequence] == [1, 2, 3, 5]

    report = _verify(pg_ledger, receipts=[r1, r2, rel, seal], expect_heads=[(5, seal.entry_hash)])
    assert report.ok, report.summary()
    assert report.entries == 5 and report.kinds == {"charge": 2, "release": 2, "seal": 1}
    assert report.receipts_checked == 4

    # Exactly the same ledger as a file: copied record by record through the store
    # interface into SQLite, the JSONL export is byte for byte the same, and verifies.
    snap = _snapshot(pg_ledger.ledger_path)
    copy = SQLiteLedgerStore(tmp_path / "copy.db")
    copy.initialise(snap.metadata, _snapshot_head0(snap))
    with copy.exclusive() as tx:
        for e in snap.entries:
            tx.append(e, snap.head if e.sequence == len(snap.entries) else _unsigned_head(e))
    copy.close()
    assert to_jsonl(_snapshot(tmp_path / "copy.db")) == to_jsonl(snap)
    (tmp_path / "pg.jsonl").write_text(to_jsonl(snap))
    assert _verify(pg_ledger).ok and verify_path(tmp_path / "pg.jsonl", officer_public_key=pg_ledger.officer_pub,
                                                 ledger_public_key=pg_ledger.ledger_pub).ok

    # A reopened gate verifies the whole chain and carries on.
    gate.close()
    again = pg_ledger.reopen()
    assert again.charge(GaussianEvent(50.0), purpose="after reopening", generator="mst").sequence == 6
    again.close()


def _snapshot_head0(snap):
    from accountant.ledger.entry import Head

    return Head(0, snap.metadata.hash, "")


def _unsigned_head(e):
    from accountant.ledger.entry import Head

    return Head(e.sequence, e.entry_hash, "")


def test_the_ledger_cli_takes_a_postgres_url(postgres_server, tmp_path):
    files = make_test_gate(tmp_path / "files")  # keys and a signed policy (its own file ledger is unused)
    files.gate.close()
    url = postgres_server.url(fresh_ledger_name())
    res = _cli("ledger", "init", url, "--policy", files.policy_path, "--officer-key", files.officer_key,
               "--ledger-key", files.ledger_pub)
    assert res.exit_code == 0, res.output
    assert f"#ledger={_name(url)}" in res.output
    res = _cli("ledger", "init", url, "--policy", files.policy_path, "--officer-key", files.officer_key,
               "--ledger-key", files.ledger_pub)
    assert res.exit_code == 1 and "never re-initialised" in res.output
    res = _cli("ledger", "charge", url, "--event", GaussianEvent(30.0).to_json(), "--purpose", "external run",
               "--ledger-key", files.ledger_key, "--generator", "mst")
    assert res.exit_code == 0, res.output
    receipt = json.loads(res.stdout)
    res = _cli("ledger", "status", url, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["entries"] == 1 and json.loads(res.stdout)["verifies"]
    for fmt in ("jsonl", "csv", "html"):
        res = _cli("ledger", "export", url, "--out", tmp_path / f"out.{fmt}", "--format", fmt)
        assert res.exit_code == 0, res.output
    head = f"1:{receipt['entry_hash']}"
    res = _cli("ledger", "verify", url, "--officer-key", files.officer_pub, "--ledger-pub", files.ledger_pub,
               "--expect-head", head)
    assert res.exit_code == 0 and "OK: 1 entries verified" in res.output, res.output
    res = _cli("ledger", "verify", tmp_path / "out.jsonl", "--officer-key", files.officer_pub,
               "--ledger-pub", files.ledger_pub, "--expect-head", head)
    assert res.exit_code == 0, res.output
    res = _cli("ledger", "checkpoint", url, "--officer-key", files.officer_key, "--out", tmp_path / "cp.json")
    assert res.exit_code == 0, res.output
    res = _cli("ledger", "verify", url, "--checkpoint", tmp_path / "cp.json")
    assert res.exit_code == 0, res.output
    res = _cli("ledger", "verify", postgres_server.url(fresh_ledger_name()))
    assert res.exit_code == 1 and "no ledger named" in res.output


# -- racing processes ---------------------------------------------------------------------------------
def test_racing_processes_never_overspend_and_never_lose_or_repeat_a_sequence_number(pg_ledger):
    pg_ledger.gate.close()
    filt = RenyiFilter(1.0, 1e-6)
    # σ for a budget of about 150 charges: 8 processes × 25 tries run it out.
    sigma = 30.0 * (150 * filt.cost(GaussianEvent(30.0)) / filt.budget) ** 0.5
    capacity = int(filt.budget // filt.cost(GaussianEvent(sigma)))
    assert 120 <= capacity <= 180, capacity
    # fork: eight fresh interpreters (spawn) would spend seconds importing scipy; each child
    # opens its own gate and connection (the store never reuses one across a fork).
    ctx = mp.get_context("fork")
    start, queue = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_workers.race_n, args=(pg_ledger.ledger_path, str(pg_ledger.ledger_key), w, 25,
                                                       sigma, start, queue)) for w in range(8)]
    for p in procs:
        p.start()
    start.set()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    receipts = [Receipt.from_dict(d) for _, rs, _ in results for d in rs]
    entries = _snapshot(pg_ledger.ledger_path).entries
    # Every admitted charge is in the ledger exactly once, and nothing else is.
    assert sorted((r.sequence, r.entry_hash) for r in receipts) == [(e.sequence, e.entry_hash) for e in entries]
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert len(entries) == capacity and entries[-1].filter_total <= filt.budget
    assert any(refused for _, _, refused in results), "the budget never refused a charge"
    assert sum(1 for _, rs, _ in results if rs) >= 2, "the processes did not actually race"
    report = _verify(pg_ledger, receipts=receipts)
    assert report.ok and report.receipts_checked == capacity, report.summary()


# -- a database superuser tampering -------------------------------------------------------------------
def _charges(tl, n):
    return [tl.gate.charge(GaussianEvent(40.0), purpose=f"charge {i}", generator="mst") for i in range(n)]


def test_an_entry_edited_in_sql_is_caught_by_the_gate_and_by_verify(postgres_server, pg_ledger):
    _charges(pg_ledger, 4)
    pg_ledger.gate.close()
    with _attacker(postgres_server) as conn:
        (body,) = conn.execute("SELECT body FROM dpsynth.entries WHERE ledger = %s AND sequence = 2",
                               (_name(pg_ledger.ledger_path),)).fetchone()
        conn.execute("UPDATE dpsynth.entries SET body = %s WHERE ledger = %s AND sequence = 2",
                     (body.replace('"charge 1"', '"something innocent"'), _name(pg_ledger.ledger_path)))
    report = _verify(pg_ledger)
    assert not report.ok and report.first_bad_entry == 2 and "edited" in str(report.first_problem)
    with pytest.raises(LedgerIntegrityError, match="entry #2"):
        pg_ledger.reopen()
    res = _cli("ledger", "verify", pg_ledger.ledger_path)
    assert res.exit_code == 1 and "first bad entry #2" in res.output


def test_the_last_entry_deleted_and_an_old_head_restored_is_caught(postgres_server, pg_ledger):
    name = _name(pg_ledger.ledger_path)
    _charges(pg_ledger, 2)
    with postgres_server.connect() as conn:
        (old_head,) = conn.execute("SELECT body FROM dpsynth.heads WHERE ledger = %s", (name,)).fetchone()
    (last,) = _charges(pg_ledger, 1)
    with _attacker(postgres_server) as conn:  # a refund: the head saved before the last charge is validly signed
        conn.execute("DELETE FROM dpsynth.entries WHERE ledger = %s AND sequence = 3", (name,))
        conn.execute("UPDATE dpsynth.heads SET body = %s WHERE ledger = %s", (old_head, name))
    # The open gate refuses a head behind what it already read …
    with pytest.raises(LedgerIntegrityError, match="cut short"):
        pg_ledger.gate.charge(GaussianEvent(40.0), purpose="after the refund", generator="mst")
    with pytest.raises(LedgerIntegrityError):
        pg_ledger.gate.confirm(last)
    pg_ledger.gate.close()
    # … a reopened one is stopped by the witness …
    with pytest.raises(LedgerIntegrityError, match="rolled back"):
        pg_ledger.reopen()
    # … and an auditor holding the receipt or the pinned head sees it.
    report = _verify(pg_ledger, receipts=[last])
    assert not report.ok and "does not hold it" in report.summary()
    assert not _verify(pg_ledger, expect_heads=[(3, last.entry_hash)]).ok


@pytest.mark.parametrize("keep_store_id", [True, False])
def test_another_ledger_swapped_in_under_the_name_is_caught(postgres_server, pg_ledger, tmp_path, keep_store_id):
    victim = _name(pg_ledger.ledger_path)
    (receipt,) = _charges(pg_ledger, 1)
    # The attacker makes a ledger of their own (their own officer and keys), then puts it
    # under the victim's name, with the victim's store id or with its own.
    other = make_test_gate(tmp_path / "other", ledger=postgres_server.url(fresh_ledger_name("other")))
    other.gate.charge(GaussianEvent(1000.0), purpose="theirs", generator="mst")
    other.gate.close()
    source = _name(other.ledger_path)
    with _attacker(postgres_server) as conn:
        (store_id,) = conn.execute("SELECT store_id FROM dpsynth.ledgers WHERE name = %s", (victim,)).fetchone()
        for table, key in (("entries", "ledger"), ("heads", "ledger"), ("ledgers", "name")):
            conn.execute(f"DELETE FROM dpsynth.{table} WHERE {key} = %s", (victim,))
        conn.execute("INSERT INTO dpsynth.ledgers (name, store_id, metadata) SELECT %s, %s, metadata "
                     "FROM dpsynth.ledgers WHERE name = %s",
                     (victim, store_id if keep_store_id else "attacker", source))
        conn.execute("INSERT INTO dpsynth.entries SELECT %s, sequence, body FROM dpsynth.entries WHERE ledger = %s",
                     (victim, source))
        conn.execute("INSERT INTO dpsynth.heads SELECT %s, body FROM dpsynth.heads WHERE ledger = %s",
                     (victim, source))
    gate = pg_ledger.gate
    match = "another ledger"
    with pytest.raises((LedgerIntegrityError, LedgerStoreError), match=match):
        gate.charge(GaussianEvent(40.0), purpose="into the swapped ledger", generator="mst")
    with pytest.raises(LedgerIntegrityError):
        gate.confirm(receipt)
    gate.close()
    report = _verify(pg_ledger, receipts=[receipt])
    assert not report.ok and "not the published one" in report.summary()
    with pytest.raises(PolicyError, match="not this ledger's key"):  # theirs is signed with another key
        pg_ledger.reopen()


# -- restarts, killed sessions, lost acknowledgements ---------------------------------------------------
def test_a_server_restart_between_two_charges_is_survived(postgres_server, pg_ledger):
    (first,) = _charges(pg_ledger, 1)
    postgres_server.restart()
    second = pg_ledger.gate.charge(GaussianEvent(40.0), purpose="after the restart", generator="mst")
    assert second.sequence == first.sequence + 1
    postgres_server.restart()
    pg_ledger.gate.confirm(second)  # reads reconnect too
    report = _verify(pg_ledger, receipts=[first, second])
    assert report.ok and report.entries == 2, report.summary()


def _charge_in_thread(gate):
    out: dict = {}

    def run() -> None:
        try:
            out["receipt"] = gate.charge(GaussianEvent(40.0), purpose="interrupted", generator="mst")
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            out["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@pytest.mark.parametrize("how", ["terminate", "restart"])
def test_a_charge_cut_off_in_its_transaction_hands_out_nothing(postgres_server, pg_ledger, how):
    before = _charges(pg_ledger, 2)
    holder = postgres_server.connect()
    holder.execute("BEGIN")
    # Hold the head table, so the charge waits inside its transaction: entry inserted,
    # head not yet replaced, advisory lock held.
    holder.execute("LOCK TABLE dpsynth.heads IN EXCLUSIVE MODE")
    thread, out = _charge_in_thread(pg_ledger.gate)
    (pid,) = _wait_for(postgres_server, "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND query LIKE 'UPDATE dpsynth.heads%%'")
    if how == "terminate":
        with postgres_server.connect() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    else:
        # A crash (immediate): a fast restart ends the lock holder first, and the waiting charge
        # can then commit before its own session is ended — a commit, correctly receipted, and
        # not the cut-off this test is about.
        postgres_server.restart("immediate")
    thread.join(60)
    with contextlib.suppress(Exception):
        holder.close()
    assert "receipt" not in out, "a receipt was handed out"
    assert isinstance(out["error"], LedgerStoreError) and "nothing was written" in str(out["error"]), out
    # Nothing of it reached the ledger; the ledger verifies; the same gate carries on.
    assert [e.sequence for e in _snapshot(pg_ledger.ledger_path).entries] == [1, 2]
    after = pg_ledger.gate.charge(GaussianEvent(40.0), purpose="next", generator="mst")
    assert after.sequence == 3
    report = _verify(pg_ledger, receipts=[*before, after])
    assert report.ok, report.summary()


def test_a_commit_whose_acknowledgement_is_lost_is_counted_once(postgres_server, pg_ledger):
    """COMMIT reaches the server and commits, but the client never hears back — as when a
    synchronous standby is waited for and the session is cut off.  The store says the
    outcome is unknown; no receipt is handed out; the next charge reads the entry back
    (signed with the gate's own key, it verifies) and appends after it, never a copy."""
    (first,) = _charges(pg_ledger, 1)
    pg_ledger.gate.close()
    with _server_setting(postgres_server, "synchronous_standby_names", "no_such_standby"):
        gate = pg_ledger.reopen()  # a new session, started after the reload
        thread, out = _charge_in_thread(gate)
        (pid,) = _wait_for(postgres_server, "SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
        with postgres_server.connect() as conn:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(60)
    assert "receipt" not in out and isinstance(out["error"], CommitOutcomeUnknown), out
    assert "unknown" in str(out["error"])
    entries = _snapshot(pg_ledger.ledger_path).entries
    assert [e.sequence for e in entries] == [1, 2]  # it was committed after all
    third = gate.charge(GaussianEvent(40.0), purpose="after the lost acknowledgement", generator="mst")
    assert third.sequence == 3
    entries = _snapshot(pg_ledger.ledger_path).entries
    assert [e.purpose for e in entries] == ["charge 0", "interrupted", "after the lost acknowledgement"]
    report = _verify(pg_ledger, receipts=[first, third])
    assert report.ok, report.summary()
    gate.close()


# -- durability settings ------------------------------------------------------------------------------
def test_synchronous_commit_off_in_the_session_is_overridden_for_writes(postgres_server, pg_ledger):
    _charges(pg_ledger, 1)
    dsn = postgres_server.dsn() + "&options=-c%20synchronous_commit%3Doff"
    store = PostgresLedgerStore(dsn, ledger=_name(pg_ledger.ledger_path))
    with store.exclusive() as tx:
        assert tx._conn.execute("SHOW synchronous_commit").fetchone() == ("on",)
    assert store._conn.execute("SHOW synchronous_commit").fetchone() == ("off",)  # the DSN's setting, elsewhere
    store.close()


def test_a_server_without_fsync_is_refused_for_writes(postgres_server, pg_ledger):
    (first,) = _charges(pg_ledger, 1)
    pg_ledger.gate.close()
    with _server_setting(postgres_server, "fsync", "off"):
        store = open_store(pg_ledger.ledger_path)
        assert len(store.snapshot().entries) == 1  # reading is fine
        with pytest.raises(LedgerStoreError, match="fsync = off"):
            with store.exclusive():
                pass
        store.close()
        with pytest.raises(LedgerStoreError, match="fsync = off"):
            make_test_gate(pg_ledger.directory / "new", ledger=postgres_server.url(fresh_ledger_name()))
    assert _verify(pg_ledger, receipts=[first]).ok


# -- connections and passwords --------------------------------------------------------------------------
def test_the_password_never_appears_in_a_message(postgres_server, tmp_path):
    wrong = "Wr0ng:p@ss/w#rd-" + PASSWORD[-6:]
    name = fresh_ledger_name()
    bad = postgres_server.url(name, PASSWORD_DATABASE, user=PASSWORD_USER, password=wrong)
    good = postgres_server.url(name, PASSWORD_DATABASE, user=PASSWORD_USER, password=PASSWORD)
    nowhere = good.replace(f"host={postgres_server.base}", "host=/nonexistent/socket/dir")
    secrets_ = (wrong, PASSWORD, "Wr0ng%3Ap%40ss", "Wr0ng:p@ss")
    messages = []
    for url, expected in ((bad, "password authentication failed"), (nowhere, "cannot connect"),
                          (good, "no ledger named")):
        with pytest.raises(LedgerStoreError) as info:
            open_store(url).metadata()
        assert expected in str(info.value)
        messages.append(str(info.value))
        report = verify_path(url)
        assert not report.ok
        messages.append(report.summary())
        res = _cli("ledger", "status", url)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
        messages.append(res.output)
    # The role may create and use a ledger in its own database; the CLI names it without the password.
    files = make_test_gate(tmp_path / "files")
    files.gate.close()
    res = _cli("ledger", "init", good, "--policy", files.policy_path, "--officer-key", files.officer_key,
               "--ledger-key", files.ledger_pub)
    assert res.exit_code == 0, res.output
    assert f"postgresql://{PASSWORD_USER}:***@" in res.output
    messages.append(res.output)
    res = _cli("ledger", "status", good)
    assert res.exit_code == 0
    messages.append(res.output)
    messages.append(repr(open_store(good)))
    gate = Gate.open(good, ledger_key=files.ledger_key)
    gate.charge(GaussianEvent(40.0), purpose="with a password", generator="mst")
    gate.close()
    with pytest.raises(LedgerExists) as info:
        open_store(good).initialise(_snapshot(good).metadata, _snapshot_head0(_snapshot(good)))
    messages.append(str(info.value))
    for text in messages:
        for secret in secrets_:
            assert secret not in text, (secret, text)


def test_an_unreachable_server_is_a_clean_error(postgres_server, pg_ledger):
    url = pg_ledger.ledger_path.replace(f"host={postgres_server.base}", "host=/nonexistent/socket/dir")
    with pytest.raises(LedgerStoreError, match="cannot connect"):
        Gate.open(url, ledger_key=pg_ledger.ledger_key)
    res = _cli("ledger", "verify", url)
    assert res.exit_code == 1 and "cannot connect" in res.output


def test_ledgers_in_one_database_are_independent(postgres_server, tmp_path):
    a = make_test_gate(tmp_path / "a", ledger=postgres_server.url(fresh_ledger_name("a")))
    b = make_test_gate(tmp_path / "b", ledger=postgres_server.url(fresh_ledger_name("b")))
    for _ in range(3):
        a.gate.charge(GaussianEvent(40.0), purpose="a", generator="mst")
    b.gate.charge(GaussianEvent(40.0), purpose="b", generator="mst")
    assert len(_snapshot(a.ledger_path).entries) == 3 and len(_snapshot(b.ledger_path).entries) == 1
    assert _verify(a).ok and _verify(b).ok
    with pytest.raises(LedgerMissing, match="no ledger named"):
        open_store(postgres_server.url(fresh_ledger_name("c"))).snapshot()
    a.gate.close()
    b.gate.close()



def test_request_ids_and_person_caps_hold_on_postgres(pg_ledger):
    """The service's two ledger features read the same chain state on either backend."""
    from accountant.errors import ActorCapExceeded, RequestConflict

    gate = pg_ledger.gate
    first = gate.charge(GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001")
    assert gate.charge(GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001") == first
    with pytest.raises(RequestConflict):
        gate.charge(GaussianEvent(11.0), purpose="marginals", actor="alice", request_id="req-0001")
    gate.charge(GaussianEvent(30.0), purpose="q", actor="bob", actor_cap=0.5)
    with pytest.raises(ActorCapExceeded):
        gate.charge(GaussianEvent(0.8), purpose="big", actor="bob", actor_cap=0.5)
    gate.close()
    # A gate opened afresh rebuilds both from the chain it reads back from the server.
    again = pg_ledger.reopen()
    assert again.charge(GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001") == first
    with pytest.raises(ActorCapExceeded):
        again.charge(GaussianEvent(0.8), purpose="big", actor="bob", actor_cap=0.5)
    again.close()
    report = _verify(pg_ledger)
    assert report.ok and report.kinds == {"charge": 2}, report.summary()
