"""Fault injection for the service tests: a TCP proxy that loses responses, and the loop that
SIGKILLs `dpsynth serve` in the middle of charges (also run by benchmarks/service_kills.py)."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from dpsynth.remote import ServiceClient, ServiceError
from dpsynth.remote.protocol import new_request_id

from .ledger_checks import Answer, check_ledger, verify_ledger
from .support import SERVICE, LiveService, read_snapshot

__all__ = ["DroppingProxy", "KillReport", "kill_loop"]


# --------------------------------------------------------------------------- the proxy

class DroppingProxy:
    """A TCP proxy in front of the service.  The first `drop` connections lose their response:
    the request is forwarded whole, then the client's connection is closed — `when="response"`:
    as the first byte of the response arrives (the service has answered); `when="request"`: at
    once (the service is still working; the proxy keeps its side open and reads the answer into
    the void).  Later connections pass through."""

    def __init__(self, upstream_port: int, *, drop: int = 1, when: str = "response") -> None:
        assert when in ("response", "request")
        self.upstream = ("127.0.0.1", upstream_port)
        self.drop = drop
        self.when = when
        self.dropped = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "DroppingProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                lose = self.dropped < self.drop
                if lose:
                    self.dropped += 1
            threading.Thread(target=self._serve, args=(client, lose), daemon=True).start()

    @staticmethod
    def _request_bytes(client: socket.socket) -> bytes:
        """One whole HTTP request (headers and Content-Length body) from the client."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _serve(self, client: socket.socket, lose: bool) -> None:
        upstream = socket.create_connection(self.upstream)
        try:
            if lose:
                upstream.sendall(self._request_bytes(client))
                if self.when == "request":
                    client.close()
                first = upstream.recv(65536)           # the service answered ...
                client.close()                         # ... and the client never hears it
                while first:
                    first = upstream.recv(65536)
                return
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        def copy(src: socket.socket, dst: socket.socket) -> None:
            try:
                while True:
                    chunk = src.recv(65536)
                    if not chunk:
                        break
                    dst.sendall(chunk)
            except OSError:
                pass
            finally:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        t = threading.Thread(target=copy, args=(b, a), daemon=True)
        t.start()
        copy(a, b)
        t.join(timeout=60)


# --------------------------------------------------------------------------- the kill loop

@dataclass
class KillReport:
    kills: int = 0
    seed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)     # what a kill left behind, counted
    answers: int = 0
    retried_after_kill: int = 0
    restart_wall: list[float] = field(default_factory=list)    # seconds from SIGKILL to a healthy service
    restart_cpu: list[float] = field(default_factory=list)     # CPU seconds of the new process at health
    verify_wall: list[float] = field(default_factory=list)
    latency: dict[str, float] = field(default_factory=dict)    # median seconds of each shape, warm
    entries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


SHAPES = ("count", "small", "large")


def _request(shape: str) -> tuple[str, dict]:
    """A count; a few small marginals; marginals with ~20,000 cells (a longer stretch between
    the charge and the release for a kill to land in)."""
    if shape == "count":
        return "count", {"sigma": 200.0, "purpose": "n", "generator": "mst", "run_id": "kill"}
    cliques = [["sex"], ["sex", "income"], ["education", "region"]] if shape == "small" else \
        [["age", "hours", "occupation", "education"], ["income", "region", "married", "satisfaction"]]
    return "marginals", {"cliques": cliques, "sigma": 200.0, "purpose": "marginals under fire", "generator": "mst",
                         "run_id": "kill"}


def _stage(paths: dict, person: str, rid: str) -> str:
    """Where a kill left a request: none (not charged) | charged (no answer kept) | stored (the
    answer kept, not released) | released."""
    import sqlite3

    entries = read_snapshot(paths["ledger"]).entries
    charge = next((e.sequence for e in entries if e.kind == "charge" and e.actor == person and e.request_id == rid),
                  None)
    if charge is None:
        return "none"
    if any(e.kind == "release" and e.refs == [charge] for e in entries):
        return "released"
    conn = sqlite3.connect(paths["root"] / "state" / "service.db")
    try:
        stored = conn.execute("SELECT 1 FROM answers WHERE person = ? AND request_id = ?", (person, rid)).fetchone()
    finally:
        conn.close()
    return "stored" if stored else "charged"


def kill_loop(paths: dict, kills: int, *, seed: int | None = None, verify_every: int = 1,
              log: Any = None) -> KillReport:
    """Send measurements under fixed request ids and SIGKILL the service at random moments
    (sometimes as the request leaves the client), restart it, and retry every unanswered
    request under the SAME id — sometimes at once, sometimes as the next request to be killed.
    Checks, after every restart, that the ledger verifies; after each answer, that an answer
    received before the kill is the one a retry gets back; at the end, every invariant of
    `check_ledger`.  Returns what happened."""
    seed = random.randrange(2 ** 32) if seed is None else seed
    rng = random.Random(seed)
    report = KillReport(kills=kills, seed=seed)
    requests: dict[str, tuple[str, str, dict, str]] = {}     # rid -> (person, kind, args, shape)
    answers: dict[str, Answer] = {}
    pending: list[str] = []
    svc = LiveService(paths).start()
    try:
        # Warm up, and learn how long each shape of request takes (kills are spread over it).
        latency: dict[str, float] = {}
        with svc.client("alice", retries=0) as c:
            for shape in SHAPES:
                took = []
                for _ in range(3):
                    (kind, args), rid = _request(shape), new_request_id()
                    t = time.monotonic()
                    out = c.measure("demo", kind, args, request_id=rid)
                    took.append(time.monotonic() - t)
                    requests[rid] = ("alice", kind, args, shape)
                    answers[rid] = Answer("alice", rid, kind, out["answer"], out["receipts"])
                latency[shape] = sorted(took)[1]
        report.latency = latency

        for k in range(kills):
            if pending and rng.random() < 0.5:
                rid = pending.pop(rng.randrange(len(pending)))
                report.retried_after_kill += 1
            else:
                rid = new_request_id()
                shape = SHAPES[k % len(SHAPES)]
                kind, args = _request(shape)
                requests[rid] = ("alice" if k % 2 else "bob", kind, args, shape)
            person, kind, args, shape = requests[rid]
            sent = threading.Event()
            result: dict[str, Any] = {}

            def send() -> None:
                http = httpx.Client(base_url=svc.url, timeout=60,
                                    event_hooks={"request": [lambda request: sent.set()]})
                try:
                    client = ServiceClient(svc.url, paths[f"{person}_key"], retries=0, session=http, service=SERVICE)
                    result["out"] = client.measure("demo", kind, args, request_id=rid)
                except (httpx.TransportError, OSError) as exc:
                    result["lost"] = exc
                except ServiceError as exc:
                    result["error"] = exc
                finally:
                    http.close()

            thread = threading.Thread(target=send)
            thread.start()
            assert sent.wait(30), "the request never left"
            if rng.random() >= 0.2:                           # else: as the request leaves
                time.sleep(rng.uniform(0, 1.2 * latency[shape]))
            killed_at = time.monotonic()
            svc.kill()
            thread.join(timeout=60)
            assert "error" not in result, f"seed {seed}: the service refused {rid}: {result['error']}"
            stage = _stage(paths, person, rid)
            if "out" in result:
                out = result["out"]
                answers[rid] = Answer(person, rid, kind, out["answer"], out["receipts"])
                outcome = "answered"
            else:
                outcome = f"lost-{stage}"
            report.outcomes[outcome] = report.outcomes.get(outcome, 0) + 1

            svc.start()
            report.restart_wall.append(time.monotonic() - killed_at)
            report.restart_cpu.append(svc.cpu_seconds())
            if verify_every and (k % verify_every == 0 or k == kills - 1):
                t = time.monotonic()
                verify_ledger(paths)
                report.verify_wall.append(time.monotonic() - t)
            with svc.client(person, retries=6) as c:
                if "out" in result:
                    # Answered before the kill: the retry gets the stored answer, not a new charge.
                    again = c.measure("demo", kind, args, request_id=rid)
                    assert again == result["out"], f"seed {seed}: {rid} answered differently after a restart"
                elif rng.random() < 0.5:
                    out = c.measure("demo", kind, args, request_id=rid)
                    answers[rid] = Answer(person, rid, kind, out["answer"], out["receipts"])
                else:
                    pending.append(rid)                       # retried later, maybe under the next kill
            if log is not None:
                log(f"kill {k + 1}/{kills}: {outcome}")
        for rid in pending:
            person, kind, args, _ = requests[rid]
            with svc.client(person, retries=6) as c:
                out = c.measure("demo", kind, args, request_id=rid)
            answers[rid] = Answer(person, rid, kind, out["answer"], out["receipts"])
        # Every request was answered in the end, and a retry of each gives the same answer.
        assert set(answers) == set(requests)
        for rid in rng.sample(sorted(answers), min(10, len(answers))):
            person, kind, args, _ = requests[rid]
            with svc.client(person, retries=6) as c:
                again = c.measure("demo", kind, args, request_id=rid)
            assert (again["answer"], again["receipts"]) == (answers[rid].answer, answers[rid].receipts)
    finally:
        svc.stop()
    snap = check_ledger(paths, answers.values(), sent={rid: r[0] for rid, r in requests.items()})
    # One charge per request id, all released: nothing was lost or spent twice.
    charges = [e for e in snap.entries if e.kind == "charge"]
    assert sorted(e.request_id for e in charges) == sorted(requests), f"seed {seed}"
    report.answers = len(answers)
    report.entries = len(snap.entries)
    return report


def dumps(report: KillReport) -> str:
    return json.dumps(report.to_dict(), indent=1, sort_keys=True)
