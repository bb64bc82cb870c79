"""The privacy service, in process: remote measurements charged once and committed, jobs that
return sealed models, per-person caps, roles, signed requests, the dashboard's login."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import numpy as np
import pytest

from accountant.keys import load_private_key, load_public_key, public_key_from_pem
from accountant.receipt import Receipt
from accountant.verify import verify_path
from dpsynth.remote import ServiceError
from dpsynth.remote.protocol import API_PREFIX, new_request_id
from dpsynth.remote.protocol import sign_request as _sign_request
from dpsynth.table.commitments import release_digest

from .support import in_process, team_workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sign_request(*args, **kwargs):
    """Headers signed for the demo service (its configured name is the audience)."""
    return _sign_request(*args, service="dpsynth-demo", **kwargs)


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    paths = team_workspace(tmp_path_factory.mktemp("team"))
    with in_process(paths) as (service, http, clients):
        yield paths, service, http, clients


def _ledger_entries(paths):
    from accountant.ledger.sqlite import SQLiteLedgerStore

    store = SQLiteLedgerStore(paths["ledger"])
    try:
        return store.snapshot().entries
    finally:
        store.close()


def _marginal_args(**over):
    args = {"cliques": [["sex"], ["sex", "income"]], "sigma": 30.0, "purpose": "my mechanism",
            "generator": "mst", "run_id": "run-1"}
    return {**args, **over}


# -- remote measurements ---------------------------------------------------------------------------
def test_a_remote_marginal_is_charged_released_and_committed(team):
    paths, service, http, clients = team
    alice = clients["alice"]
    table = alice.table("demo")
    before = len(_ledger_entries(paths))
    out = table.measure_marginals([("sex",), ("sex", "income")], 30.0, purpose="one-way and two-way",
                                  generator="mst", run_id="run-a")
    assert [m.clique for m in out] == [("sex",), ("sex", "income")]
    assert out[1].values.shape == (table.domain["sex"], table.domain["income"])
    assert out[0].values.dtype == np.int64
    charge, release = table.receipts
    assert charge.kind == "charge" and release.kind == "release" and release.refs == [charge.sequence]
    assert charge.actor == "alice" and release.actor == "alice"
    # The release commits to exactly what came back (recomputed here from the answer).
    assert release.commitment == release_digest(out)
    # The receipts verify under the ledger key the officer published, and the ledger holds them.
    ledger_pub = load_public_key(paths["ledger_pub"])
    charge.verify(ledger_pub)
    release.verify(ledger_pub)
    entries = _ledger_entries(paths)
    assert len(entries) == before + 2
    assert entries[-2].entry_hash == charge.entry_hash and entries[-1].entry_hash == release.entry_hash
    # Run ids are the person's own: another person's "run-a" is another run.
    assert charge.run_id == "alice/run-a"
    # The answer is noisy counts: the total is near, not equal to, a count the service never released.
    assert abs(int(out[0].values.sum()) - 600) < 400


def test_a_retried_request_is_charged_once_and_answered_the_same(team):
    paths, service, http, clients = team
    alice = clients["alice"]
    rid = new_request_id()
    first = alice.measure("demo", "marginals", _marginal_args(), request_id=rid)
    n = len(_ledger_entries(paths))
    again = alice.measure("demo", "marginals", _marginal_args(), request_id=rid)
    assert again == first
    assert len(_ledger_entries(paths)) == n
    with pytest.raises(ServiceError) as info:
        alice.measure("demo", "marginals", _marginal_args(sigma=31.0), request_id=rid)
    assert info.value.status == 409 and "another request" in info.value.message
    # Bob's request id space is his own.
    bob = clients["bob"].measure("demo", "marginals", _marginal_args(), request_id=rid)
    assert bob["receipts"][0]["actor"] == "bob" and bob["receipts"][0]["sequence"] != first["receipts"][0]["sequence"]
    assert len(_ledger_entries(paths)) == n + 2


def test_select_and_count_work_like_the_local_table(team):
    paths, service, http, clients = team
    table = clients["alice"].table("demo")
    dom = table.domain
    estimates = [np.zeros((dom["sex"],)), np.zeros((dom["region"],))]
    i = table.select_marginal([("sex",), ("region",)], estimates, 0.05, purpose="pick", generator="aim",
                              run_id="sel")
    assert i in (0, 1)
    n = table.noisy_count(40.0, purpose="n", generator="mst")
    assert isinstance(n, int)
    assert [r.kind for r in table.receipts] == ["charge", "release", "charge", "release"]
    assert json.loads(table.receipts[0].event)["type"] == "exponential_mechanism"


@pytest.mark.parametrize("args, status, words", [
    (dict(cliques=[["no_such_column"]]), 400, "no_such_column"),
    (dict(sigma=-1.0), 400, "sigma"),
    (dict(generator="not-allowed"), 403, "not allowed"),
    (dict(cliques=[]), 422, "cliques"),
    (dict(sigma="NaN"), 422, "sigma"),
    (dict(extra_field=1), 422, "extra_field"),
])
def test_bad_measurements_are_refused_before_any_charge(team, args, status, words):
    paths, service, http, clients = team
    n = len(_ledger_entries(paths))
    with pytest.raises(ServiceError) as info:
        clients["alice"].measure("demo", "marginals", _marginal_args(**args))
    assert info.value.status == status and words in info.value.message
    assert len(_ledger_entries(paths)) == n


def test_a_failure_after_the_charge_says_nothing_about_the_rows(team, monkeypatch):
    paths, service, http, clients = team
    import dpsynth.table.private_table as pt

    def leaky(*args, **kwargs):
        raise ValueError("row 17 has value 'Private-Value-42'")

    # Where the exact counts are computed, whether counted afresh or kept from an earlier
    # request of the shared service table (Rows.marginals keeps them).
    monkeypatch.setattr(pt.PrivateTable, "_exact_marginals", leaky)
    n = len(_ledger_entries(paths))
    with pytest.raises(ServiceError) as info:
        clients["alice"].measure("demo", "marginals", _marginal_args())
    assert info.value.status == 500
    # The error id is random hex: it may contain "17" by chance; the row number may not.
    words = re.sub(r"error id [0-9a-f]+", "error id", info.value.message)
    assert "row 17" not in words and "17" not in words and "Private-Value" not in words
    assert "nothing was released" in info.value.message and "error id" in info.value.message
    entries = _ledger_entries(paths)
    assert len(entries) == n + 1 and entries[-1].kind == "charge"  # spent, never released


# -- caps --------------------------------------------------------------------------------------------
def test_a_person_cap_refuses_before_the_dataset_budget(tmp_path):
    paths = team_workspace(tmp_path, default_cap=0.3)
    with in_process(paths) as (service, http, clients):
        bob = clients["bob"]          # the dataset's default cap, 0.3
        spent = 0
        with pytest.raises(ServiceError) as info:
            for _ in range(50):
                bob.measure("demo", "count", {"sigma": 40.0, "purpose": "n", "generator": "mst"})
                spent += 1
        assert info.value.status == 409 and "'bob' has reached their cap" in info.value.message
        assert spent >= 2
        me = bob.me()["spend"][0]
        assert me["cap_epsilon"] == 0.3 and me["epsilon_spent"] <= 0.3 + 1e-9
        # Alice (cap 1.0) still measures: the cap is per person.
        clients["alice"].measure("demo", "count", {"sigma": 40.0, "purpose": "n", "generator": "mst"})
        # A job over bob's remaining cap is refused before anything is charged.
        n = len(_ledger_entries(paths))
        with pytest.raises(ServiceError) as info:
            bob.submit_job("demo", "mst", epsilon=0.2, n_samples=10)
        assert info.value.status == 409
        assert len(_ledger_entries(paths)) == n


# -- jobs --------------------------------------------------------------------------------------------
def test_a_job_returns_a_sealed_model_a_table_and_receipts_to_its_owner_only(team, tmp_path):
    from dpsynth.generators.model_file import load_model

    paths, service, http, clients = team
    alice, bob = clients["alice"], clients["bob"]
    job = alice.submit_job("demo", "independent", epsilon=0.2, n_samples=50, parameters={"iters": 50})
    done = alice.wait(job["id"], timeout=300, poll=0.2)
    assert done["state"] == "succeeded", done
    model = alice.download(job["id"], "model", tmp_path / "model.dpsynth")
    synthetic = alice.download(job["id"], "synthetic", tmp_path / "synthetic.csv")
    receipts = json.loads(alice.download(job["id"], "receipts", tmp_path / "r.json").read_text())
    trust = load_public_key(paths["ledger_pub"])
    loaded = load_model(model, trust=trust)
    assert loaded.epsilon_spent() == pytest.approx(0.2, rel=1e-6)
    import pandas as pd

    frame = pd.read_csv(synthetic)
    assert len(frame) == 50 and list(frame.columns) == list(loaded.schema.names)
    assert receipts[-1]["kind"] == "seal" and all(r["actor"] == "alice" for r in receipts)
    # Bob cannot see the job, its outputs, or cancel it; the auditor sees the record, not the outputs.
    for call in (lambda: bob.job(job["id"]), lambda: bob.download(job["id"], "synthetic", tmp_path / "x"),
                 lambda: bob.cancel(job["id"])):
        with pytest.raises(ServiceError) as info:
            call()
        assert info.value.status == 404
    assert clients["audrey"].job(job["id"])["state"] == "succeeded"
    with pytest.raises(ServiceError) as info:
        clients["audrey"].download(job["id"], "model", tmp_path / "y")
    assert info.value.status == 403
    # Resubmitting under the same request id gives the same job back.
    again = alice.submit_job("demo", "independent", epsilon=0.2, n_samples=50, parameters={"iters": 50},
                             request_id=job["request_id"])
    assert again["id"] == job["id"]


@pytest.mark.parametrize("kwargs, status, words", [
    (dict(generator="nope"), 400, "unknown generator"),
    (dict(parameters={"no_such_parameter": 1}), 400, "no_such_parameter"),
    (dict(parameters={"seed": 1}), 400, "seed"),
    (dict(epsilon=50.0), 409, "nothing was charged"),
    (dict(epsilon=-1.0), 400, "epsilon"),
])
def test_bad_jobs_are_refused_before_any_charge(team, kwargs, status, words):
    paths, service, http, clients = team
    n = len(_ledger_entries(paths))
    spec = {"generator": "mst", "epsilon": 0.1, "n_samples": 10, **kwargs}
    with pytest.raises(ServiceError) as info:
        clients["alice"].submit_job("demo", spec.pop("generator"), **spec)
    assert info.value.status in (status, 422) and words in info.value.message
    assert len(_ledger_entries(paths)) == n


def test_a_cancelled_queued_job_charges_nothing(tmp_path):
    paths = team_workspace(tmp_path, workers=1)
    with in_process(paths) as (service, http, clients):
        alice = clients["alice"]
        first = alice.submit_job("demo", "independent", epsilon=0.1, n_samples=10, parameters={"iters": 400})
        second = alice.submit_job("demo", "independent", epsilon=0.1, n_samples=10)
        cancelled = alice.cancel(second["id"])
        assert cancelled["state"] in ("cancelled",) or alice.wait(second["id"])["state"] == "cancelled"
        alice.wait(first["id"], timeout=300)
        time.sleep(0.5)
        assert alice.job(second["id"])["state"] == "cancelled"
        charged = {e.run_id for e in _ledger_entries(paths) if e.kind == "charge"}
        assert len(charged) == 1  # the first job's run only


# -- roles -------------------------------------------------------------------------------------------
def test_every_route_refuses_the_wrong_role(team):
    paths, service, http, clients = team
    alice, audrey, olivia = clients["alice"], clients["audrey"], clients["olivia"]
    for call in (lambda: alice.export("demo"), lambda: alice.verify("demo"), lambda: alice.summary("demo"),
                 lambda: alice.entries("demo"), lambda: alice.roster(), lambda: alice.login_path(),
                 lambda: alice.replace_config("x", "y")):
        with pytest.raises(ServiceError) as info:
            call()
        assert info.value.status == 403
    for call in (lambda: audrey.measure("demo", "count", {"sigma": 5.0, "purpose": "n", "generator": "mst"}),
                 lambda: audrey.submit_job("demo", "mst", epsilon=0.1, n_samples=5), lambda: audrey.roster(),
                 lambda: audrey.replace_config("x", "y"),
                 lambda: olivia.measure("demo", "count", {"sigma": 5.0, "purpose": "n", "generator": "mst"})):
        with pytest.raises(ServiceError) as info:
            call()
        assert info.value.status == 403
    assert audrey.verify("demo")["ok"] and olivia.verify("demo")["ok"]
    assert "olivia" in {p["name"] for p in olivia.roster()["people"]}


# -- signed requests ----------------------------------------------------------------------------------
def _send(http, key, method, path, body=b"", *, headers=None, when=None, target=None):
    signed = sign_request(key, method, target or API_PREFIX + path, body, when=when).as_dict()
    return http.request(method, API_PREFIX + path, content=body or None, headers={**signed, **(headers or {})})


def test_unsigned_replayed_tampered_and_stale_requests_are_refused(team):
    paths, service, http, clients = team
    key = load_private_key(paths["alice_key"])
    assert http.get(API_PREFIX + "/me").status_code == 401
    ok = _send(http, key, "GET", "/me")
    assert ok.status_code == 200
    # The same signed request again (a captured request replayed).
    signed = sign_request(key, "GET", API_PREFIX + "/me", b"").as_dict()
    assert http.get(API_PREFIX + "/me", headers=signed).status_code == 200
    assert http.get(API_PREFIX + "/me", headers=signed).status_code == 401
    # A body swapped under its signature.
    body = json.dumps({"sigma": 5.0, "purpose": "n", "generator": "mst", "request_id": new_request_id()}).encode()
    signed = sign_request(key, "POST", API_PREFIX + "/datasets/demo/measurements/count", body).as_dict()
    other = body.replace(b"5.0", b"0.5")
    r = http.post(API_PREFIX + "/datasets/demo/measurements/count", content=other, headers=signed)
    assert r.status_code == 401
    # Signed for one path, sent to another.
    signed = sign_request(key, "GET", API_PREFIX + "/me", b"").as_dict()
    assert http.get(API_PREFIX + "/datasets", headers=signed).status_code == 401
    # Too old, too new.
    for skew in (-400, 400):
        assert _send(http, key, "GET", "/me", when=int(time.time()) + skew).status_code == 401
    # A key that is not in the roster.
    from accountant.keys import generate_keypair

    assert _send(http, generate_keypair(), "GET", "/me").status_code == 401
    # Another person's key id with my signature.
    bad = sign_request(key, "GET", API_PREFIX + "/me", b"").as_dict()
    bad["x-dpsynth-key"] = clients["bob"].me()["key_id"]
    assert http.get(API_PREFIX + "/me", headers=bad).status_code == 401


def test_a_body_over_the_limit_is_refused(team):
    paths, service, http, clients = team
    key = load_private_key(paths["alice_key"])
    body = b"{" + b" " * (service.config.max_request_bytes + 10) + b"}"
    r = _send(http, key, "POST", "/datasets/demo/measurements/count", body)
    assert r.status_code == 413


# -- the configuration ------------------------------------------------------------------------------
def test_a_new_roster_takes_effect_and_an_old_one_cannot_come_back(tmp_path):
    import tomli_w

    from dpsynth.serve.config import config_signature_path, sign_config_file

    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib
    paths = team_workspace(tmp_path)
    with in_process(paths) as (service, http, clients):
        cfg = tomllib.loads(paths["config"].read_text())
        cfg["service"]["version"] = 2
        cfg["people"] = [p for p in cfg["people"] if p["name"] != "bob"]
        new = tmp_path / "service-v2.toml"
        new.write_text(tomli_w.dumps(cfg))
        # Unsigned, or signed by someone else: refused.
        with pytest.raises(ServiceError) as info:
            clients["olivia"].replace_config(new.read_text(), "{}")
        assert info.value.status == 400
        sign_config_file(new, load_private_key(paths["alice_key"]))
        with pytest.raises(ServiceError) as info:
            clients["olivia"].replace_config(new.read_text(), config_signature_path(new).read_text())
        assert "not by the officer key" in info.value.message
        sign_config_file(new, load_private_key(paths["officer_key"]))
        out = clients["olivia"].replace_config(new.read_text(), config_signature_path(new).read_text())
        assert out["version"] == 2
        with pytest.raises(ServiceError) as info:
            clients["bob"].me()
        assert info.value.status == 401
        # The old file (version 1) cannot be pushed again ...
        with pytest.raises(ServiceError) as info:
            clients["olivia"].replace_config(paths["config"].read_text(),
                                             config_signature_path(paths["config"]).read_text())
        assert "not above" in info.value.message
    # ... nor brought back by a restart.
    from dpsynth.serve.config import ConfigError
    from dpsynth.serve.startup import start_service

    with pytest.raises(ConfigError, match="older than the version 2"):
        start_service(paths["config"], load_public_key(paths["officer_pub"]))


# -- the dashboard's login ---------------------------------------------------------------------------
def test_a_dashboard_session_reads_only_and_its_code_works_once(team):
    paths, service, http, clients = team
    path = clients["audrey"].login_path()
    code = path.split("#login=")[1]
    from dpsynth.serve.auth import SESSION_COOKIE

    r = http.post("/dashboard/session", json={"code": code})
    assert r.status_code == 200
    cookie = r.cookies.get(SESSION_COOKIE)
    assert cookie and "httponly" in r.headers["set-cookie"].lower() and "samesite=strict" in r.headers[
        "set-cookie"].lower()
    again = http.post("/dashboard/session", json={"code": code})
    assert again.status_code == 401
    http.cookies.clear()
    jar = {SESSION_COOKIE: cookie}
    assert http.get(API_PREFIX + "/ledgers/demo/summary", cookies=jar).status_code == 200
    # A cookie never authorises a change, nor anything outside the read-only routes.
    body = json.dumps({"sigma": 5.0, "purpose": "n", "generator": "mst", "request_id": new_request_id()})
    assert http.post(API_PREFIX + "/datasets/demo/measurements/count", content=body, cookies=jar).status_code == 401
    assert http.get(API_PREFIX + "/jobs", cookies=jar).status_code == 401
    assert http.get(API_PREFIX + "/roster", cookies=jar).status_code == 401
    # A researcher cannot open a dashboard session.
    with pytest.raises(ServiceError) as info:
        clients["alice"].login_path()
    assert info.value.status == 403
    page = http.get("/dashboard/")
    assert page.status_code == 200 and "default-src 'none'" in page.headers["content-security-policy"]
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        r = http.get(f"/dashboard/{asset}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    assert http.get("/dashboard/index.html").status_code == 404   # the page only at /dashboard/
    assert http.get("/dashboard/..%2Fapp.py").status_code == 404


def test_the_summary_gives_the_dashboard_its_shares_and_the_full_curve_epsilon(team):
    paths, service, http, clients = team
    clients["bob"].measure("demo", "count", {"sigma": 30.0, "purpose": "n", "generator": "aim"})
    s = clients["audrey"].summary("demo")
    charges = [e for e in _ledger_entries(paths) if e.kind == "charge"]
    last = charges[-1]
    assert s["epsilon_spent"] == last.epsilon_filter and s["epsilon_curve"] == last.epsilon_curve
    assert 0 < s["epsilon_curve"] < s["epsilon_spent"]
    # Shares of the filter budget, per person and per generator: each adds up to the fraction used.
    assert sum(s["person_share"].values()) == pytest.approx(s["fraction_used"], rel=1e-9)
    assert sum(s["generator_share"].values()) == pytest.approx(s["fraction_used"], rel=1e-9)
    by_generator = {}
    for e in charges:
        by_generator[e.generator or "(none)"] = by_generator.get(e.generator or "(none)", 0.0) + e.cost
    assert s["generator_share"] == pytest.approx({k: v / last.filter_budget for k, v in by_generator.items()})
    assert set(s["generator_share"]) == {g["name"] for g in s["by_generator"]}


def test_the_ledger_the_service_keeps_verifies_and_the_openapi_description_is_served(team):
    paths, service, http, clients = team
    report = verify_path(paths["ledger"], officer_public_key=paths["officer_pub"], ledger_public_key=paths[
        "ledger_pub"])
    assert report.ok, report.summary()
    spec = http.get(API_PREFIX + "/openapi.json").json()
    assert "/api/v1/datasets/{name}/measurements/{kind}" in spec["paths"]
    keys = clients["alice"].ledger_keys("demo")
    assert keys["ledger_key_id"] == Receipt.from_dict(
        clients["alice"].measure("demo", "count", {"sigma": 9.0, "purpose": "n", "generator": "mst"})["receipts"][0]
    ).ledger_key_id
    public_key_from_pem(keys["ledger_public_key"])
    assert dataclasses.is_dataclass(Receipt)
