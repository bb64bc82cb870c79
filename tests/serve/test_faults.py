"""The service under faults, against a real `dpsynth serve` process: SIGKILL in the middle of
charges, responses lost on the network, a job killed with the service.  After each, the
ledger verifies, every request id is charged at most once, and every answer a client got is
the one its release entry commits to."""

from __future__ import annotations

import json
import os
import time

import pytest

from dpsynth.remote import ServiceClient, ServiceError
from dpsynth.remote.protocol import new_request_id

from .faults import DroppingProxy, dumps, kill_loop
from .ledger_checks import Answer, check_ledger
from .support import SERVICE, LiveService, read_snapshot, team_workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# 30 kills here; DPSYNTH_SERVICE_KILLS=100 (or benchmarks/service_kills.py) for the long run.
KILLS = int(os.environ.get("DPSYNTH_SERVICE_KILLS", "30"))


@pytest.mark.slow
def test_sigkill_mid_charge_never_loses_or_doubles_a_charge(tmp_path):
    paths = team_workspace(tmp_path, epsilon_total=50.0, default_cap=50.0)
    seed = int(os.environ["DPSYNTH_KILL_SEED"]) if "DPSYNTH_KILL_SEED" in os.environ else None
    report = kill_loop(paths, KILLS, seed=seed)
    print(dumps(report))
    assert sum(report.outcomes.values()) == KILLS
    # Every request sent got its answer in the end: each kill that was not a retry sent a new one.
    assert report.answers >= KILLS - report.retried_after_kill


def _args():
    return {"cliques": [["sex", "income"], ["region"]], "sigma": 25.0, "purpose": "over a bad network",
            "generator": "mst", "run_id": "net"}


@pytest.mark.parametrize("when", ["response", "request"])
def test_a_response_lost_on_the_network_is_retried_and_charged_once(tmp_path, when):
    paths = team_workspace(tmp_path)
    with LiveService(paths) as svc, DroppingProxy(svc.port, drop=2, when=when) as proxy:
        rid = new_request_id()
        with ServiceClient(proxy.url, paths["alice_key"], retries=4, service=SERVICE) as alice:
            out = alice.measure("demo", "marginals", _args(), request_id=rid)
        # Two responses were lost (each after the whole request reached the service); the third
        # try got through, under the same request id.
        assert proxy.dropped == 2 and proxy.connections >= 3
        # Asked again directly: the same answer, no new charge.
        with svc.client("alice") as direct:
            assert direct.measure("demo", "marginals", _args(), request_id=rid) == out
    snap = check_ledger(paths, [Answer("alice", rid, "marginals", out["answer"], out["receipts"])],
                        sent={rid: "alice"})
    assert [e.kind for e in snap.entries] == ["charge", "release"]
    assert snap.entries[0].request_id == rid and snap.entries[0].actor == "alice"


def _wait(client, job_id, pred, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if pred(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stuck: {job}")


@pytest.mark.slow
def test_a_job_killed_with_the_service_is_interrupted_its_charges_stand_and_queued_jobs_run(tmp_path):
    paths = team_workspace(tmp_path, workers=1)
    with LiveService(paths) as svc:
        with svc.client("alice") as alice:
            # A run that spends its budget at once, then estimates for a very long time.
            long = alice.submit_job("demo", "independent", epsilon=0.2, n_samples=20,
                                    parameters={"iters": 100_000_000})
            running = _wait(alice, long["id"], lambda j: j["state"] == "running" and j.get("charges_so_far", 0) >= 1)
            queued = alice.submit_job("demo", "independent", epsilon=0.1, n_samples=20, parameters={"iters": 30})
            assert alice.job(queued["id"])["state"] == "queued"
            svc.kill()
        charged = [e for e in read_snapshot(paths["ledger"]).entries if e.kind == "charge"]
        assert len(charged) == running["charges_so_far"] == 1
        svc.start()
        with svc.client("alice") as alice:
            job = alice.job(long["id"])
            assert job["state"] == "interrupted" and "charges made before stand" in job["error"]
            for output in ("synthetic", "model", "receipts"):
                with pytest.raises(ServiceError) as info:
                    alice.download(long["id"], output, tmp_path / f"x-{output}")
                assert info.value.status == 404
            # The queued job runs after the restart, to the end, and its outputs are the owner's.
            done = alice.wait(queued["id"], timeout=300, poll=0.2)
            assert done["state"] == "succeeded", done
            receipts = json.loads(alice.download(queued["id"], "receipts", tmp_path / "r.json").read_text())
        with svc.client("audrey") as auditor:
            assert auditor.verify("demo")["ok"]
    snap = check_ledger(paths)
    # The interrupted run's charge stands in the ledger (released to the run inside the service,
    # which then died): it is never sealed, and no job output commits to it.
    first = charged[0]
    assert any(e.sequence == first.sequence and e.entry_hash == first.entry_hash for e in snap.entries)
    sealed = {ref for e in snap.entries if e.kind == "seal" for ref in e.refs}
    assert first.sequence not in sealed
    assert {r["sequence"] for r in receipts if r["kind"] == "charge"} <= sealed
    assert first.sequence not in {r["sequence"] for r in receipts}
