"""Many people charging one dataset at once through a real `dpsynth serve` process, on a SQLite
and on a PostgreSQL ledger: the ledger never goes over its budget, loses or duplicates nothing,
and every charge is in the name of the person whose key signed the request."""

from __future__ import annotations

import threading

import pytest

from dpsynth.remote import ServiceError
from dpsynth.remote.protocol import new_request_id

from .ledger_checks import Answer, check_ledger
from .support import LiveService, add_researchers, team_workspace

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.slow]

CLIENTS = 64


def _request(i: int) -> tuple[str, dict]:
    """Counts and marginals, alternating (each a small share of the budget)."""
    if i % 2:
        return "count", {"sigma": 120.0, "purpose": "how many", "generator": "mst", "run_id": "race"}
    return "marginals", {"cliques": [["sex", "income"]], "sigma": 120.0, "purpose": "two-way", "generator": "mst",
                         "run_id": "race"}


@pytest.mark.parametrize("ledger", ["sqlite", "postgres"])
def test_64_clients_racing_one_budget_lose_and_duplicate_nothing(tmp_path, ledger, request):
    url = None
    if ledger == "postgres":
        from tests.postgres_server import fresh_ledger_name

        url = request.getfixturevalue("postgres_server").url(fresh_ledger_name("race"))
    # A small budget everybody races for; caps far above it, so only the budget refuses.
    paths = team_workspace(tmp_path, ledger_url=url, epsilon_total=0.5, default_cap=50.0)
    names = add_researchers(paths, CLIENTS, cap=50.0)
    answers: list[Answer] = []
    sent: dict[str, str] = {}
    refusals: list[tuple[str, int, str]] = []
    unexpected: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(name: str, svc: LiveService) -> None:
        try:
            with svc.client(name, retries=3) as c:
                start.wait(timeout=120)
                for i in range(200):
                    kind, args = _request(i)
                    rid = new_request_id()
                    with lock:
                        sent[rid] = name
                    try:
                        out = c.measure("demo", kind, args, request_id=rid)
                    except ServiceError as exc:
                        with lock:
                            refusals.append((name, exc.status, exc.message))
                        return
                    with lock:
                        answers.append(Answer(name, rid, kind, out["answer"], out["receipts"]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                unexpected.append(exc)

    with LiveService(paths) as svc:
        threads = [threading.Thread(target=client, args=(n, svc)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in threads)
        assert not unexpected, unexpected[:3]
        # Every client stopped on the dataset's budget: a 409 that names it, nothing else.
        assert len(refusals) == CLIENTS, refusals[:3]
        assert all(status == 409 and "budget" in message for _, status, message in refusals), refusals[:3]
        with svc.client("audrey") as auditor:
            assert auditor.verify("demo")["ok"]
    snap = check_ledger(paths, answers, sent=sent)
    charges = [e for e in snap.entries if e.kind == "charge"]
    # Each answer a client received is one charge of the ledger, and there is no other charge.
    assert len(charges) == len(answers) > CLIENTS
    assert {e.request_id for e in charges} == {a.request_id for a in answers}
    assert {e.actor for e in charges} <= set(names)
    last = charges[-1]
    assert last.filter_total <= last.filter_budget
    # The race really ran side by side: most people got some of the budget.
    assert len({a.person for a in answers}) > CLIENTS // 2


def test_one_request_id_sent_by_many_threads_at_once_is_charged_once(tmp_path):
    paths = team_workspace(tmp_path)
    rid = new_request_id()
    kind, args = _request(0)
    results: list[dict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def send(name: str, svc: LiveService) -> None:
        try:
            with svc.client(name, retries=2) as c:
                start.wait(timeout=60)
                out = c.measure("demo", kind, args, request_id=rid)
            with lock:
                results.append((name, out))
        except BaseException as exc:  # noqa: BLE001
            with lock:
                errors.append(exc)

    with LiveService(paths) as svc:
        # 12 copies from alice (one logical request), 4 from bob under the same id (his own).
        threads = [threading.Thread(target=send, args=("alice" if i < 12 else "bob", svc)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
    assert not errors, errors[:3]
    alice = [out for name, out in results if name == "alice"]
    bob = [out for name, out in results if name == "bob"]
    assert len(alice) == 12 and len(bob) == 4
    assert all(out == alice[0] for out in alice) and all(out == bob[0] for out in bob)
    assert alice[0]["receipts"][0]["sequence"] != bob[0]["receipts"][0]["sequence"]
    snap = check_ledger(paths, [Answer("alice", rid, kind, alice[0]["answer"], alice[0]["receipts"]),
                                Answer("bob", rid, kind, bob[0]["answer"], bob[0]["receipts"])])
    assert sorted(e.kind for e in snap.entries) == ["charge", "charge", "release", "release"]
