"""What a team service needs from the gate: idempotent charges (a retried request is charged
once), per-person caps inside the dataset's budget, and one gate shared by many threads."""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import pytest

from accountant.conversions import rdp_budget_at_order
from accountant.errors import ActorCapExceeded, BudgetExceeded, InvalidReceipt, PolicyViolation, RequestConflict
from accountant.events import GaussianEvent
from accountant.keys import load_private_key
from accountant.ledger.entry import Entry
from accountant.ledger.hashing import canonical_json
from accountant.receipt import Receipt
from accountant.testing import make_test_gate
from accountant.verify import verify_path

from ..security.support import attacker_db, snapshot
from ..security.test_ledger_integrity import _signed, _signed_head


def _entries(path) -> int:
    return len(snapshot(path).entries)


# -- idempotency ------------------------------------------------------------------------------------
def test_a_retried_request_is_charged_once(ledger):
    gate = ledger.gate
    first = gate.charge(GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001",
                        parameters={"cliques": [["a"]]})
    again = gate.charge(GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001",
                        parameters={"cliques": [["a"]]})
    assert again == first and again.request_id == "req-0001"
    assert _entries(ledger.ledger_path) == 1
    # The receipt names its request id, and the id is covered by the signed hash.
    tampered = dataclasses.replace(first, request_id="req-0002")
    with pytest.raises(InvalidReceipt):
        tampered.verify(load_private_key(ledger.ledger_key).public_key())
    assert gate.lifecycle(first) == "charged"
    gate.release(first, "ab" * 32)
    assert gate.lifecycle(first) == "released"
    # Asked again after its release: still the one charge (the caller answers from what it kept).
    assert gate.charge(GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001",
                       parameters={"cliques": [["a"]]}) == first
    assert _entries(ledger.ledger_path) == 2


@pytest.mark.parametrize("change", [
    dict(events=GaussianEvent(11.0)),
    dict(purpose="something else"),
    dict(parameters={"cliques": [["b"]]}),
    dict(run_id="run-2"),
    dict(generator="mst"),
])
def test_a_request_id_reused_for_another_charge_is_refused(ledger, change):
    gate = ledger.gate
    base = dict(events=GaussianEvent(10.0), purpose="marginals", actor="alice", request_id="req-0001",
                parameters={"cliques": [["a"]]}, run_id="run-1", generator=None)
    gate.charge(**base)
    with pytest.raises(RequestConflict, match="names one request"):
        gate.charge(**{**base, **change})
    assert _entries(ledger.ledger_path) == 1


def test_request_ids_belong_to_their_actor_and_survive_an_exhausted_budget(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=1.0)
    gate = tl.gate
    sigma = 12.0
    a = gate.charge(GaussianEvent(sigma), purpose="q", actor="alice", request_id="shared-id")
    b = gate.charge(GaussianEvent(sigma), purpose="q", actor="bob", request_id="shared-id")
    assert a.sequence != b.sequence  # another person's id is not yours
    while True:
        try:
            gate.charge(GaussianEvent(sigma), purpose="fill")
        except BudgetExceeded:
            break
    # The budget is spent; a retry of a charge already made still gets its receipt.
    assert gate.charge(GaussianEvent(sigma), purpose="q", actor="alice", request_id="shared-id") == a
    # A reopened gate (another process) knows the ids from the verified chain.
    reopened = tl.reopen()
    assert reopened.charge(GaussianEvent(sigma), purpose="q", actor="bob", request_id="shared-id") == b


@pytest.mark.parametrize("bad", ["short", "x" * 129, "has space!", "semi;colon", "", 12345678, "ünïcode-id"])
def test_a_malformed_request_id_is_refused_before_anything_is_written(ledger, bad):
    with pytest.raises(PolicyViolation, match="request_id"):
        ledger.gate.charge(GaussianEvent(10.0), purpose="q", request_id=bad)
    assert _entries(ledger.ledger_path) == 0


def test_only_charges_carry_request_ids_and_an_absent_id_is_never_null(ledger):
    gate = ledger.gate
    r = gate.charge(GaussianEvent(10.0), purpose="q")
    d = r.to_dict()
    assert "request_id" not in d  # entries written before request ids existed hash the same
    assert Receipt.from_dict(d) == r
    with pytest.raises(InvalidReceipt):
        Receipt.from_dict({**d, "request_id": None})
    with pytest.raises(ValueError):
        Entry.from_dict({**r.entry().to_dict(), "request_id": None})


def test_a_forged_second_charge_under_one_request_id_fails_verification(tmp_path):
    """An insider with the ledger key writes a second charge under a used request id (so a
    retry could be answered twice): the chain reader refuses it."""
    tl = make_test_gate(tmp_path, epsilon=5.0)
    first = tl.gate.charge(GaussianEvent(10.0), purpose="q", actor="alice", request_id="req-dup-1")
    key = load_private_key(tl.ledger_key)
    last = snapshot(tl.ledger_path).entries[-1]
    second = dataclasses.replace(last, sequence=2, prev_hash=last.entry_hash, purpose="q again",
                                 filter_total=last.filter_total * 2)
    second = _signed(second, key)
    with attacker_db(tl.ledger_path) as db:
        db.execute("INSERT INTO entries (sequence, body) VALUES (?, ?)", (2, canonical_json(second.to_dict())))
        db.execute("UPDATE head SET body = ? WHERE id = 1", (canonical_json(_signed_head(second, key).to_dict()),))
    report = verify_path(tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub)
    assert not report.ok
    assert any("charged before" in p.message for p in report.problems), [p.message for p in report.problems]
    assert first.sequence == 1


def test_a_request_id_on_a_release_fails_verification(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=5.0)
    charge = tl.gate.charge(GaussianEvent(10.0), purpose="q")
    tl.gate.release(charge, "cd" * 32)
    key = load_private_key(tl.ledger_key)
    entries = [e.to_dict() for e in snapshot(tl.ledger_path).entries]
    release = Entry.from_dict({**entries[1], "request_id": "sneaky-id"})
    release = _signed(release, key)
    with attacker_db(tl.ledger_path) as db:
        db.execute("UPDATE entries SET body = ? WHERE sequence = 2", (canonical_json(release.to_dict()),))
        db.execute("UPDATE head SET body = ? WHERE id = 1", (canonical_json(_signed_head(release, key).to_dict()),))
    report = verify_path(tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub)
    assert not report.ok and any("only charges do" in p.message for p in report.problems)


# -- per-person caps ------------------------------------------------------------------------------------
def test_an_actor_cap_admits_exactly_what_its_own_filter_does(tmp_path):
    """Closed form: Gaussian events of ρ = 1/(2σ²) each cost α·ρ at order α; a cap of ε at δ
    admits while Σ α·ρ ≤ B(ε, δ) at its own order (rdp_budget_at_order, the conversion the
    accountant tests check against the reference values) — here far from the ledger's order."""
    from accountant.filter import RenyiFilter

    tl = make_test_gate(tmp_path, epsilon=10.0)
    gate = tl.gate
    cap, sigma = 1.0, 10.0
    order = RenyiFilter(cap, gate.metadata.delta).order
    assert abs(order - gate.filter.order) > 1
    budget = rdp_budget_at_order(order, cap, gate.metadata.delta)
    per_charge = order / (2 * sigma * sigma)
    admitted = math.floor(budget / per_charge * (1 + 1e-12))
    assert admitted >= 1
    for i in range(admitted):
        gate.charge(GaussianEvent(sigma), purpose=f"q{i}", actor="alice", actor_cap=cap)
    before = _entries(tl.ledger_path)
    with pytest.raises(ActorCapExceeded, match="'alice' has reached their cap") as info:
        gate.charge(GaussianEvent(sigma), purpose="one more", actor="alice", actor_cap=cap)
    assert isinstance(info.value, BudgetExceeded) and info.value.epsilon_budget == cap
    assert _entries(tl.ledger_path) == before
    # Bob has a cap of his own, and alice's spend is still inside the dataset's budget.
    gate.charge(GaussianEvent(sigma), purpose="bob", actor="bob", actor_cap=cap)
    # Without a cap (the officer's own job, say) the dataset's budget is the only limit.
    gate.charge(GaussianEvent(sigma), purpose="no cap", actor="alice")


def test_a_cap_never_lifts_the_dataset_budget(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=0.5)
    with pytest.raises(BudgetExceeded) as info:
        tl.gate.charge(GaussianEvent(0.5), purpose="big", actor="alice", actor_cap=100.0)
    assert not isinstance(info.value, ActorCapExceeded)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, True, "1"])
def test_a_bad_cap_is_refused(ledger, bad):
    with pytest.raises(PolicyViolation, match="actor_cap"):
        ledger.gate.charge(GaussianEvent(10.0), purpose="q", actor="alice", actor_cap=bad)
    assert _entries(ledger.ledger_path) == 0


# -- one gate, many threads ---------------------------------------------------------------------------
def test_one_gate_shared_by_threads_never_overspends_and_loses_nothing(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=2.0)
    gate = tl.gate
    receipts, refused, errors = [], [], []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(12):
            try:
                r = gate.charge(GaussianEvent(6.0), purpose=f"t{t}-{i}", actor=f"p{t}", request_id=f"t{t}-req-{i}")
                gate.release(r, f"{t:02x}{i:02x}" * 16)
                with lock:
                    receipts.append(r)
            except BudgetExceeded:
                with lock:
                    refused.append((t, i))
            except Exception as exc:  # noqa: BLE001 - any other failure fails the test
                with lock:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    assert refused, "the budget should run out"
    entries = snapshot(tl.ledger_path).entries
    charges = [e for e in entries if e.kind == "charge"]
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert sorted(r.sequence for r in receipts) == [e.sequence for e in charges]
    assert charges[-1].filter_total <= gate.filter.budget
    report = verify_path(tl.ledger_path, officer_public_key=tl.officer_pub, ledger_public_key=tl.ledger_pub)
    assert report.ok, report.problems[:3]
    assert json.loads(json.dumps([r.to_dict() for r in receipts]))  # receipts serialise
