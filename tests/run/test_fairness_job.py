"""A job with `[evaluate] sensitive` and `output.proportions`: exact shares in the written table,
the fairness section and the rebalancing note in the report, and the charges of a plain run."""

from __future__ import annotations

import copy

import pandas as pd

from dpsynth.jobs import parse_job, run_job

from .support import ledger_entries, make_workspace, read_job


def test_rebalanced_job_writes_exact_shares_and_reports_fairness(tmp_path):
    plain_dir, fair_dir = tmp_path / "plain", tmp_path / "fair"
    plain_dir.mkdir(), fair_dir.mkdir()
    plain = make_workspace(plain_dir, generator="mst")
    fair = make_workspace(fair_dir, generator="mst")
    job = copy.deepcopy(read_job(fair["job"]))
    job["evaluate"].update({"target": "sex", "sensitive": ["region"]})
    job["output"]["proportions"] = {"region": {"West": 0.5}}
    result = run_job(parse_job(job, base=fair_dir), progress=None)
    run_job(parse_job(read_job(plain["job"]), base=plain_dir), progress=None)
    synthetic = pd.read_csv(result.spec.synthetic)
    assert (synthetic["region"] == "West").sum() == result.spec.n_samples // 2
    # Rebalancing is sampling: the ledger holds the entries of the same run without it.
    assert ledger_entries(fair["ledger"]) == ledger_entries(plain["ledger"])
    report = result.spec.report.read_text()
    assert "demographic-parity difference" in report and "equalized-odds difference" in report
    assert "not new evidence" in report
    fairness = result.evaluation.fairness
    shares = {g.group: g.share_synthetic for g in fairness.groups if g.column == "region"}
    assert abs(shares["West"] - 0.5) < 1e-9
    assert {d.trained_on for d in fairness.disparities} == {"synthetic", "real"}
