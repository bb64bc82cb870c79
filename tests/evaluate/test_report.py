"""EvaluationReport: dict, tidy frame and self-contained HTML."""

from __future__ import annotations

import json
import math

import pandas as pd

from dpsynth.evaluate import (
    DESCRIPTIVE_LABEL,
    ColumnSpec,
    EvaluationReport,
    UtilityScore,
    column_distances,
    correlation_difference,
    privacy_diagnostics,
)


def _report() -> EvaluationReport:
    spec = ColumnSpec(categorical=["c", "y"], numeric=["v"], target="y", bounds={"v": (0, 10)})
    real = pd.DataFrame({"c": list("abab" * 5), "v": [float(i % 10) for i in range(20)], "y": [0, 1] * 10})
    synth = pd.DataFrame({"c": list("aabb" * 5), "v": [float(i % 7) for i in range(20)], "y": [1, 0] * 10})
    return EvaluationReport(
        mean_tvd={1: 0.01, 2: 0.05, 3: 0.1},
        workload_error=0.07,
        column_distances=column_distances(real, synth, spec),
        correlation=correlation_difference(real, synth, spec),
        utility=[
            UtilityScore("gradient_boosting", "synthetic", 0.8, 0.85, True, 20, 20),
            UtilityScore("logistic_regression", "synthetic", 0.5, math.nan, False, 20, 20, note="single class <x>"),
        ],
        privacy=privacy_diagnostics(real, synth, real, spec),
        metadata={"generator": "mst", "epsilon": 1.0},
    )


def test_to_dict_is_json_ready():
    d = _report().to_dict()
    text = json.dumps(d)  # raises on anything not JSON-ready
    assert d["fidelity"]["mean_tvd"] == {"1": 0.01, "2": 0.05, "3": 0.1}
    assert d["fidelity"]["workload_error"] == 0.07
    assert d["fidelity"]["column_distances"]["v"]["kind"] == "numeric"
    assert d["privacy_descriptive"]["label"] == DESCRIPTIVE_LABEL
    assert "gradient_boosting" in text


def test_to_frame_is_tidy():
    frame = _report().to_frame()
    assert list(frame.columns) == ["section", "metric", "key", "value"]
    assert set(frame["section"]) == {"fidelity", "column", "utility", "privacy_descriptive"}
    row = frame[(frame.metric == "mean_tvd") & (frame.key == "2-way")]
    assert row["value"].item() == 0.05
    assert frame[(frame.metric == "roc_auc") & (frame.key == "gradient_boosting/synthetic")]["value"].item() == 0.85


def test_html_is_self_contained_escaped_and_labelled():
    page = _report().to_html()
    assert page.startswith("<style>") and page.endswith("</div>")
    for external in ("http://", "https://", "<script", "src=", "<link", "@import"):
        assert external not in page
    assert "single class &lt;x&gt;" in page  # notes are escaped
    assert DESCRIPTIVE_LABEL in page
    assert "mean 3-way marginal TVD" in page


def test_empty_report_renders():
    report = EvaluationReport()
    assert report.to_frame().empty
    assert "dpsynth-eval" in report.to_html()
    assert report.to_dict()["privacy_descriptive"] is None
