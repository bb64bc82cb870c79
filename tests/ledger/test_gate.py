"""The gate: policy checks, the budget rule, receipts, insecure mode."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest

from accountant.events import GaussianEvent, LaplaceEvent, NeighbouringRelation, ZCdpEvent
from accountant.gate import (
    InsecureModeWarning,
    BudgetExceeded,
    DatasetMismatch,
    Gate,
    InvalidReceipt,
    PolicyViolation,
    Receipt,
    RunCapExceeded,
    init_ledger,
)
from accountant.keys import load_public_key, write_keypair
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.policy import PolicyError
from accountant.testing import make_test_gate, policy_toml
from accountant.verify import verify_path

_ALPHAS = np.concatenate([np.linspace(1.001, 200, 400_000), np.linspace(200, 5000, 50_000)])


def cks_epsilon(rho: float, delta: float) -> float:
    """Independent ρ-zCDP → (ε, δ): the CKS/BBGHS formula minimised on a fine grid of orders."""
    a = _ALPHAS
    return float(np.min(rho * a + np.log1p(-1 / a) - (np.log(delta) + np.log(a)) / (a - 1)))


def _entries(tl):
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        return store.snapshot().entries
    finally:
        store.close()


def test_zcdp_workload_spends_exactly_the_policy(ledger):
    gate = ledger.gate
    rho_step = 0.0015
    while True:
        try:
            gate.charge(ZCdpEvent(rho_step), purpose="fill", generator="mst")
        except BudgetExceeded:
            break
    gate.charge(ZCdpEvent(gate.remaining_rho()), purpose="top up", generator="mst")
    spent = math.fsum(e.rho for e in _entries(ledger))
    assert cks_epsilon(spent, 1e-6) == pytest.approx(1.0, abs=1e-6)  # the whole budget, no more
    with pytest.raises(BudgetExceeded):
        gate.charge(ZCdpEvent(1e-9), purpose="one more", generator="mst")
    assert _entries(ledger)[-1].epsilon_curve == pytest.approx(1.0, abs=1e-6)


def test_full_curve_epsilon_matches_independent_conversion(ledger):
    r = ledger.gate.charge(GaussianEvent(12.0), purpose="one gaussian", generator="mst")
    assert r.epsilon_curve == pytest.approx(cks_epsilon(1 / (2 * 144), 1e-6), rel=1e-6)
    assert r.epsilon_filter >= r.epsilon_curve - 1e-12  # the fixed order can only be looser


def test_a_dpsgd_run_filling_the_budget_has_full_curve_epsilon_within_it(tmp_path):
    # The run is calibrated at the filter's α* (22.0 for ε = 1, δ = 1e-6), which the plain
    # grid lacks: its neighbours gave ε = 1.0000118.  The ledger's grid holds α*, so the
    # full-curve figure is never above the filter's for a run that fills the budget there.
    from accountant import PoissonSubsampledGaussianEvent, calibrate_dpsgd_noise
    from accountant.orders import DEFAULT_ORDERS

    tl = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6)
    order = tl.gate.filter.order
    assert order not in DEFAULT_ORDERS and order in tl.gate.metadata.curve_orders
    sigma = calibrate_dpsgd_noise(1.0, 1e-6, 0.01, 3000, order=order)
    r = tl.gate.charge(PoissonSubsampledGaussianEvent(0.01, sigma, 3000), purpose="DP-SGD", generator="external")
    assert r.epsilon_filter == pytest.approx(1.0, abs=1e-9)
    assert r.epsilon_curve <= r.epsilon_filter
    assert verify_path(tl.ledger_path, ledger_public_key=tl.ledger_pub).ok


def test_budget_exceeded_says_what_and_writes_nothing(ledger):
    ledger.gate.charge(GaussianEvent(10.0), purpose="first", generator="mst")
    before = _entries(ledger)
    with pytest.raises(BudgetExceeded) as info:
        ledger.gate.charge(GaussianEvent(1.0), purpose="too much", generator="mst")
    exc = info.value
    assert exc.requested > exc.remaining > 0
    assert f"{exc.requested:.6g}" in str(exc) and f"{exc.remaining:.6g}" in str(exc)
    assert "nothing was written" in str(exc)
    assert _entries(ledger) == before


@pytest.mark.parametrize("kwargs,match", [
    (dict(events=GaussianEvent(10.0, relation=NeighbouringRelation.REPLACE_ONE)), "replace_one"),
    (dict(generator="dpctgan"), "not allowed"),
    (dict(noise_source="seeded-test"), "seeded-test"),
    (dict(noise_source="urandom"), "noise_source"),
    (dict(purpose="  "), "purpose"),
    (dict(parameters={"bad": float("nan")}), "parameters.bad"),
])
def test_policy_violations_write_nothing(tmp_path, kwargs, match):
    tl = make_test_gate(tmp_path, generators=("mst",), allow_seeded_noise=False)
    args = dict(events=GaussianEvent(10.0), purpose="p", generator="mst")
    args.update(kwargs)
    with pytest.raises((PolicyViolation, ValueError), match=match):
        tl.gate.charge(args.pop("events"), **args)
    assert _entries(tl) == ()


def test_seeded_noise_is_recorded_when_allowed(ledger):
    ledger.gate.charge(GaussianEvent(10.0), purpose="test", generator="mst", noise_source="seeded-test")
    assert _entries(ledger)[0].noise_source == "seeded-test"


def test_per_run_cap(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=2.0, delta=1e-6, max_epsilon_per_run=0.5)
    gate = tl.gate
    rho = 0.004  # ~ε 0.24 at δ=1e-6 on its own
    gate.charge(ZCdpEvent(rho), purpose="a1", generator="mst", run_id="run-a")
    with pytest.raises(RunCapExceeded, match="run-a"):
        for _ in range(5):
            gate.charge(ZCdpEvent(rho), purpose="a", generator="mst", run_id="run-a")
    spent_in_a = math.fsum(e.rho for e in _entries(tl) if e.run_id == "run-a")
    assert cks_epsilon(spent_in_a, 1e-6) <= 0.5 + 1e-9
    gate.charge(ZCdpEvent(rho), purpose="b1", generator="mst", run_id="run-b")  # another run has its own cap
    assert verify_path(tl.ledger_path).ok


def test_several_events_make_one_entry(ledger):
    r = ledger.gate.charge([GaussianEvent(20.0), LaplaceEvent(100.0)], purpose="both", generator="mst")
    (entry,) = _entries(ledger)
    assert '"type":"composed"' in entry.event and r.sequence == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", entry.timestamp)


def test_receipts_verify_and_forgeries_do_not(ledger, tmp_path):
    r = ledger.gate.charge(GaussianEvent(10.0), purpose="p", generator="mst")
    r.verify(load_public_key(ledger.ledger_pub))
    ledger.gate.verify_receipt(r)
    assert Receipt.from_dict(r.to_dict()) == r
    forged = dataclasses.replace(r, entry_hash="0" * 64)
    with pytest.raises(InvalidReceipt):
        forged.verify(load_public_key(ledger.ledger_pub))
    with pytest.raises(InvalidReceipt):
        ledger.gate.verify_receipt(dataclasses.replace(r, sequence=2))
    other = make_test_gate(tmp_path / "other")
    r2 = other.gate.charge(GaussianEvent(10.0), purpose="p", generator="mst")
    with pytest.raises(InvalidReceipt):
        ledger.gate.verify_receipt(r2)


@pytest.mark.parametrize("field, value", [
    ("event", GaussianEvent(1000.0).to_json()),  # claims a far cheaper charge
    ("cost", 1e-9),
    ("epsilon_curve", 1e-9),
    ("purpose", "something else"),
    ("parameters", {"rounds": 1}),
])
def test_an_altered_receipt_fails_offline_verification_with_its_signature_intact(ledger, field, value):
    # The signature covers entry_hash only; the receipt carries the entry's every field, and
    # verify recomputes the hash from them, so no field can be edited under a valid signature.
    r = ledger.gate.charge(GaussianEvent(10.0), purpose="p", generator="mst", parameters={"rounds": 5})
    assert r.entry() == _entries(ledger)[0]
    altered = dataclasses.replace(r, **{field: value})
    with pytest.raises(InvalidReceipt, match="do not hash to its entry_hash"):
        altered.verify(load_public_key(ledger.ledger_pub))
    with pytest.raises(InvalidReceipt):
        ledger.gate.verify_receipt(altered)


def test_dataset_check(ledger):
    ledger.gate.check_dataset(ledger.gate.dataset_fingerprint)
    with pytest.raises(DatasetMismatch):
        ledger.gate.check_dataset("hmac-sha256:" + "0" * 64)


def test_gate_refuses_wrong_key_and_unsigned_policy(ledger, tmp_path):
    other_key, _ = write_keypair(tmp_path / "k", "ledger")
    with pytest.raises(PolicyError, match="not this ledger's key"):
        Gate.open(ledger.ledger_path, ledger_key=other_key)
    with pytest.raises(PolicyError, match="private key is required"):
        Gate.open(ledger.ledger_path)
    ledger.signature_path.unlink()
    with pytest.raises(PolicyError, match="not signed"):
        init_ledger(tmp_path / "new.db", ledger.policy_path, officer_key=ledger.officer_key,
                    ledger_key=ledger.ledger_pub)
    # an altered policy is refused too
    ledger.policy_path.write_text(ledger.policy_path.read_text().replace("epsilon = 1.0", "epsilon = 9.0"))
    from accountant.keys import load_private_key
    from accountant.policy import sign_policy_file

    sign_policy_file(ledger.policy_path, load_private_key(ledger.officer_key))
    ledger.policy_path.write_text(ledger.policy_path.read_text().replace("epsilon = 9.0", "epsilon = 90.0"))
    with pytest.raises(PolicyError, match="altered"):
        init_ledger(tmp_path / "new2.db", ledger.policy_path, officer_key=ledger.officer_key,
                    ledger_key=ledger.ledger_pub)


def test_insecure_development_mode_is_marked_and_reported(tmp_path):
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_toml(epsilon=1.0, delta=1e-6, relation="add_or_remove_one",
                                  fingerprint="hmac-sha256:" + "cd" * 32, max_records=1000))
    with pytest.warns(InsecureModeWarning):
        init_ledger(tmp_path / "dev.db", policy, officer_key=None, ledger_key=None, insecure=True)
    with pytest.raises(PolicyError, match="insecure"):
        Gate.open(tmp_path / "dev.db")
    with pytest.warns(InsecureModeWarning, match="INSECURE"):
        gate = Gate.open(tmp_path / "dev.db", insecure=True)
    r = gate.charge(GaussianEvent(10.0), purpose="dev", generator="mst")
    assert r.insecure and r.signature == ""
    with pytest.raises(InvalidReceipt, match="unsigned"):
        r.verify(None)
    report = verify_path(tmp_path / "dev.db")
    assert not report.ok and report.insecure_entries == [1]
    assert "INSECURE" in report.summary() and "UNSIGNED" in report.summary()
    relaxed = verify_path(tmp_path / "dev.db", allow_insecure=True)
    assert relaxed.ok and "INSECURE" in relaxed.summary()
