"""Issue 17: the budget in words people read — one honest figure first (the share used and
what remains), and what ε one more run can still have; the same in `ledger status` and in
an over-budget error."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from accountant.conversions import zcdp_epsilon, zcdp_rho
from accountant.events import ZCdpEvent
from accountant.filter import RenyiFilter
from accountant.gate import BudgetExceeded
from accountant.testing import make_test_gate
from accountant.words import budget_words

DELTA = 1e-6


def test_one_run_of_a_third_of_the_epsilon_uses_its_share_of_rho_and_leaves_the_rest():
    f = RenyiFilter(3.0, DELTA)
    rho1, rho3 = zcdp_rho(1.0, DELTA), zcdp_rho(3.0, DELTA)
    words = budget_words(f, [f.cost(ZCdpEvent(rho1))])
    # zCDP composes by adding ρ: a run of ε 1 uses ρ(1)/ρ(3) of a budget of ε 3 (about 15 %,
    # not the third the two ε suggest), and one more run can have the ε of what ρ is left.
    assert words["used_fraction"] == pytest.approx(rho1 / rho3, rel=1e-6)
    assert 0.1 < words["used_fraction"] < 0.2
    assert words["next_marginal_epsilon"] == pytest.approx(zcdp_epsilon(rho3 - rho1, DELTA), rel=1e-6)
    assert 2.0 < words["next_marginal_epsilon"] < 3.0
    assert words.headline.startswith(f"{100 * rho1 / rho3:.1f} % of the budget used (ε 3 at δ 1e-06)")
    assert f"can still have ε {zcdp_epsilon(rho3 - rho1, DELTA):.3g} at this δ" in words.next_run


def test_a_fresh_budget_offers_all_of_it_or_the_per_run_cap():
    f = RenyiFilter(3.0, DELTA)
    assert budget_words(f, [])["next_marginal_epsilon"] == pytest.approx(3.0, rel=1e-6)
    assert budget_words(f, []).headline.startswith("0.0 % of the budget used")
    capped = budget_words(f, [], max_epsilon_per_run=1.5)
    assert capped["next_marginal_epsilon"] == 1.5 and "per-run cap" in capped.next_run
    spent = budget_words(f, [f.budget])
    assert spent["next_marginal_epsilon"] == 0.0 and "nothing remains" in spent.next_run
    assert "< 0.1 %" in budget_words(f, [f.budget * 1e-4]).headline  # small but not nothing


def test_ledger_status_and_an_over_budget_error_lead_with_the_words(tmp_path):
    from dpsynth.cli import app

    tl = make_test_gate(tmp_path, epsilon=3.0, delta=DELTA)
    tl.gate.charge(ZCdpEvent(zcdp_rho(1.0, DELTA)), purpose="one run")
    out = CliRunner().invoke(app, ["ledger", "status", str(tl.ledger_path)])
    assert out.exit_code == 0, out.output
    first = out.output.splitlines()[1]
    assert first.startswith("budget: ") and "% of the budget used" in first and "can still have ε 2." in first
    info = json.loads(CliRunner().invoke(app, ["ledger", "status", str(tl.ledger_path), "--json"]).output)
    assert 0.1 < info["used_fraction"] < 0.2 and 2.0 < info["next_marginal_run_epsilon"] < 3.0
    with pytest.raises(BudgetExceeded, match=r"% remains; one more .* run can still have ε 2\.\d+ at this δ"):
        tl.gate.charge(ZCdpEvent(zcdp_rho(2.9, DELTA)), purpose="too much")


def test_the_html_export_leads_with_the_words(tmp_path):
    from accountant.ledger.sqlite import SQLiteLedgerStore
    from accountant.report import render_html

    tl = make_test_gate(tmp_path, epsilon=3.0, delta=DELTA)
    tl.gate.charge(ZCdpEvent(zcdp_rho(1.0, DELTA)), purpose="one run")
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        page = render_html(store.snapshot())
    finally:
        store.close()
    assert page.index("% of the budget used") < page.index("<h2>Policy</h2>")
    assert "can still have ε 2." in page
