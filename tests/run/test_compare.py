"""`dpsynth compare` on a tiny table: every run charged to the governed table's ledger (the
officer's), tidy results, plots and one page; an overspending comparison is refused up front."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from accountant.gate import BudgetExceeded, DatasetMismatch
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.verify import verify_path
from dpsynth.cli import app
from dpsynth.compare import BASELINE, RESULT_COLUMNS, compare
from dpsynth.demo import demo_schema, demo_table
from dpsynth.schema import Schema

COLUMNS = ["age", "sex", "education", "income", "region"]
EPSILONS = [0.5, 2.0]
PNG = b"\x89PNG\r\n\x1a\n"


def tiny():
    schema = demo_schema()
    return demo_table(400, seed=2)[COLUMNS], Schema([schema.column(c) for c in COLUMNS])


def governed(directory, frame, epsilon=10.0):
    from accountant.testing import make_test_gate

    return make_test_gate(directory, epsilon=epsilon, delta=1e-6, frame=frame, max_records=10_000)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    frame, schema = tiny()
    ledger = governed(tmp_path_factory.mktemp("ledger"), frame)
    res = compare(frame, schema, gate=ledger.gate, dataset_key=ledger.dataset_key,
                  generators={"independent": {"iters": 30}, "mst": {"iters": 30}}, epsilons=EPSILONS, repeats=1,
                  target="income", out=tmp_path_factory.mktemp("cmp"), seed=1, utility_models=["logistic_regression"])
    res.keys = {"officer_pub": ledger.officer_pub, "ledger_pub": ledger.ledger_pub}
    return res


def test_every_run_is_in_the_tidy_results(result):
    res = result.results
    assert list(res.columns) == RESULT_COLUMNS
    assert "failed" not in set(res["metric"]), res[res["metric"] == "failed"]["note"].tolist()
    runs = res[res["generator"] != BASELINE]
    assert set(map(tuple, runs[["generator", "epsilon"]].drop_duplicates().to_numpy())) == {
        (g, e) for g in ("independent", "mst") for e in EPSILONS}
    for _, run in runs.groupby(["generator", "epsilon", "repeat"]):
        assert {"tvd_1way", "tvd_2way", "tvd_3way", "tstr_logistic_regression_roc_auc", "fit_seconds",
                "epsilon_spent"} <= set(run["metric"])
        assert run.set_index("metric")["value"]["tvd_2way"] <= 1
    baseline = res[res["generator"] == BASELINE]
    assert set(baseline["metric"]) == {"tstr_logistic_regression_accuracy", "tstr_logistic_regression_roc_auc"}
    again = pd.read_csv(result.csv)
    assert len(again) == len(res) and list(again.columns) == RESULT_COLUMNS


def test_each_run_spent_its_epsilon_on_the_comparisons_ledger(result):
    res = result.results
    spent = res[res["metric"] == "epsilon_spent"]
    for _, row in spent.iterrows():
        assert row["value"] == pytest.approx(row["epsilon"], rel=1e-6) and row["value"] <= row["epsilon"] + 1e-9
    store = SQLiteLedgerStore(result.ledger)
    entries = [e for e in store.snapshot().entries if e.kind == "charge"]
    store.close()
    assert len({e.run_id for e in entries}) == len(spent) == 4
    assert {e.generator for e in entries} == {"independent", "mst"}
    report = verify_path(result.ledger, officer_public_key=result.keys["officer_pub"],
                         ledger_public_key=result.keys["ledger_pub"])
    assert report.ok, report.summary()


def test_plots_and_page(result):
    assert set(result.plots) == {"error", "utility", "time"}
    for path in result.plots.values():
        assert path.read_bytes()[:8] == PNG
    page = result.page.read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "not for release" in page and "ledger" in page


def test_bad_requests_fail_before_anything_is_charged(tmp_path):
    frame, schema = tiny()
    ledger = governed(tmp_path / "l", frame, epsilon=1.0)
    common = dict(gate=ledger.gate, dataset_key=ledger.dataset_key)
    with pytest.raises(ValueError, match="unknown generator 'nope'"):
        compare(frame, schema, generators=["nope"], epsilons=[1], out=tmp_path / "a", **common)
    with pytest.raises(ValueError, match="generators.mst.colour"):
        compare(frame, schema, generators={"mst": {"colour": 1}}, epsilons=[1], out=tmp_path / "b", **common)
    with pytest.raises(ValueError, match="epsilons"):
        compare(frame, schema, generators=["mst"], epsilons=[0], out=tmp_path / "c", **common)
    # Each run fits alone, all of them together do not: refused before the first charge.
    with pytest.raises(BudgetExceeded, match="together"):
        compare(frame, schema, generators=["independent", "mst"], epsilons=[0.5, 0.5], out=tmp_path / "d",
                **common)
    # A table the policy does not govern, or no dataset key: refused.
    with pytest.raises(DatasetMismatch):
        compare(demo_table(400, seed=3)[COLUMNS], schema, generators=["mst"], epsilons=[0.1], out=tmp_path / "e",
                **common)
    with pytest.raises(ValueError, match="dataset_key"):
        compare(frame, schema, gate=ledger.gate, dataset_key=None, generators=["mst"], epsilons=[0.1],
                out=tmp_path / "f")
    assert ledger.gate.spent_costs() == []
    assert not any((tmp_path / d).exists() for d in "abcdef")


def test_cli_compare_on_the_demo_table(tmp_path):
    out = CliRunner().invoke(app, ["compare", "--demo", "--demo-rows", "300", "--generators", "independent",
                                   "--epsilons", "1", "--target", "income", "--models", "logistic_regression",
                                   "--parameters", '{"independent": {"iters": 30}}', "--out", str(tmp_path / "c"),
                                   "--seed", "3"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "c" / "index.html").exists() and (tmp_path / "c" / "results.csv").exists()
    bad = CliRunner().invoke(app, ["compare", "--demo", "--parameters", '{"aim": {}}', "--generators", "mst",
                                   "--out", str(tmp_path / "d")])
    assert bad.exit_code == 1 and "'aim'" in bad.output


def test_a_figure_that_cannot_be_computed_is_flagged_not_averaged_into_a_number(tmp_path):
    """Issue 17: compare showed broken figures (TVD 1.0 from 1 against True) with no note."""
    import math

    from dpsynth.compare.page import write_page
    from dpsynth.compare.plots import summary

    frame, _ = tiny()
    ledger = governed(tmp_path / "ledger", frame)
    why = "the synthetic table's values of 'flag' do not fit the schema: not compared"
    results = pd.DataFrame.from_records([
        ("mst", 1.0, 0, "tvd_1way", math.nan, why),
        ("mst", 1.0, 1, "tvd_1way", 0.02, ""),
        ("mst", 1.0, 0, "fit_seconds", 0.0, ""),
    ], columns=RESULT_COLUMNS)
    means = summary(results).set_index("metric")["mean"]
    assert math.isnan(means["tvd_1way"])  # not the other repeat's 0.02 passed off as the mean
    page = write_page(results, {}, tmp_path, ledger.ledger_path).read_text()
    assert "Figures not computed" in page and "do not fit the schema" in page
