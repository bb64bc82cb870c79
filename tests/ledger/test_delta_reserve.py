"""The policy's δ reserve: approximate mechanisms (ApproximationEvent parts) are paid from it,
enforced by the gate, recomputed by `verify`, shown in exports; old ledgers are unchanged."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accountant.conversions import rdp_budget_at_order
from accountant.events import ApproximationEvent, ComposedEvent, DiscreteGaussianEvent, ZCdpEvent
from accountant.export import to_csv, to_jsonl
from accountant.fingerprint import FINGERPRINT_PREFIX
from accountant.gate import BudgetExceeded, init_ledger
from accountant.keys import load_private_key
from accountant.policy import PolicyError, parse_policy, render_policy, sign_policy_file
from accountant.testing import make_test_gate
from accountant.verify import verify_path, verify_snapshot
from tests.accountant.test_approximation import cks_epsilon

from ._tamper import rewrite_metadata

FIXTURE = Path(__file__).parent / "data" / "pre_delta_reserve_ledger.jsonl"
FP = FINGERPRINT_PREFIX + "ab" * 32


def policy(**kw) -> str:
    kw.setdefault("epsilon", 1.0)
    kw.setdefault("delta", 1e-6)
    return render_policy(relation="add_or_remove_one", fingerprint=FP, max_records=1000, **kw)


def key_discovery(sigma: float = 8.0, thr: float = 1e-7) -> ComposedEvent:
    return ComposedEvent((DiscreteGaussianEvent(sigma, 1.0), ApproximationEvent(thr)))


# -- policy -------------------------------------------------------------------------------------------

def test_reserve_is_optional_and_defaults_to_zero():
    assert parse_policy(policy()).delta_reserve == 0.0
    assert "delta_reserve" not in policy()  # old policies are byte-identical
    p = parse_policy(policy(delta_reserve=4e-7))
    assert p.delta_reserve == 4e-7 and p.summary()["budget"]["delta_reserve"] == 4e-7


@pytest.mark.parametrize("reserve", [1e-6, 5e-6, -1e-9])
def test_reserve_must_be_below_delta_and_not_negative(reserve):
    with pytest.raises(PolicyError, match=r"budget\.delta_reserve"):
        parse_policy(policy(delta_reserve=reserve))


def test_reserve_must_be_a_number():
    text = policy().replace('relation = "add_or_remove_one"', 'relation = "add_or_remove_one"\ndelta_reserve = "1e-7"')
    with pytest.raises(PolicyError, match=r"budget\.delta_reserve"):
        parse_policy(text)


# -- the gate -------------------------------------------------------------------------------------------

def test_a_ledger_without_reserve_refuses_any_delta_and_writes_nothing(ledger):
    with pytest.raises(BudgetExceeded, match="delta_reserve") as info:
        ledger.gate.charge(key_discovery(), purpose="keys")
    assert info.value.delta_requested == 1e-7 and info.value.delta_reserve == 0.0
    assert ledger.gate.spent_costs() == []
    report = verify_path(ledger.ledger_path)
    assert report.ok and report.entries == 0
    ledger.gate.charge(DiscreteGaussianEvent(8.0, 1.0), purpose="pure zCDP still fine")


def test_reserve_pays_delta_until_spent_and_verify_recomputes_it(tmp_path):
    eps, delta, reserve = 1.0, 1e-6, 3e-7
    tl = make_test_gate(tmp_path, epsilon=eps, delta=delta, delta_reserve=reserve)
    g = tl.gate
    # the RDP budget is the one at (ε, δ − reserve)
    assert g.filter.budget == rdp_budget_at_order(g.filter.order, eps, delta - reserve)
    assert g.metadata.filter_budget == g.filter.budget
    r1 = g.charge(key_discovery(thr=1e-7), purpose="keys a")
    g.charge(key_discovery(thr=1e-7), purpose="keys b")
    assert g.delta_spent() == pytest.approx(2e-7, rel=1e-15) and g.remaining_delta() > 0
    costs_before = g.spent_costs()
    with pytest.raises(BudgetExceeded, match="delta_reserve"):
        g.charge(key_discovery(thr=1.5e-7), purpose="keys c")  # 3.5e-7 > 3e-7
    assert g.spent_costs() == costs_before
    g.charge(key_discovery(thr=0.5e-7), purpose="keys d")       # 3e-7 fits (as decimals: 1+1+0.5 = 3)
    # The full-curve ε of the first entry: ρ = 1/128 converted at δ − 1e-7 (independent closed form).
    assert r1.epsilon_curve == pytest.approx(cks_epsilon(1 / 128, delta - 1e-7), rel=1e-9)
    report = verify_path(tl.ledger_path)
    assert report.ok, report.summary()
    assert report.entries == 3 and report.delta_reserve == reserve
    assert report.delta_spent == pytest.approx(2.5e-7, rel=1e-15)
    assert "delta spent" in report.summary()
    # a reopened gate agrees
    assert tl.reopen().delta_spent() == g.delta_spent()


def test_exports_show_delta_and_round_trip(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6, delta_reserve=4e-7)
    tl.gate.charge(key_discovery(thr=1e-7), purpose="keys")
    tl.gate.charge(ZCdpEvent(0.001), purpose="pure")
    snap = tl.gate._store.snapshot()
    path = tmp_path / "export.jsonl"
    path.write_text(to_jsonl(snap))
    report = verify_path(path)
    assert report.ok and report.delta_spent == 1e-7
    rows = list(csv.DictReader(io.StringIO(to_csv(snap))))
    assert [float(r["delta_cost"]) for r in rows] == [1e-7, 0.0]
    assert [float(r["delta_spent"]) for r in rows] == [1e-7, 1e-7]
    from accountant.export import to_html

    assert "δ spent 1e-07 of reserve 4e-07" in to_html(snap, verify_snapshot(snap))
    from dpsynth.cli import app

    out = CliRunner().invoke(app, ["ledger", "status", str(tl.ledger_path), "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert info["delta_spent"] == 1e-7 and info["delta_reserve"] == 4e-7


def test_raising_the_reserve_after_signing_is_refused(tmp_path):
    tl = make_test_gate(tmp_path / "a", epsilon=1.0, delta=1e-6, delta_reserve=1e-7)
    # (1) the officer's file edited before the ledger is made: its signature no longer matches
    text = tl.policy_path.read_text().replace("delta_reserve = 1e-07", "delta_reserve = 9e-07")
    assert "9e-07" in text
    tl.policy_path.write_text(text)
    with pytest.raises(PolicyError, match="altered"):
        init_ledger(tmp_path / "b.db", tl.policy_path, officer_key=tl.officer_key, ledger_key=tl.ledger_pub)

    # (2) the policy text inside an existing ledger rewritten (and its hash recomputed)
    from accountant.ledger.hashing import sha256_hex

    def raise_reserve(md: dict) -> dict:
        md["policy_toml"] = md["policy_toml"].replace("delta_reserve = 1e-07", "delta_reserve = 9e-07")
        md["policy_sha256"] = sha256_hex(md["policy_toml"].encode())
        return md

    tl.gate.close()
    rewrite_metadata(tl.ledger_path, raise_reserve)
    report = verify_path(tl.ledger_path)
    assert not report.ok and "signature" in report.summary()


def test_a_tampered_policy_cannot_lift_the_reserve_to_pay_for_delta(tmp_path):
    # Entries written under a policy with a reserve, shown under a signed policy without one:
    # verify recomputes each entry's δ from its event JSON and refuses the spend.
    d = tmp_path / "x"
    tl = make_test_gate(d, epsilon=1.0, delta=1e-6, delta_reserve=2e-7)
    tl.gate.charge(key_discovery(thr=2e-7), purpose="keys")
    snap = tl.gate._store.snapshot()
    # rebuild the same ledger's policy without a reserve, re-signed by the same officer
    raw = tl.policy_path.read_text().replace("delta_reserve = 2e-07\n", "")
    tl.policy_path.write_text(raw)
    sign_policy_file(tl.policy_path, load_private_key(tl.officer_key))
    fresh = tmp_path / "fresh.db"
    init_ledger(fresh, tl.policy_path, officer_key=tl.officer_key, ledger_key=tl.ledger_pub)
    from accountant.ledger.sqlite import SQLiteLedgerStore

    store = SQLiteLedgerStore(fresh)
    md = store.metadata()
    store.close()
    from accountant.ledger.store import LedgerSnapshot

    forged = LedgerSnapshot(md, snap.entries, snap.head)
    report = verify_snapshot(forged)
    assert not report.ok
    assert any("delta_reserve" in p.message for p in report.problems)


# -- old ledgers ----------------------------------------------------------------------------------------

def test_a_ledger_written_before_delta_reserve_existed_verifies_exactly():
    # Written by the accountant of main@d1693f4 (before this change): no reserve in its policy.
    assert FIXTURE.exists()
    report = verify_path(FIXTURE)
    assert report.ok, report.summary()
    assert report.entries == 3 and report.delta_spent == 0.0 and report.delta_reserve == 0.0
    last = json.loads(FIXTURE.read_text().splitlines()[-2])
    assert report.epsilon_filter == last["epsilon_filter"] and report.epsilon_curve == last["epsilon_curve"]


def test_reserve_zero_gives_the_same_filter_as_before(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=2.0, delta=1e-7)
    f = tl.gate.filter
    assert f.delta_reserve == 0.0
    assert f.budget == rdp_budget_at_order(f.order, 2.0, 1e-7) == tl.gate.metadata.filter_budget
    assert not math.isnan(f.order)
