"""The gate issue's red-team attacks, rerun against the service, and the service's own limits.

Each test is what an adversarial researcher with a valid key would try: someone else's
request id, hostile arguments, request floods, a ledger edited or removed behind the
service's back.  Each asserts the refusal and that nothing was charged or released for it."""

from __future__ import annotations

import re
import shutil

import pytest

from dpsynth.remote import ServiceError
from dpsynth.remote.protocol import API_PREFIX, new_request_id

from ..security.support import attacker_db
from .support import in_process, rewrite_config, team_workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _entries(paths) -> list:
    from accountant.ledger.sqlite import SQLiteLedgerStore

    store = SQLiteLedgerStore(paths["ledger"])
    try:
        return store.snapshot().entries
    finally:
        store.close()


def _args(**over):
    return {"cliques": [["sex", "income"]], "sigma": 30.0, "purpose": "attack", "generator": "mst",
            "run_id": "r1", **over}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    paths = team_workspace(tmp_path_factory.mktemp("attacks"))
    with in_process(paths) as (service, http, clients):
        yield paths, service, http, clients


def test_another_persons_request_id_buys_neither_their_answer_nor_a_free_charge(team):
    """Request ids are per person: bob resending alice's id (same arguments) is a new request of
    his own, charged to him — never alice's stored answer for free."""
    paths, service, http, clients = team
    rid = new_request_id()
    mine = clients["alice"].measure("demo", "marginals", _args(), request_id=rid)
    before = _entries(paths)
    theirs = clients["bob"].measure("demo", "marginals", _args(), request_id=rid)
    after = _entries(paths)
    charges = [e for e in after[len(before):] if e.kind == "charge"]
    assert len(charges) == 1 and charges[0].actor == "bob"
    assert theirs["receipts"] != mine["receipts"]
    # And alice's retry is still hers, unchanged, charged once.
    n = len(_entries(paths))
    assert clients["alice"].measure("demo", "marginals", _args(), request_id=rid) == mine
    assert len(_entries(paths)) == n


@pytest.mark.parametrize("over, status, words", [
    (dict(sigma=1e-320), 403, "finite"),                      # σ² underflows: ρ would divide by zero
    (dict(sigma=0.0), 400, "sigma"),
    (dict(sigma=[30.0, 30.0]), 400, "sigma"),                  # one σ per clique, and there is one clique
    (dict(cliques=[["sex", "sex"]]), 400, "twice"),
    (dict(cliques=[["sex"]] * 5001), 422, "cliques"),
    (dict(recode={"sex": [-1, 0]}), 400, "recode"),
    (dict(recode={"no_such_column": [0]}), 400, "no_such_column"),
    (dict(purpose="=HYPERLINK(\"http://evil\")"), 422, "formula"),
    (dict(purpose="normal\u202etxt.exe"), 422, "bidirectional"),
    (dict(run_id="a\nforged line"), 422, "control"),
])
def test_hostile_measurement_arguments_are_refused_before_any_charge(team, over, status, words):
    paths, service, http, clients = team
    n = len(_entries(paths))
    with pytest.raises(ServiceError) as info:
        clients["alice"].measure("demo", "marginals", _args(**over))
    assert info.value.status == status, info.value.message
    assert words in info.value.message
    assert len(_entries(paths)) == n


def test_a_request_asking_for_too_many_cells_is_refused_before_any_charge(tmp_path):
    paths = team_workspace(tmp_path)
    rewrite_config(paths, lambda cfg: cfg["service"].update(max_cells_per_request=8))
    with in_process(paths) as (service, http, clients):
        n = len(_entries(paths))
        with pytest.raises(ServiceError) as info:
            clients["alice"].measure("demo", "marginals", _args(cliques=[["sex", "income"], ["region"],
                                                                             ["sex", "region"]]))
        assert info.value.status == 400 and "cells" in info.value.message
        assert len(_entries(paths)) == n


def test_a_flood_of_requests_is_rate_limited_and_nothing_refused_is_charged(tmp_path):
    paths = team_workspace(tmp_path, requests_per_minute=5)
    with in_process(paths) as (service, http, clients):
        statuses = []
        for _ in range(12):
            try:
                clients["bob"].measure("demo", "count", {"sigma": 50.0, "purpose": "n", "generator": "mst"})
                statuses.append(200)
            except ServiceError as exc:
                statuses.append(exc.status)
        assert 429 in statuses and set(statuses) <= {200, 429}
        charged = [e for e in _entries(paths) if e.kind == "charge" and e.actor == "bob"]
        assert len(charged) == statuses.count(200) < 12
        # One person's flood does not lock out another.
        clients["alice"].measure("demo", "count", {"sigma": 50.0, "purpose": "n", "generator": "mst"})


def test_no_route_hands_a_researcher_keys_rows_or_files(team):
    """Every GET route the API has, called by a researcher (with path parameters filled with the
    dataset's name and traversal attempts): no private key, no ledger file, no raw rows."""
    paths, service, http, clients = team
    keys = sorted((paths["root"] / "keys").glob("*.key")) + sorted((paths["root"] / "people").glob("*.key"))
    # The key material of each file (a PEM body line, or the dataset key's hex).
    secrets = [max(k.read_text().split(), key=len)[:40] for k in keys]
    assert secrets
    raw = paths["data"].read_text().splitlines()[1:6]
    spec = http.get(API_PREFIX + "/openapi.json").json()
    alice = clients["alice"]
    tried = 0
    for route, methods in spec["paths"].items():
        if "get" not in methods:
            continue
        for fill in ("demo", "..", "..%2F..%2Fkeys", "%2e%2e"):
            path = route.replace(API_PREFIX, "")
            path = re.sub(r"\{[^}]*\}", fill, path)
            try:
                body = alice.request("GET", path)
            except ServiceError as exc:
                assert exc.status in (400, 403, 404, 405, 409, 422), (path, exc.status)
                body = exc.message
            text = str(body)
            tried += 1
            assert not any(s in text for s in secrets), path
            assert "PRIVATE KEY" not in text, path
            assert not any(line and line in text for line in raw), path
    assert tried >= 8


def test_a_ledger_cut_behind_the_services_back_stops_every_charge(tmp_path):
    """Attack 5 of the gate issue through the service: someone with file access (no key) cuts
    the ledger's tail; the service's gate catches it on the next charge and releases nothing."""
    paths = team_workspace(tmp_path)
    with in_process(paths) as (service, http, clients):
        for _ in range(2):
            clients["alice"].measure("demo", "count", {"sigma": 50.0, "purpose": "n", "generator": "mst"})
        with attacker_db(paths["ledger"]) as conn:
            last = conn.execute("SELECT MAX(sequence) FROM entries").fetchone()[0]
            conn.execute("DELETE FROM entries WHERE sequence = ?", (last,))
        with pytest.raises(ServiceError) as info:
            clients["alice"].measure("demo", "count", {"sigma": 50.0, "purpose": "n", "generator": "mst"})
        assert info.value.status in (409, 500, 503)
        assert clients["audrey"].verify("demo")["ok"] is False


def test_a_ledger_deleted_while_the_service_runs_is_not_a_fresh_budget(tmp_path):
    paths = team_workspace(tmp_path)
    with in_process(paths) as (service, http, clients):
        clients["alice"].measure("demo", "count", {"sigma": 50.0, "purpose": "n", "generator": "mst"})
        shutil.move(paths["ledger"], tmp_path / "gone.db")
        with pytest.raises(ServiceError):
            clients["alice"].measure("demo", "count", {"sigma": 50.0, "purpose": "n", "generator": "mst"})
    # Started again without its ledger, the service refuses to start: no silent re-initialisation.
    from accountant.keys import load_public_key
    from dpsynth.serve.config import ConfigError
    from dpsynth.serve.startup import start_service

    with pytest.raises(ConfigError) as info:
        start_service(paths["config"], load_public_key(paths["officer_pub"]))
    assert "ledger" in str(info.value)


def test_a_request_signed_for_another_service_is_refused(team):
    """A request captured at one service (or signed by its operator's client) and sent to another
    that registered the same person's key: the audience differs, so the signature fails."""
    from accountant.keys import load_private_key
    from dpsynth.remote.protocol import sign_request

    paths, service, http, clients = team
    key = load_private_key(paths["alice_key"])
    for audience in ("other-service", service.config.name):
        headers = sign_request(key, "GET", API_PREFIX + "/me", b"", service=audience).as_dict()
        status = http.get(API_PREFIX + "/me", headers=headers).status_code
        assert status == (401 if audience == "other-service" else 200)
    # The header naming the service cannot be swapped under the signature either.
    headers = sign_request(key, "GET", API_PREFIX + "/me", b"", service="other-service").as_dict()
    headers["x-dpsynth-service"] = service.config.name
    assert http.get(API_PREFIX + "/me", headers=headers).status_code == 401
