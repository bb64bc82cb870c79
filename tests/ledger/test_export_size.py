"""Issue 17: the HTML ledger export stays small — a run's parameters (AIM's lists) were
repeated in every entry (442 KB for 46 entries)."""

from __future__ import annotations

from accountant.events import ZCdpEvent
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.report import render_html
from accountant.testing import make_test_gate


def test_a_runs_parameters_are_written_once(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=3.0, delta=1e-6)
    params = {"workload": [[f"column_{i}", f"column_{j}"] for i in range(30) for j in range(i)]}  # ~15 KB
    for k in range(12):
        tl.gate.charge(ZCdpEvent(1e-4), purpose=f"round {k}", generator="aim", parameters=params, run_id="aim-1")
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        page = render_html(store.snapshot())
    finally:
        store.close()
    assert page.count("column_29") == 1 * 29  # one copy of the list (column_29 pairs with 29 others)
    assert page.count("as in entry 1") == 11
    assert len(page) < 60_000  # was about 12 copies of the list
