"""The PATE-GAN benchmark's harness: a child's RESULT line, peer CSVs there and back, a missing peer
skipped, results merged by run, ε cells that never pass a peer's figure off as ours.

Fast: no generator is fitted and no peer is run.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pategan_adult.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pategan_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_the_last_result_line_is_read_among_peer_chatter(bench):
    log = "\n".join(["Spent 0.1 epsilon on preprocessor", "RESULT {\"a\": 1}", "  RESULT {\"b\": 2}",
                     "100%|####| 10/10", "RESULT {\"fit_seconds\": 3.5}", "warning: done"])
    assert bench.parse_result(log) == {"fit_seconds": 3.5}  # the last line that starts with RESULT
    assert bench.parse_result("no result here\n") is None
    assert bench.parse_result("RESULT {not json") is None


def _hmeq_like(bench) -> pd.DataFrame:
    table = bench.TABLES["hmeq"]
    frame = pd.DataFrame({c: [np.nan] * 3 for c in table.columns})
    frame["BAD"] = ["1", "0", "1"]
    frame["REASON"] = ["HomeImp", None, "DebtCon"]
    frame["JOB"] = [None, "Mgr", "Self"]
    frame["LOAN"] = [1100.0, 25_000.0, 89_900.0]
    frame["DEBTINC"] = [np.nan, 33.5, 203.3]
    frame["DEROG"] = [0.0, np.nan, 10.0]
    return frame


def test_peer_csv_round_trip_keeps_missing_values_and_string_categories(bench, tmp_path):
    table = bench.TABLES["hmeq"]
    real = _hmeq_like(bench)
    peer = table.to_peer(real)
    assert peer.isna().sum().sum() == 0  # the runners refuse a missing number
    assert list(peer["REASON"]) == ["HomeImp", "?", "DebtCon"]
    assert list(peer["DEBTINC__missing"]) == ["1", "0", "0"]
    assert peer["DEBTINC"].iloc[0] == table.bounds["DEBTINC"][0]  # the declared lower bound, not a statistic
    assert set(table.peer_categorical()) >= {"BAD", "REASON", "JOB", "DEBTINC__missing"}
    path = tmp_path / "synth.csv"
    peer.to_csv(path, index=False)
    back = table.read_synthetic(path, peer=True)
    assert list(back.columns) == list(table.columns)
    assert list(back["BAD"]) == ["1", "0", "1"]  # strings, as in the test table (not 1 / 0)
    assert back["REASON"].iloc[1] is None and back["JOB"].iloc[0] is None
    assert math.isnan(back["DEBTINC"].iloc[0]) and back["DEBTINC"].iloc[1] == 33.5
    assert math.isnan(back["DEROG"].iloc[1]) and back["DEROG"].iloc[2] == 10.0


def test_our_synthetic_csv_reads_back_typed_like_the_test_table(bench, tmp_path):
    table = bench.TABLES["hmeq"]
    path = tmp_path / "ours.csv"
    _hmeq_like(bench).to_csv(path, index=False)
    back = table.read_synthetic(path)
    assert list(back["BAD"]) == ["1", "0", "1"]
    assert back["REASON"].iloc[1] is None
    assert back["LOAN"].dtype.kind == "f" and math.isnan(back["DEBTINC"].iloc[0])


def test_a_missing_peer_is_skipped_not_failed(bench, tmp_path, monkeypatch):
    args = bench.parse_args(["--only", "snsynth", "synthcity"])
    args.snsynth_python = str(tmp_path / "no-such-python")
    monkeypatch.setenv("SYNTHCITY_PYTHON", str(tmp_path / "nor-this-one"))
    args.samples = 10
    table = bench.TABLES["hmeq"]
    for impl, var in (("snsynth", "SNSYNTH_PYTHON"), ("synthcity", "SYNTHCITY_PYTHON")):
        cmd, why = bench.build_command(impl, table, 1.0, 0, args, tmp_path / "t.csv", tmp_path / "o.csv")
        assert cmd is None and var in why


def test_peers_get_our_delta_and_smartnoise_our_declared_bounds(bench, tmp_path):
    python = sys.executable  # any interpreter that exists: the command is only built
    args = bench.parse_args(["--snsynth-python", python, "--synthcity-python", python])
    args.samples = 4172
    table = bench.TABLES["hmeq"]
    sn, _ = bench.build_command("snsynth", table, 3.0, 0, args, tmp_path / "t.csv", tmp_path / "o.csv")
    sc, _ = bench.build_command("synthcity", table, 3.0, 0, args, tmp_path / "t.csv", tmp_path / "o.csv")
    for cmd in (sn, sc):
        assert float(cmd[cmd.index("--delta") + 1]) == bench.DELTA
        assert cmd[cmd.index("--samples") + 1] == "4172"
    assert json.loads(sn[sn.index("--bounds") + 1]) == {c: list(b) for c, b in table.bounds.items()}
    assert "--bounds" not in sc  # synthcity has no way to take them: it reads its encoders off the data


def test_our_pategan_variant_is_keyed_apart_from_the_default(bench, tmp_path):
    args = bench.parse_args(["--pategan-teachers", "300"])
    cmd, _ = bench.build_command("pategan", bench.TABLES["hmeq"], 1.0, 0, args, tmp_path / "t", tmp_path / "o")
    assert cmd[cmd.index("--teachers") + 1] == "300"
    variant = bench.variant_of("pategan", 300)
    assert bench.run_key("hmeq", "pategan", 1.0, 0, variant) != bench.run_key("hmeq", "pategan", 1.0, 0)
    assert bench.variant_of("dpctgan", 300) == ""


def _run(impl: str, eps: float, status: str = "ok", **kw) -> dict:
    r = {"table": "adult", "impl": impl, "variant": "", "system": impl, "epsilon": eps, "seed": 0, "status": status,
         "wall_s": 12.0, "cpu_s": 11.0, "peak_rss_mb": 500.0}
    r.update(kw)
    return r


def test_merge_replaces_a_run_by_key_and_keeps_the_rest(bench, tmp_path):
    a = {"runs": {"adult/pategan/eps=1/seed=0": _run("pategan", 1.0, status="failed"),
                  "adult/mst/eps=1/seed=0": _run("mst", 1.0)},
         "references": {"adult": {"logistic": {"accuracy": 0.85}}}}
    b = {"runs": {"adult/pategan/eps=1/seed=0": _run("pategan", 1.0)},
         "references": {"hmeq": {"logistic": {"accuracy": 0.84}}}}
    out = tmp_path / "merged.json"
    for part in (a, b):
        bench.update_results(out, lambda results, part=part: bench.merge_results(results, part))
    merged = json.loads(out.read_text())
    assert merged["runs"]["adult/pategan/eps=1/seed=0"]["status"] == "ok"  # the later file's run
    assert set(merged["runs"]) == {"adult/pategan/eps=1/seed=0", "adult/mst/eps=1/seed=0"}
    assert set(merged["references"]) == {"adult", "hmeq"}
    assert out.with_suffix(".md").exists()


def test_peer_epsilon_is_claimed_and_own_accounting_never_a_bare_number(bench):
    sn_info = {"claimed_epsilon": 1.0, "eps_hat_final": 0.91, "preprocessor_eps": 0.1, "delta": 1e-6,
               "hyperparameters": {"num_teachers": 32, "laplace_scale": 1000.0, "student_queries": 8640,
                                   "iterations": 27}}
    s = bench.summarise("snsynth", sn_info)
    assert s["epsilon_own_accounting"] == pytest.approx(1.01)  # training + the preprocessor's share
    assert s["schedule"]["unanimous_error"] == pytest.approx(0.5 * math.exp(-32 / 2000))
    sc_info = {"claimed_epsilon": 1.0, "eps_hat_final": 4.25, "delta_effective": 1.7e-7,
               "hyperparameters": {"n_teachers": 10, "laplace_scale": 1000.0, "teacher_label_queries": 260_420,
                                   "charged_queries": 127_694, "iterations_run": 1}}
    s = bench.summarise("synthcity", sc_info)
    assert s["delta_used"] == 1.7e-7  # what it used, not what it was given
    cell = bench.epsilon_cell(_run("synthcity", 1.0, **s))
    assert cell.startswith("claimed 1") and "4.250" in cell and cell.endswith("*")
    ours = _run("pategan", 1.0, epsilon_spent=0.9999, epsilon_spent_filter=1.0)
    assert bench.epsilon_cell(ours).endswith("(ledger; filter 1.000)")


def test_rendering_shows_refusals_and_dnfs_for_what_they_are(bench):
    results = bench.empty_results()
    results["runs"] = {
        "a": _run("pategan", 1.0, status="refused", reason="epsilon = 1 buys fewer than 32 label queries",
                  table="hmeq"),
        "b": _run("snsynth", 10.0, status="DNF", wall_s=2400.0, table="hmeq",
                  log_tail=["iteration 2000"]),
        "c": _run("synthcity", 1.0, status="skipped", reason="no synthcity Python", table="hmeq"),
    }
    results["references"] = {"hmeq": {"logistic": {"accuracy": 0.84, "roc_auc": 0.82},
                                      "gboost": {"accuracy": 0.93, "roc_auc": 0.97}, "majority_accuracy": 0.795}}
    md = bench.render_markdown(results)
    refused = next(line for line in md.splitlines() if line.startswith("| pategan | 1 |"))
    assert "0 (refused before any charge)" in refused and "refused (plan)" in refused
    assert "fewer than 32 label queries" in md
    assert "DNF (> 2400 s)" in md
    assert "Skipped: hmeq synthcity" in md
    assert "| *train on real (reference)* |" in md and "| *majority class (reference)* |" in md


def test_the_hmeq_schema_is_declared_and_holds_the_whole_table(bench):
    table = bench.TABLES["hmeq"]
    if not bench.TABLES["hmeq"].load.__globals__["HMEQ_PATH"].exists():
        pytest.skip("needs ../shared/data/hmeq")
    train, test = table.load()
    assert (len(train), len(test)) == (4172, 1788)
    again, _ = table.load()
    pd.testing.assert_frame_equal(train, again)  # a fixed split
    schema = table.schema()
    schema.validate(train)  # every value inside the declared bounds and categories
    schema.validate(test)
    table.marginal_schema().validate(train)
