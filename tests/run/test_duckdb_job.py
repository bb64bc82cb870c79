"""`dpsynth run` on a glob of Parquet files (the DuckDB engine), and what it refuses first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dpsynth.demo import setup_workspace, write_job
from dpsynth.jobs import JobError
from dpsynth.jobs.run import run_job

from .support import ledger_entries, read_job, write_job_dict

pytest.importorskip("duckdb")


@pytest.fixture()
def parts_workspace(tmp_path):
    """The demo workspace with its table split into Parquet parts, and a policy governing them."""
    from accountant.gate import init_ledger
    from accountant.keys import load_private_key
    from accountant.policy import render_policy, sign_policy_file
    from dpsynth.cli import app

    ws = tmp_path / "ws"
    paths = setup_workspace(ws, n_rows=400, allow_seeded_noise=True)
    frame = pd.read_csv(paths["data"])
    (ws / "parts").mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_parquet(ws / "parts" / f"part-{i}.parquet", index=False)
    out = CliRunner().invoke(app, ["policy", "fingerprint", str(ws / "parts" / "*.parquet"), "--dataset-key",
                                   str(ws / "keys" / "dataset.key"), "--engine", "duckdb"])
    assert out.exit_code == 0, out.output
    fingerprint = out.output.strip()
    assert fingerprint.startswith("hmac-sha256:")
    paths["policy"].write_text(render_policy(
        epsilon=10.0, delta=1e-6, relation="add_or_remove_one", fingerprint=fingerprint, max_records=10_000,
        generators=["mst", "dpctgan"], allow_seeded_noise=True, officer="Officer", dataset_name="parts"))
    sign_policy_file(paths["policy"], load_private_key(ws / "keys" / "officer.key"))
    paths["ledger"].unlink()
    init_ledger(paths["ledger"], paths["policy"], officer_key=ws / "keys" / "officer.key",
                ledger_key=paths["ledger_pub"])
    job = write_job(ws / "job.toml", generator="mst", parameters={"iters": 30, "device": "cpu"}, epsilon=1.0,
                    n_samples=250, holdout=0.0, seed=0, target=None)
    spec = read_job(job)
    spec["data"]["path"] = "parts/*.parquet"
    spec["output"]["synthetic"] = "out/synthetic.parquet"
    write_job_dict(job, spec)
    return paths | {"job": job, "ws": ws}


def test_run_fits_mst_on_a_glob_of_parquet_files(parts_workspace):
    result = run_job(parts_workspace["job"])
    synthetic = pd.read_parquet(result.synthetic_path)
    assert len(synthetic) == 250 and result.evaluation is None
    assert ledger_entries(parts_workspace["ledger"]) > 1
    assert result.epsilon_run <= 1.0 + 1e-9


@pytest.mark.parametrize("change,field", [
    ({"generator": {"name": "dpctgan", "epsilon": 1.0, "parameters": {"epochs": 1}}}, "generator.name"),
    ({"evaluate": {"holdout": 0.2}}, "evaluate.holdout"),
    ({"data": {"engine": "memory"}}, "data.engine"),
    ({"data": {"path": "nothing-*.parquet"}}, "data.path"),
])
def test_what_needs_memory_or_a_file_is_refused_before_any_charge(parts_workspace, change, field):
    spec = read_job(parts_workspace["job"])
    for section, values in change.items():
        spec[section] = {**spec[section], **values}
    write_job_dict(parts_workspace["job"], spec)
    before = ledger_entries(parts_workspace["ledger"])
    with pytest.raises(JobError) as exc:
        run_job(parts_workspace["job"])
    assert exc.value.field == field
    if field == "generator.name":
        assert "needs the table in memory" in str(exc.value)
    assert ledger_entries(parts_workspace["ledger"]) == before


def test_an_edited_part_is_not_the_governed_dataset(parts_workspace):
    part = parts_workspace["ws"] / "parts" / "part-1.parquet"
    frame = pd.read_parquet(part)
    frame.iloc[1:].to_parquet(part, index=False)  # one record fewer
    before = ledger_entries(parts_workspace["ledger"])
    with pytest.raises(JobError) as exc:
        run_job(parts_workspace["job"])
    assert exc.value.field == "data.dataset_key"
    assert ledger_entries(parts_workspace["ledger"]) == before
