"""The demo: its table is what the docstring says, and `run_demo` works end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.verify import verify_path
from dpsynth.demo import demo_schema, demo_table, run_demo
from dpsynth.evaluate import DESCRIPTIVE_LABEL
from dpsynth.evaluate.correlations import cramers_v
from dpsynth.generators import GENERATORS
from dpsynth.jobs.report import PRIVATE_FIGURES_NOTICE


def test_demo_table_is_deterministic_in_its_seed():
    a, b, c = demo_table(500, seed=3), demo_table(500, seed=3), demo_table(500, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_demo_table_fits_its_schema_and_has_the_documented_structure():
    frame = demo_table(5000, seed=0)
    schema = demo_schema()
    assert list(frame.columns) == list(schema.names)
    schema.validate(frame)  # raises on any value outside the declared categories/bounds
    # Missing values where the docstring says (2 % occupation, 3 % hours), nowhere else.
    assert 0.01 < frame["occupation"].isna().mean() < 0.03
    assert 0.02 < frame["hours"].isna().mean() < 0.04
    assert frame.drop(columns=["occupation", "hours"]).notna().all().all()
    # The network's edges are visible: education -> income strongly, region -> sex not at all.
    codes = pd.DataFrame(schema.encode(frame), columns=schema.names)
    assert cramers_v(codes["education"].to_numpy(), codes["income"].to_numpy()) > 0.2
    assert cramers_v(codes["region"].to_numpy(), codes["sex"].to_numpy()) < 0.06
    assert frame["age"].between(17, 90).all() and frame["age"].dtype.kind == "i"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    lines: list[str] = []
    result = run_demo(tmp_path_factory.mktemp("demo"), n_rows=600, parameters={"iters": 100}, seed=0,
                      utility_models=["logistic_regression"], echo=lines.append)
    return result, lines


def test_demo_writes_every_output(demo):
    result, lines = demo
    run = result.run
    synth = pd.read_csv(run.synthetic_path)
    assert list(synth.columns) == list(demo_schema().names) and len(synth) == 600
    demo_schema().validate(synth)
    page = run.report_path.read_text()
    assert PRIVATE_FIGURES_NOTICE in page and DESCRIPTIVE_LABEL in page
    for r in run.receipts:
        assert r.entry_hash[:16] in page
    text = "\n".join(lines)
    for path in (run.synthetic_path, run.model_path, run.report_path):
        assert str(path) in text
    assert "entries; budget epsilon 3" in text  # the ledger status is shown


def test_demo_ledger_verifies_and_holds_exactly_the_runs_receipts(demo):
    result, _ = demo
    keys = result.workspace / "keys"
    report = verify_path(result.ledger, officer_public_key=keys / "officer.pub", ledger_public_key=keys / "ledger.pub")
    assert report.ok, report.summary()
    store = SQLiteLedgerStore(result.ledger)
    entries = store.snapshot().entries
    store.close()
    assert [e.entry_hash for e in entries] == [r.entry_hash for r in result.run.receipts]
    # The seed makes this a test run, and the ledger says so.
    assert {e.noise_source for e in entries} == {"seeded-test"}
    # Each charge released once, then the model sealed over all of them.
    charges = [e.sequence for e in entries if e.kind == "charge"]
    assert [e.kind for e in entries] == ["charge", "release"] * len(charges) + ["seal"]
    assert entries[-1].refs == charges


def test_demo_spend_is_the_run_epsilon(demo):
    run = demo[0].run
    # MST spends the whole zCDP budget of its run: the full-curve epsilon of its events
    # comes back to the requested epsilon (from below: conversions round down).
    assert run.epsilon_run == pytest.approx(1.0, rel=1e-6)
    assert run.epsilon_run <= 1.0 + 1e-9
    assert run.epsilon_ledger >= run.epsilon_run  # the filter guarantee is never tighter


def test_demo_model_loads_and_samples_with_its_receipts(demo):
    run = demo[0].run
    model = GENERATORS["mst"].load(run.model_path, trust=demo[0].workspace / "trust.toml")
    rows = model.sample(50, seed=1)
    assert list(rows.columns) == list(demo_schema().names) and len(rows) == 50
    assert [r.entry_hash for r in model.receipts] == [r.entry_hash for r in run.receipts]


def test_demo_evaluation_is_sane(demo):
    ev = demo[0].run.evaluation
    assert set(ev.mean_tvd) == {1, 2, 3}
    assert all(0 <= v <= 1 for v in ev.mean_tvd.values())
    # One-way marginals are measured directly: far closer than an unrelated uniform table.
    assert ev.mean_tvd[1] < 0.25
    assert {s.trained_on for s in ev.utility} == {"synthetic", "real"}
    assert ev.privacy is not None and 0 <= ev.privacy.membership_inference.auc <= 1
    assert np.isfinite(ev.correlation.mean_abs_difference)


def test_demo_runs_dpctgan_end_to_end_on_every_column_kind(tmp_path):
    # The demo schema has every kind the schema offers (datetime, nullable numeric, ordinal,
    # boolean): the deep generator must take the same job file as the marginal ones.
    tiny = {"epochs": 1, "batch_size": 100, "generator_dims": [16], "discriminator_dims": [16],
            "embedding_dim": 8}
    result = run_demo(tmp_path, generator="dpctgan", parameters=tiny, n_rows=400, seed=0,
                      utility_models=["logistic_regression"], echo=lambda _line: None)
    synth = pd.read_csv(result.run.synthetic_path)
    assert list(synth.columns) == list(demo_schema().names) and len(synth) == 400
    demo_schema().validate(synth)
    assert pd.to_datetime(synth["survey_date"]).between("2015-01-01", "2025-01-01").all()
    assert 0 < result.run.epsilon_run <= 1.0
