"""Exports: JSONL verifies offline, CSV reads back exactly, HTML is self-contained."""

from __future__ import annotations

import csv
import io
import json

from accountant.events import GaussianEvent, PoissonSubsampledGaussianEvent
from accountant.export import CSV_COLUMNS, to_csv, to_html, to_jsonl
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.verify import verify_path, verify_snapshot


def _snapshot(tl):
    tl.gate.charge(GaussianEvent(30.0), purpose="marginals <b>&", generator="mst", actor="alice",
                   parameters={"cliques": [["a", "b"]]})
    tl.gate.charge(PoissonSubsampledGaussianEvent(0.01, 2.0, 200), purpose="dp-sgd", generator="dpctgan",
                   actor="bob", run_id="r1")
    store = SQLiteLedgerStore(tl.ledger_path)
    snap = store.snapshot()
    store.close()
    return snap


def test_jsonl_export_verifies_offline(ledger, tmp_path):
    snap = _snapshot(ledger)
    path = tmp_path / "ledger.jsonl"
    path.write_text(to_jsonl(snap))
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["record"] for x in lines] == ["metadata", "entry", "entry", "head"]
    report = verify_path(path, officer_public_key=ledger.officer_pub, ledger_public_key=ledger.ledger_pub)
    assert report.ok, report.summary()
    assert report.epsilon_filter == snap.entries[-1].epsilon_filter


def test_csv_is_flat_and_exact(ledger):
    snap = _snapshot(ledger)
    rows = list(csv.DictReader(io.StringIO(to_csv(snap))))
    assert list(rows[0]) == CSV_COLUMNS and len(rows) == 2
    for row, e in zip(rows, snap.entries):
        assert float(row["cost"]) == e.cost and float(row["epsilon_curve"]) == e.epsilon_curve
        assert row["entry_hash"] == e.entry_hash and row["actor"] == e.actor


def test_html_report_is_self_contained(ledger):
    snap = _snapshot(ledger)
    page = to_html(snap, verify_snapshot(snap))
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<polyline" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<script" not in page and "<link" not in page
    assert "marginals &lt;b&gt;&amp;" in page and "<b>&" not in page.replace("<b>Verified</b>", "")
    for word in ("mst", "dpctgan", "alice", "bob", "Verified", snap.entries[1].entry_hash):
        assert word in page
