"""The service on a PostgreSQL ledger while the database goes away under it: the server
restarted (`pg_ctl restart -m fast`) and the service's backends terminated
(`pg_terminate_backend`) in the middle of charges from several clients.

A client retrying under its request ids (the ServiceClient's own retries on 503) must end
with every request answered once: the ledger verifies, each request id is charged once and
released once, every answer received is the one its release commits to, and asking again
under the same id gives back the same answer.  A fault the service cannot get past
(the database down) is a 503 the client retries, never a charge made twice, a failure kept
for ever, or an answer without its entry."""

from __future__ import annotations

import random
import threading
import time

import httpx
import pytest

from dpsynth.remote import ServiceClient
from dpsynth.remote.protocol import new_request_id
from tests.postgres_server import fresh_ledger_name

from .ledger_checks import Answer, check_ledger
from .support import SERVICE, LiveService, add_researchers, team_workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CLIENTS = 6
REQUESTS = 12          # per client, at least
FAULTS = 4             # restarts and backend kills, alternating


def _request(i: int) -> tuple[str, dict]:
    if i % 3 == 0:
        return "count", {"sigma": 300.0, "purpose": "n", "generator": "mst", "run_id": "pg"}
    return "marginals", {"cliques": [["sex", "income"], ["education", "region"]], "sigma": 300.0,
                         "purpose": "while the database restarts", "generator": "mst", "run_id": "pg"}


def _terminate_service_backends(server) -> int:
    """End every session the ledger store opened (its application_name), as a DBA or the OOM
    killer would; returns how many were ended."""
    with server.connect("postgres") as conn:
        return sum(bool(r[0]) for r in conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'dpsynth-ledger' "
            "AND pid <> pg_backend_pid()").fetchall())


def test_postgres_restarted_and_backends_killed_mid_run_lose_and_double_nothing(tmp_path, postgres_server):
    paths = team_workspace(tmp_path, ledger_url=postgres_server.url(fresh_ledger_name("svc")),
                           epsilon_total=50.0, default_cap=50.0)
    names = add_researchers(paths, CLIENTS, cap=50.0)
    rng = random.Random(0)
    sent: dict[str, tuple[str, str, dict]] = {}           # request id -> (person, kind, args)
    answers: dict[str, dict] = {}
    statuses: list[int] = []                              # every response status the clients saw
    errors: list[str] = []
    lock = threading.Lock()
    chaos_over = threading.Event()
    start = threading.Barrier(CLIENTS + 1)

    def on_response(response: httpx.Response) -> None:
        with lock:
            statuses.append(response.status_code)

    def client(name: str, url: str) -> None:
        http = httpx.Client(base_url=url, timeout=60, event_hooks={"response": [on_response]})
        try:
            # Eight tries, the last ~20 s after the first: longer than a restart takes.
            c = ServiceClient(url, paths[f"{name}_key"], retries=8, session=http, service=SERVICE)
            start.wait(timeout=60)
            i = 0
            # At least REQUESTS each, and on until the last fault is over (so every fault lands
            # on a running service, however fast the requests go).
            while i < REQUESTS or not chaos_over.is_set():
                kind, args = _request(i)
                i += 1
                rid = new_request_id()
                with lock:
                    sent[rid] = (name, kind, args)
                out = c.measure("demo", kind, args, request_id=rid)
                with lock:
                    answers[rid] = out
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        finally:
            http.close()

    faults: list[str] = []

    def disrupt() -> None:
        try:
            start.wait(timeout=60)
            for k in range(FAULTS):
                time.sleep(rng.uniform(0.3, 1.0))
                if k % 2 == 0:
                    postgres_server.restart()
                    faults.append("restart")
                else:
                    faults.append(f"terminated {_terminate_service_backends(postgres_server)}")
            time.sleep(0.5)
        finally:
            chaos_over.set()

    with LiveService(paths) as svc:
        threads = [threading.Thread(target=client, args=(n, svc.url)) for n in names]
        chaos = threading.Thread(target=disrupt)
        for t in (*threads, chaos):
            t.start()
        chaos.join(timeout=180)
        for t in threads:
            t.join(timeout=240)
        assert not any(t.is_alive() for t in threads)
        assert not errors, (errors[:3], svc.log.read_text()[-3000:])
        assert len(faults) == FAULTS, faults
        # The faults landed on requests in flight: the service answered some with 503 (the ledger
        # unreachable) and the clients retried them under the same request ids.
        assert 503 in statuses, sorted(set(statuses))
        assert set(statuses) <= {200, 503}, (sorted(set(statuses)), svc.log.read_text()[-3000:])
        # Asked again under the same id (the database up again), each request gets the very
        # answer its client received, and nothing new is charged.
        before = len(check_ledger(paths, verify=False).entries)
        for rid in rng.sample(sorted(answers), 20):
            person, kind, args = sent[rid]
            with svc.client(person) as c:
                assert c.measure("demo", kind, args, request_id=rid) == answers[rid]
        with svc.client("audrey") as auditor:
            assert auditor.verify("demo")["ok"]
    assert len(answers) == len(sent) >= CLIENTS * REQUESTS
    snap = check_ledger(paths, [Answer(sent[rid][0], rid, sent[rid][1], out["answer"], out["receipts"])
                                for rid, out in answers.items()], sent={rid: s[0] for rid, s in sent.items()})
    assert len(snap.entries) == before
    charges = [e for e in snap.entries if e.kind == "charge"]
    releases = [e for e in snap.entries if e.kind == "release"]
    # One charge and one release per request id: none lost, none made twice.
    assert sorted(e.request_id for e in charges) == sorted(sent)
    assert len(releases) == len(charges)


# -- the same, made to happen at a chosen point (in process, SQLite): the store fails at the charge
# -- after it committed (the acknowledgement lost), or at the release after the answer was stored.

def _failing_once(monkeypatch, gate, method: str, *, after: bool) -> list[int]:
    """Make `gate.method` raise the store's "outcome unknown" once: after doing its work
    (`after`: the entry committed, its acknowledgement lost) or before (nothing written)."""
    from accountant.ledger.store import CommitOutcomeUnknown

    original = getattr(gate, method)
    calls: list[int] = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            if after:
                original(*args, **kwargs)
            raise CommitOutcomeUnknown("the connection was lost during COMMIT (injected)")
        return original(*args, **kwargs)

    monkeypatch.setattr(gate, method, flaky)
    return calls


@pytest.mark.parametrize("method,after", [("charge", True), ("charge", False), ("release", True),
                                          ("release", False)])
def test_a_ledger_failure_mid_request_is_a_503_and_the_retry_charges_once(tmp_path, monkeypatch, method, after):
    from dpsynth.remote import ServiceError

    from .support import in_process

    paths = team_workspace(tmp_path)
    kind, args = _request(1)
    rid = new_request_id()
    with in_process(paths) as (service, _, clients):
        calls = _failing_once(monkeypatch, service.datasets["demo"].gate, method, after=after)
        with pytest.raises(ServiceError) as info:
            clients["alice"].measure("demo", kind, args, request_id=rid)
        assert info.value.status == 503 and "retry under the same request id" in info.value.message
        assert "postgresql" not in info.value.message and "ledger.db" not in info.value.message
        out = clients["alice"].measure("demo", kind, args, request_id=rid)
        assert clients["alice"].measure("demo", kind, args, request_id=rid) == out
        # The fault was injected; a release that did commit is found by the retry, not made again.
        assert len(calls) == (1 if (method, after) == ("release", True) else 2)
    snap = check_ledger(paths, [Answer("alice", rid, kind, out["answer"], out["receipts"])], sent={rid: "alice"})
    assert [e.kind for e in snap.entries] == ["charge", "release"]
