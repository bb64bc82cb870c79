"""Attacks on the ledger (threat model #5, #8, #9 and beyond): truncation, rollback,
re-initialisation, deletion mid-run, unsigned entries, deep nesting, crafted records.

The attacker with write access works on the SQLite file with sqlite3 (triggers dropped)
and on the witness and export files with json, as such an attacker would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from accountant.checkpoint import make_checkpoint, write_checkpoint
from accountant.errors import InvalidReceipt, LedgerIntegrityError
from accountant.events import ComposedEvent, GaussianEvent, ZCdpEvent
from accountant.export import to_jsonl
from accountant.gate import BudgetExceeded, Gate, init_ledger
from accountant.keys import load_private_key, sign, write_keypair
from accountant.ledger.entry import ENTRY_PURPOSE, HEAD_PURPOSE, Entry, Head
from accountant.ledger.hashing import canonical_json
from accountant.ledger.store import LedgerStoreError
from accountant.policy import PolicyError, new_ledger_id, sign_policy_file
from accountant.testing import make_test_gate
from accountant.verify import verify_path
from accountant.witness import Witness
from dpsynth.cli import app
from dpsynth.table.commitments import release_digest

from .support import attacker_db, backup, governed, ledger_bytes, restore, snapshot, table_on

pytestmark = pytest.mark.filterwarnings("ignore::accountant.errors.InsecureModeWarning")

REFUSED = (LedgerIntegrityError, LedgerStoreError)


def _charges(gate, n: int, sigma: float = 20.0) -> list:
    return [gate.charge(GaussianEvent(sigma), purpose=f"charge {i}") for i in range(n)]


def _cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def _pins(ledger) -> dict:
    return {"officer_public_key": ledger.officer_pub, "ledger_public_key": ledger.ledger_pub}


def _signed(entry: Entry, key) -> Entry:
    """An entry re-hashed and signed with the ledger key (the solo researcher holds it)."""
    h = entry.compute_hash()
    return dataclasses.replace(entry, entry_hash=h, signature=sign(key, ENTRY_PURPOSE, h.encode()))


def _signed_head(entry: Entry, key) -> Head:
    head = Head(entry.sequence, entry.entry_hash, "")
    return Head(entry.sequence, entry.entry_hash, sign(key, HEAD_PURPOSE, head.message()))


def _append(path: Path, entry: Entry, head: Head) -> None:
    with attacker_db(path) as db:
        db.execute("INSERT INTO entries (sequence, body) VALUES (?, ?)", (entry.sequence,
                                                                          canonical_json(entry.to_dict())))
        db.execute("UPDATE head SET body = ? WHERE id = 1", (canonical_json(head.to_dict()),))


# --------------------------------------------------------------------------- 5a. verified catch-up, signed head

def test_unverified_entry_appended_by_another_process_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    gate = ledger.gate
    first, = _charges(gate, 1)
    last = snapshot(ledger.ledger_path).entries[-1]
    # "Another process" without the ledger key appends an entry (a free charge) and a head.
    forged = dataclasses.replace(last, sequence=2, prev_hash=last.entry_hash, purpose="forged", cost=0.0)
    forged = dataclasses.replace(forged, entry_hash=forged.compute_hash(), signature="00" * 64)
    _append(ledger.ledger_path, forged, Head(2, forged.entry_hash, ""))
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(LedgerIntegrityError):
        gate.charge(GaussianEvent(20.0), purpose="next")
    with pytest.raises(LedgerIntegrityError):
        gate.remaining()
    with pytest.raises(LedgerIntegrityError):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    assert ledger_bytes(ledger.ledger_path) == before
    report = verify_path(ledger.ledger_path, **_pins(ledger))
    assert not report.ok and report.first_bad_entry == 2


def test_truncation_refund_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    gate = ledger.gate
    _charges(gate, 3)
    spent = gate.remaining()
    entries = snapshot(ledger.ledger_path).entries
    # Cut the tail and rewrite the head to the new last entry (no key: the old signature).
    with attacker_db(ledger.ledger_path) as db:
        db.execute("DELETE FROM entries WHERE sequence = 3")
        old = json.loads(db.execute("SELECT body FROM head").fetchone()[0])
        db.execute("UPDATE head SET body = ?", (canonical_json({**old, "sequence": 2,
                                                                 "entry_hash": entries[1].entry_hash}),))
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(LedgerIntegrityError):
        gate.charge(GaussianEvent(20.0), purpose="spend the refund")
    with pytest.raises(LedgerIntegrityError):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key, witness=tmp_path / "fresh-witness")
    assert ledger_bytes(ledger.ledger_path) == before
    assert not verify_path(ledger.ledger_path, **_pins(ledger)).ok
    # The head left as it was (pointing past the cut) is caught the same way.
    with attacker_db(ledger.ledger_path) as db:
        db.execute("UPDATE head SET body = ?", (canonical_json(old),))
    with pytest.raises(LedgerIntegrityError):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key, witness=tmp_path / "fresh-witness-2")
    assert spent < ledger.gate.filter.budget


def test_a_tail_cut_behind_a_running_gate_with_the_head_left_is_refused(tmp_path):
    """The cut alone, head untouched, while the gate is open: the gate must not chain its next
    entry onto the hole (found by running the service's red-team tests)."""
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    gate = ledger.gate
    _charges(gate, 3)
    with attacker_db(ledger.ledger_path) as db:
        db.execute("DELETE FROM entries WHERE sequence = 3")
    before = ledger_bytes(ledger.ledger_path)
    for _ in range(2):  # and it stays shut
        with pytest.raises(LedgerIntegrityError, match="#3"):
            gate.charge(GaussianEvent(20.0), purpose="after the cut")
    assert ledger_bytes(ledger.ledger_path) == before
    # An entry edited in place (same sequence, other content) is the same hole.
    ledger2 = make_test_gate(tmp_path / "two", epsilon=5.0)
    _charges(ledger2.gate, 2)
    with attacker_db(ledger2.ledger_path) as db:
        body = json.loads(db.execute("SELECT body FROM entries WHERE sequence = 2").fetchone()[0])
        db.execute("UPDATE entries SET body = ? WHERE sequence = 2",
                   (canonical_json({**body, "purpose": "something else"}),))
    with pytest.raises(LedgerIntegrityError):
        ledger2.gate.charge(GaussianEvent(20.0), purpose="after the edit")


# --------------------------------------------------------------------------- 5b. rollback

def test_restoring_an_older_ledger_file_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    _charges(ledger.gate, 1)
    ledger.gate.close()
    old = backup(ledger.ledger_path, tmp_path / "old.db")     # a copy with every signature valid
    gate = Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    _charges(gate, 2)
    # Restored under a running gate: the file is not the one it opened.
    restore(old, ledger.ledger_path)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(REFUSED):
        gate.charge(GaussianEvent(20.0), purpose="after the restore")
    gate.close()
    # And by a new process on this machine: the witness saw entry #3.
    with pytest.raises(LedgerIntegrityError, match="rolled back"):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    assert ledger_bytes(ledger.ledger_path) == before


def test_rollback_behind_an_auditor_anchor_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    first = _charges(ledger.gate, 1)[0]
    ledger.gate.close()
    old = backup(ledger.ledger_path, tmp_path / "old.db")
    gate = Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    later = _charges(gate, 2)
    gate.close()
    snap = snapshot(ledger.ledger_path)
    head = f"{snap.head.sequence}:{snap.head.entry_hash}"
    checkpoint = write_checkpoint(make_checkpoint(snap, load_private_key(ledger.officer_key)), tmp_path / "cp.json")
    receipts = tmp_path / "receipts.json"
    receipts.write_text(json.dumps([r.to_dict() for r in [first, *later]]))
    assert _cli("ledger", "verify", ledger.ledger_path, "--officer-key", ledger.officer_pub, "--ledger-pub",
                ledger.ledger_pub, "--expect-head", head, "--checkpoint", checkpoint, "--receipts",
                receipts).exit_code == 0
    # The outsider restores the old copy AND wipes the witness: the gate cannot tell (stated in
    # proofs/threat_model.md), but every anchor held outside the ledger does.
    restore(old, ledger.ledger_path)
    assert len(snapshot(ledger.ledger_path).entries) == 1
    for anchor in (["--expect-head", head], ["--checkpoint", checkpoint], ["--receipts", receipts]):
        res = _cli("ledger", "verify", ledger.ledger_path, "--officer-key", ledger.officer_pub, "--ledger-pub",
                   ledger.ledger_pub, *anchor)
        assert res.exit_code == 1, (anchor, res.output)
        assert "rolled back" in res.output


# --------------------------------------------------------------------------- 5c. re-initialisation

def test_ledger_init_without_the_officer_key_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path / "l")
    target = tmp_path / "second.db"
    for officer in (None, ledger.officer_pub, ledger.ledger_key):
        with pytest.raises(PolicyError):
            init_ledger(target, ledger.policy_path, officer_key=officer, ledger_key=ledger.ledger_pub)
        assert not target.exists()
    res = _cli("ledger", "init", target, "--policy", ledger.policy_path, "--ledger-key", ledger.ledger_pub)
    assert res.exit_code == 1 and not target.exists()
    # A ledger is never initialised over an existing one, even by the officer.
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises((FileExistsError, LedgerStoreError)):
        init_ledger(ledger.ledger_path, ledger.policy_path, officer_key=ledger.officer_key,
                    ledger_key=ledger.ledger_pub)
    assert ledger_bytes(ledger.ledger_path) == before


def test_delete_and_reinit_of_a_ledger_is_refused(tmp_path):
    # A policy that pins its ledger id: the officer's own re-init is caught by the witness.
    ledger = make_test_gate(tmp_path / "pinned", epsilon=5.0, ledger_id=new_ledger_id())
    receipts = _charges(ledger.gate, 2)
    ledger.gate.close()
    ledger.ledger_path.unlink()
    init_ledger(ledger.ledger_path, ledger.policy_path, officer_key=ledger.officer_key,
                ledger_key=ledger.ledger_pub)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(LedgerIntegrityError, match="re-initialised"):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    assert ledger_bytes(ledger.ledger_path) == before
    # The auditor holding a receipt of the old ledger sees the fresh budget too.
    report = verify_path(ledger.ledger_path, receipts=receipts, **_pins(ledger))
    assert not report.ok


def test_reinit_under_a_self_made_officer_key_is_refused(tmp_path):
    """Hole found: an outsider with write access and NO key made an officer key of their own,
    signed the (public) policy text with it and started a ledger naming the (public) ledger
    key: a gate opened without a pinned officer key accepted it — a fresh budget.  The
    witness now remembers which officer started this ledger key's ledgers."""
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    _charges(ledger.gate, 2)
    ledger.gate.close()
    evil = tmp_path / "evil"
    evil.mkdir()
    evil_key, _ = write_keypair(evil, "officer")
    policy = evil / "policy.toml"
    shutil.copy(ledger.policy_path, policy)
    sign_policy_file(policy, load_private_key(evil_key))
    ledger.ledger_path.unlink()
    init_ledger(ledger.ledger_path, policy, officer_key=evil_key, ledger_key=ledger.ledger_pub)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(LedgerIntegrityError, match="another officer"):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)
    with pytest.raises(PolicyError):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key, officer_public_key=ledger.officer_pub)
    assert ledger_bytes(ledger.ledger_path) == before
    assert not verify_path(ledger.ledger_path, **_pins(ledger)).ok


def test_witness_path_from_a_crafted_ledger_id_is_refused(tmp_path, monkeypatch):
    """Hole found: the gate used the ledger id from the file unchecked as a witness file name;
    "../witness/<victim id>" overwrote the victim ledger's witness (rollback detection off)."""
    witness_dir = tmp_path / "witness"
    monkeypatch.setenv("DPSYNTH_WITNESS_DIR", str(witness_dir))
    victim = make_test_gate(tmp_path / "victim", epsilon=5.0)
    _charges(victim.gate, 1)
    victim_file = witness_dir / f"{victim.gate.ledger_id}.json"
    seen = victim_file.read_text()
    crafted = tmp_path / "crafted.db"
    init_ledger(crafted, victim.policy_path, officer_key=None, ledger_key=None, insecure=True)
    with attacker_db(crafted) as db:
        md = json.loads(db.execute("SELECT body FROM metadata").fetchone()[0])
        md["ledger_id"] = f"../{witness_dir.name}/{victim.gate.ledger_id}"
        db.execute("UPDATE metadata SET body = ?", (canonical_json(md),))
        head = json.loads(db.execute("SELECT body FROM head").fetchone()[0])
    from accountant.ledger.entry import LedgerMetadata

    head["entry_hash"] = LedgerMetadata.from_dict(md).hash
    with attacker_db(crafted) as db:
        db.execute("UPDATE head SET body = ?", (canonical_json(head),))
    with pytest.raises(LedgerIntegrityError, match="hex"):
        Gate.open(crafted, insecure=True)
    assert victim_file.read_text() == seen
    with pytest.raises(LedgerIntegrityError):
        Witness(witness_dir).record("../x", "0" * 64, 1, "0" * 64)


def test_damaged_witness_keeps_the_gate_shut(tmp_path, monkeypatch):
    monkeypatch.setenv("DPSYNTH_WITNESS_DIR", str(tmp_path / "w"))
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    _charges(ledger.gate, 1)
    ledger.gate.close()
    (tmp_path / "w" / f"{ledger.gate.ledger_id}.json").write_text("{not json")
    with pytest.raises(LedgerIntegrityError, match="witness"):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key)


# --------------------------------------------------------------------------- 5d. deleted mid-run

def test_ledger_deleted_mid_run_is_refused(tmp_path):
    from dpsynth.nn import DiscriminatorSpec
    from dpsynth.table.dpsgd import AccessError

    ledger = governed(tmp_path / "l")
    table = table_on(ledger)
    session = table.dpsgd_session(discriminator=DiscriminatorSpec((4,), 0.0), sampling_rate=0.5,
                                  noise_multiplier=5.0, steps=3, max_grad_norm=1.0, purpose="run")
    import torch

    params = {n: torch.zeros(p.shape) for n, p in DiscriminatorSpec((4,), 0.0).build(session.input_dim)
              .named_parameters()}
    session.step(params)
    for suffix in ("", "-wal", "-shm"):
        Path(str(ledger.ledger_path) + suffix).unlink(missing_ok=True)
    with pytest.raises(REFUSED):
        session.step(params)
    with pytest.raises(AccessError):
        session.step(params)  # a failed step ends the session
    with pytest.raises(REFUSED):
        session.close()
    with pytest.raises(REFUSED):
        table.noisy_count(5.0, purpose="after the deletion")
    assert not ledger.ledger_path.exists(), "the gate wrote a ledger nobody can see"


def test_marginal_run_whose_ledger_is_deleted_mid_run_fails(tmp_path):
    """The old attack: an AIM run whose ledger was deleted mid-run exited 0."""
    from dpsynth.generators import AIM

    ledger = governed(tmp_path / "l")
    table = table_on(ledger, seed=0)
    calls = []
    measure = table.measure_marginals

    def measure_then_delete(*args, **kwargs):
        out = measure(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            ledger.ledger_path.unlink()
        return out

    table.measure_marginals = measure_then_delete  # the deletion, timed after the first measurement
    with pytest.raises(REFUSED):
        AIM(epsilon=1.0, device="cpu").fit(table)
    assert not ledger.ledger_path.exists()


# --------------------------------------------------------------------------- 8. insecure mode

def test_insecure_mode_on_a_signed_ledger_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    _charges(ledger.gate, 1)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(PolicyError):
        Gate.open(ledger.ledger_path, insecure=True)
    with pytest.raises(PolicyError):
        Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key, insecure=True)
    res = _cli("ledger", "charge", ledger.ledger_path, "--event", GaussianEvent(5.0).to_json(), "--purpose", "p",
               "--insecure-development-mode")
    assert res.exit_code == 1 and "insecure" in res.output
    assert ledger_bytes(ledger.ledger_path) == before
    # An unsigned entry written into the secure ledger by hand is a chain problem everywhere.
    last = snapshot(ledger.ledger_path).entries[-1]
    unsigned = dataclasses.replace(last, sequence=2, prev_hash=last.entry_hash, insecure=True, ledger_key_id=None,
                                   signature="")
    unsigned = dataclasses.replace(unsigned, entry_hash=unsigned.compute_hash())
    _append(ledger.ledger_path, unsigned, Head(2, unsigned.entry_hash, ""))
    with pytest.raises(LedgerIntegrityError):
        ledger.gate.charge(GaussianEvent(5.0), purpose="p")
    for allow in (False, True):
        report = verify_path(ledger.ledger_path, allow_insecure=allow, **_pins(ledger))
        assert not report.ok and report.first_bad_entry == 2


def test_allow_insecure_skipping_the_head_check_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    _charges(ledger.gate, 3)
    entries = snapshot(ledger.ledger_path).entries
    # The old attack: cut the last (signed) entry, end the ledger with an unsigned one, and
    # verify with --allow-insecure, which skipped the head check when the last entry was unsigned.
    tail = dataclasses.replace(entries[2], insecure=True, ledger_key_id=None, signature="", purpose="unsigned")
    tail = dataclasses.replace(tail, entry_hash=tail.compute_hash())
    with attacker_db(ledger.ledger_path) as db:
        db.execute("DELETE FROM entries WHERE sequence = 3")
    _append(ledger.ledger_path, tail, Head(3, tail.entry_hash, ""))
    for args in ([], ["--allow-insecure"]):
        res = _cli("ledger", "verify", ledger.ledger_path, "--officer-key", ledger.officer_pub, "--ledger-pub",
                   ledger.ledger_pub, *args)
        assert res.exit_code == 1, res.output
        assert "head" in res.output
    # Plain truncation (head left pointing past the end) with --allow-insecure: still caught.
    with attacker_db(ledger.ledger_path) as db:
        db.execute("DELETE FROM entries WHERE sequence = 3")
    report = verify_path(ledger.ledger_path, allow_insecure=True, **_pins(ledger))
    assert not report.ok and "truncated" in report.summary()


# --------------------------------------------------------------------------- 9. nesting

def _nested(depth: int):
    e = GaussianEvent(1000.0)
    for _ in range(depth):
        e = ComposedEvent((e, GaussianEvent(1000.0)))
    return e


def test_deeply_nested_event_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(ValueError, match="nest"):
        _nested(150)
    # The same event as JSON through the CLI (which parses it) is refused too.
    text = '{"type":"gaussian","noise_multiplier":1000.0,"relation":"add_or_remove_one"}'
    for _ in range(150):
        text = ('{"type":"composed","events":[' + text +
                ',{"type":"gaussian","noise_multiplier":1000.0,"relation":"add_or_remove_one"}]}')
    res = _cli("ledger", "charge", ledger.ledger_path, "--event", text, "--purpose", "deep",
               "--ledger-key", ledger.ledger_key)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert ledger_bytes(ledger.ledger_path) == before
    # A deep event smuggled into the file by hand makes readers report, never crash.
    last_real = ledger.gate.charge(_nested(15), purpose="deep but allowed")
    entry = snapshot(ledger.ledger_path).entries[-1]
    deep = dataclasses.replace(entry, sequence=2, prev_hash=entry.entry_hash, event=text)
    deep = dataclasses.replace(deep, entry_hash=deep.compute_hash())
    _append(ledger.ledger_path, deep, Head(2, deep.entry_hash, ""))
    with pytest.raises(LedgerIntegrityError):
        ledger.gate.charge(GaussianEvent(100.0), purpose="p")
    report = verify_path(ledger.ledger_path, **_pins(ledger))
    assert not report.ok and report.first_bad_entry == 2
    assert last_real.sequence == 1


def test_deeply_nested_parameters_are_refused(tmp_path):
    """Hole found: `parameters` nested ~400 deep were written (from a shallow stack) and then
    every reader with a deeper stack hit RecursionError: the gate stayed shut for ever."""
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    before = ledger_bytes(ledger.ledger_path)
    value: object = 1
    for _ in range(400):
        value = {"a": value}
    for params in ({"p": value}, {"p": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}):
        with pytest.raises(ValueError, match="nests deeper"):
            ledger.gate.charge(GaussianEvent(100.0), purpose="p", parameters=params)
    assert ledger_bytes(ledger.ledger_path) == before
    ok = ledger.gate.charge(GaussianEvent(100.0), purpose="p", parameters={"a": {"b": [1, 2, {"c": None}]}})

    def deep_reader(k):
        return Gate.open(ledger.ledger_path, ledger_key=ledger.ledger_key) if k == 0 else deep_reader(k - 1)

    deep_reader(400).close()
    assert ok.sequence == 1


# --------------------------------------------------------------------------- life cycle

def test_second_seal_of_one_charge_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    gate = ledger.gate
    a, b = _charges(gate, 2)
    released = gate.release(a, release_digest("output of a"))
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(InvalidReceipt):
        gate.seal([b], release_digest("model"), purpose="b was never released")
    with pytest.raises(InvalidReceipt):
        gate.seal([released], release_digest("model"), purpose="a release is not a charge")
    with pytest.raises(InvalidReceipt):
        gate.seal([a, a], release_digest("model"), purpose="one charge twice")
    assert ledger_bytes(ledger.ledger_path) == before
    gate.seal([a], release_digest("model 1"), purpose="first model")
    sealed = ledger_bytes(ledger.ledger_path)
    with pytest.raises(InvalidReceipt):
        gate.seal([a], release_digest("model 2"), purpose="second model on the same charge")
    assert ledger_bytes(ledger.ledger_path) == sealed


def test_open_release_or_seal_entry_that_spends_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=5.0)
    gate = ledger.gate
    charge = _charges(gate, 1)[0]
    gate.release(charge, release_digest("out"))
    key = load_private_key(ledger.ledger_key)
    release = snapshot(ledger.ledger_path).entries[-1]
    # The solo researcher holds the ledger key: a signed "release" with a negative cost (a
    # refund), or one carrying an event, is still refused by every reader.
    for i, edit in enumerate(({"cost": -1.0}, {"event": GaussianEvent(1.0).to_json(), "cost": 0.5},
                              {"rho": 0.1}, {"curve": [1.0]})):
        path = tmp_path / f"l{i}.db"
        backup(ledger.ledger_path, path)
        bad = _signed(dataclasses.replace(release, sequence=3, prev_hash=release.entry_hash, kind="release",
                                          commitment=release_digest(i), **edit), key)
        _append(path, bad, _signed_head(bad, key))
        with pytest.raises(LedgerIntegrityError):
            Gate.open(path, ledger_key=key, witness=tmp_path / f"w{i}")
        report = verify_path(path, **_pins(ledger))
        assert not report.ok and report.first_bad_entry == 3, edit


def test_subnormal_cost_after_the_budget_is_spent_is_refused(tmp_path):
    ledger = make_test_gate(tmp_path, epsilon=1.0)
    gate = ledger.gate
    budget = Fraction(gate.filter.budget)

    def gap():
        return budget - sum((Fraction(c) for c in gate.spent_costs()), Fraction(0))

    # Fill the budget to the last representable bit: each charge takes the largest zCDP cost
    # that still fits, until no positive cost fits.
    for _ in range(60):
        g = gap()
        if g == 0:
            break
        rho = float(g) / gate.filter.order
        while rho > 0 and Fraction(gate.filter.cost(ZCdpEvent(rho))) > g:
            rho = math.nextafter(rho, 0.0)
        if rho == 0:
            break
        gate.charge(ZCdpEvent(rho), purpose="fill")
    before = ledger_bytes(ledger.ledger_path)
    smallest = math.ulp(0.0)
    for event in (ZCdpEvent(smallest), GaussianEvent(1e200), GaussianEvent(1e160)):
        # ρ = 1/(2·1e400) underflows to 0.0: it was admitted free once the budget was spent.
        with pytest.raises(BudgetExceeded):
            gate.charge(event, purpose="free?")
    assert ledger_bytes(ledger.ledger_path) == before


# --------------------------------------------------------------------------- receipts, checkpoints, crafted files

def test_receipt_or_checkpoint_of_another_ledger_is_refused(tmp_path):
    a = make_test_gate(tmp_path / "a", epsilon=5.0)
    b = make_test_gate(tmp_path / "b", epsilon=5.0)
    foreign = _charges(b.gate, 1)[0]
    _charges(a.gate, 1)
    before = ledger_bytes(a.ledger_path)
    for attempt in (lambda: a.gate.release(foreign, release_digest(1)), lambda: a.gate.open_release(foreign),
                    lambda: a.gate.seal([foreign], release_digest(1), purpose="p"),
                    lambda: a.gate.verify_receipt(foreign)):
        with pytest.raises(InvalidReceipt):
            attempt()
    assert ledger_bytes(a.ledger_path) == before
    cp = write_checkpoint(make_checkpoint(snapshot(b.ledger_path), load_private_key(b.officer_key)),
                          tmp_path / "b.cp")
    res = _cli("ledger", "verify", a.ledger_path, "--officer-key", a.officer_pub, "--ledger-pub", a.ledger_pub,
               "--checkpoint", cp)
    assert res.exit_code == 1 and "not this ledger" in res.output
    # A checkpoint of this ledger signed by someone else than its officer.
    cp_a = make_checkpoint(snapshot(a.ledger_path), load_private_key(b.officer_key))
    res = _cli("ledger", "verify", a.ledger_path, "--officer-key", a.officer_pub, "--ledger-pub", a.ledger_pub,
               "--checkpoint", write_checkpoint(cp_a, tmp_path / "a.cp"))
    assert res.exit_code == 1 and "signature" in res.output


def test_malformed_ledger_records_are_reported_not_crashed(tmp_path):
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    _charges(ledger.gate, 2)
    good = to_jsonl(snapshot(ledger.ledger_path)).splitlines()
    deep = "[" * 100_000 + "]" * 100_000
    variants = {
        "nan": [good[0], good[1].replace('"cost":', '"cost":NaN,"x":', 1), *good[2:]],
        "nan-value": [good[0], good[1].replace('"filter_total":', '"filter_total":NaN,"y":', 1)
                      .replace(',"y":', ',"_":', 1), *good[2:]],
        "deep-line": [good[0], deep, *good[2:]],
        "deep-metadata": [deep, *good[1:]],
        "wrong-types": [good[0], good[1].replace('"sequence":1', '"sequence":"1"'), *good[2:]],
        "list-record": [good[0], "[1, 2, 3]", *good[2:]],
        "refs-not-list": [good[0], good[1].replace('"refs":[]', '"refs":{"a":1}'), *good[2:]],
        "tiny-sigma": [good[0], good[1].replace('\\"noise_multiplier\\":20.0', '\\"noise_multiplier\\":1e-320'),
                       *good[2:]],
        "head-wrong-type": [*good[:-1], good[-1].replace('"sequence":2', '"sequence":"2"')],
        "garbage": ["\x00\xff garbage"],
        "empty": [""],
    }
    for name, lines in variants.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogateescape")
        res = _cli("ledger", "verify", path, "--officer-key", ledger.officer_pub, "--ledger-pub", ledger.ledger_pub)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (name, res.exception, res.output)
        assert "FAILED" in res.output, name
    # The SQLite file with a record nested deeper than the parser recurses.
    crafted = tmp_path / "deep.db"
    backup(ledger.ledger_path, crafted)
    with attacker_db(crafted) as db:
        db.execute("UPDATE entries SET body = ? WHERE sequence = 2", (deep,))
    res = _cli("ledger", "verify", crafted, "--officer-key", ledger.officer_pub, "--ledger-pub", ledger.ledger_pub)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception
    with pytest.raises(REFUSED):
        Gate.open(crafted, ledger_key=ledger.ledger_key, witness=tmp_path / "w")
    # Checkpoint and receipt files that are not what they claim.
    for name, text in (("deep.cp", deep), ("nan.cp", '{"sequence": NaN}'), ("list.cp", "[]")):
        (tmp_path / name).write_text(text)
        res = _cli("ledger", "verify", ledger.ledger_path, "--checkpoint", tmp_path / name)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (name, res.exception)
    for name, text in (("deep.json", deep), ("nan.json", '{"cost": NaN}'), ("num.json", "5")):
        (tmp_path / name).write_text(text)
        res = _cli("ledger", "verify", ledger.ledger_path, "--officer-key", ledger.officer_pub, "--ledger-pub",
                   ledger.ledger_pub, "--receipts", tmp_path / name)
        # A receipts file named outright that holds no receipt fails the check (exit 1), cleanly.
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (name, res.exception)
        assert "no receipt could be read" in res.output, name
    for head in ("5", "x:y", "-1:" + "0" * 64, "1:" + "g" * 64):
        res = _cli("ledger", "verify", ledger.ledger_path, "--expect-head", head)
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), head


def test_hostile_cli_arguments_are_refused_without_crashing(tmp_path):
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    before = ledger_bytes(ledger.ledger_path)
    deep = "[" * 100_000 + "]" * 100_000
    event = GaussianEvent(50.0).to_json()
    for args in (["--event", deep], ["--event", event, "--parameters", deep],
                 ["--event", event, "--parameters", '{"a": NaN}'], ["--event", event, "--parameters", "[1]"],
                 ["--event", '{"type":"gaussian","noise_multiplier":1e-320,"relation":"add_or_remove_one"}'],
                 ["--event", '{"type":"gaussian","noise_multiplier":NaN,"relation":"add_or_remove_one"}'],
                 ["--event", event, "--parameters", "{" + '"a":{' * 40 + "}" * 41],
                 ["--event", event, "--run-id", ""], ["--event", event, "--generator", "x" * 2000]):
        res = _cli("ledger", "charge", ledger.ledger_path, "--purpose", "p", "--ledger-key", ledger.ledger_key, *args)
        assert res.exit_code in (1, 2) and isinstance(res.exception, SystemExit), (args[-1][:40], res.exception)
    assert ledger_bytes(ledger.ledger_path) == before
    res = _cli("compare", "--demo", "--out", tmp_path / "cmp", "--parameters", deep)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception


def test_status_and_export_of_a_crafted_ledger_report_without_crashing(tmp_path):
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0)
    _charges(ledger.gate, 1)

    def metadata(field, value):
        def edit(db):
            md = json.loads(db.execute("SELECT body FROM metadata").fetchone()[0])
            db.execute("UPDATE metadata SET body = ?", (json.dumps({**md, field: value}),))
        return edit

    def entry(field, value):
        def edit(db):
            e = json.loads(db.execute("SELECT body FROM entries").fetchone()[0])
            db.execute("UPDATE entries SET body = ?", (json.dumps({**e, field: value}),))
        return edit

    for name, edit in (("budget0", metadata("filter_budget", 0)), ("budget-str", metadata("filter_budget", "x")),
                       ("policy-int", metadata("policy_toml", 5)), ("policy-bad", metadata("policy_toml", "[[[")),
                       ("cost-none", entry("cost", None)), ("event-bad", entry("event", "{"))):
        path = backup(ledger.ledger_path, tmp_path / f"{name}.db")
        with attacker_db(path) as db:
            edit(db)
        for args in (["status", path], ["status", path, "--json"],
                     ["export", path, "--out", tmp_path / f"{name}.html", "--format", "html"],
                     ["export", path, "--out", tmp_path / f"{name}.csv", "--format", "csv"]):
            res = _cli("ledger", *args)
            assert res.exception is None or isinstance(res.exception, SystemExit), (name, args[0], res.exception)


def test_forged_receipts_cannot_fail_an_honest_ledger_but_genuine_ones_catch_a_reinit(tmp_path):
    """`verify --receipts`: a receipt proves something only under the ledger's key.  A forged
    one (anyone knows the dataset's public fingerprint) is set aside; a genuine receipt of the
    dataset from a ledger started again with the same key fails the check."""
    ledger = make_test_gate(tmp_path / "l", epsilon=5.0, ledger_id=new_ledger_id())
    (honest,) = _charges(ledger.gate, 1)
    forged = dataclasses.replace(honest, sequence=7, ledger_id=new_ledger_id(), purpose="forged")
    (tmp_path / "forged.json").write_text(json.dumps(forged.to_dict()))
    pins = ("--officer-key", ledger.officer_pub, "--ledger-pub", ledger.ledger_pub)
    res = _cli("ledger", "verify", ledger.ledger_path, *pins, "--receipts", tmp_path / "forged.json")
    assert res.exit_code == 0 and "set aside" in res.output, res.output
    # The officer starts the same policy's ledger again (same ledger key): the honest receipt of
    # the first ledger now names an entry the new ledger lacks.
    ledger.gate.close()
    (tmp_path / "honest.json").write_text(json.dumps(honest.to_dict()))
    fresh = tmp_path / "again.db"
    init_ledger(fresh, ledger.policy_path, officer_key=ledger.officer_key, ledger_key=ledger.ledger_pub)
    res = _cli("ledger", "verify", fresh, *pins, "--receipts", tmp_path / "honest.json")
    assert res.exit_code == 1 and "does not hold it" in res.output, res.output
