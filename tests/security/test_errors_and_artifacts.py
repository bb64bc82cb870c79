"""What leaves through errors and shareable artifacts (threat model #7, #11, #12 and beyond):
row numbers in validation errors, a charge made before an output that cannot be written,
sub-minute timings in model files, run reports and comparison results.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

from accountant.gate import Gate
from dpsynth.cli import app
from dpsynth.schema import EncodingError, Schema
from dpsynth.table import PrivateTable
from dpsynth.table.sensitivity import SensitivityViolation, check_counts_of_records
from tests.run.support import make_workspace, read_job, write_job_dict

from .support import SCHEMA, governed, ledger_bytes, read_model_blob, small_frame, table_on

MINUTE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")


def _cli(*args):
    return CliRunner().invoke(app, [*map(str, args)])


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    path = tmp_path_factory.mktemp("ws")
    paths = make_workspace(path, n_rows=300, generator="independent", parameters={"iters": 30}, epsilon=0.5)
    return paths


def _outputs(job: dict, base: Path) -> list[Path]:
    return [base / job["output"][k] for k in ("synthetic", "model", "report")]


# --------------------------------------------------------------------------- 7. row bisection

def test_row_bisection_through_validation_errors_is_refused(tmp_path, workspace):
    frame = small_frame()
    ledger = governed(tmp_path / "l", frame)
    # The old attack: a schema whose bound excludes one chosen value; the error named the row,
    # so 32 checks recovered a chosen row's exact value.  Now a failing check says "column
    # 'size': outside the bounds" and nothing else: the same text whichever row breaks it.
    messages = set()
    for row in (0, 7, 31, 59):
        bad = frame.copy()
        bad.loc[row, "size"] = 10.5 + row / 1000
        with pytest.raises(EncodingError) as err:
            PrivateTable(bad, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key)
        text = str(err.value)
        assert "size" in text and str(row) not in text and "10.5" not in text and "row" not in text
        messages.add(text)
    assert len(messages) == 1
    for column, value in (("colour", "purple"), ("flag", "maybe"), ("count", 2.5), ("count", "x")):
        bad = frame.copy().astype({column: object})
        bad.loc[13, column] = value
        with pytest.raises(EncodingError) as err:
            PrivateTable(bad, SCHEMA, ledger.gate, dataset_key=ledger.dataset_key)
        assert "13" not in str(err.value) and str(value) not in str(err.value).replace(f"'{column}'", "")

    # `dpsynth run --check` with caller-written schemas: each check answers one bit (pass or
    # fail), never a row, a value or a count; the failing answers are all the same text.
    job = read_job(workspace["job"])
    schema_path = workspace["job"].parent / job["data"]["schema"]
    data = pd.read_csv(workspace["job"].parent / job["data"]["path"])
    before = ledger_bytes(workspace["ledger"])
    answers = {}
    for upper in (30, 50, 70, int(data["age"].max()) - 1):
        text = schema_path.read_text()
        (tmp_path / str(upper)).mkdir()
        probe = tmp_path / str(upper) / "schema.toml"
        probe.write_text(text.replace("upper = 92.0", f"upper = {float(upper)}", 1))
        probe_job = write_job_dict(tmp_path / str(upper) / "job.toml", {
            **job, "data": {**job["data"], "schema": str(probe), "path": str(schema_path.parent / "data.csv"),
                            "dataset_key": str(schema_path.parent / job["data"]["dataset_key"])},
            "policy": {k: str(schema_path.parent / v) for k, v in job["policy"].items()},
            "ledger": {k: str(schema_path.parent / v) for k, v in job["ledger"].items()},
            "output": {**job["output"], **{k: str(tmp_path / f"out-{upper}" / Path(job["output"][k]).name)
                                           for k in ("synthetic", "model", "report")}}})
        res = _cli("run", probe_job, "--check", "--no-progress")
        assert res.exit_code == 1, res.output
        answers[upper] = res.output.replace(str(tmp_path / str(upper)), "FOLDER")
        assert "row" not in answers[upper].split("(the data holder lists")[0], answers[upper]
    assert len(set(answers.values())) == 1, answers
    assert ledger_bytes(workspace["ledger"]) == before
    # The rows are the holder's, from the holder's own tool, which reads the file directly.
    res = _cli("data", "check", schema_path.parent / "data.csv", "--schema", tmp_path / "30" / "schema.toml")
    assert res.exit_code == 1 and "HOLDER ONLY" in res.output


def test_errors_after_a_charge_carry_no_counts():
    with pytest.raises(SensitivityViolation) as err:
        check_counts_of_records([[3, 4]], 61, "marginals")
    assert "61" not in str(err.value) and "7" not in str(err.value)


# --------------------------------------------------------------------------- 11. outputs checked first

def test_charge_before_an_unwritable_output_is_refused(workspace, tmp_path, monkeypatch):
    base = workspace["job"].parent
    job = read_job(workspace["job"])
    before = ledger_bytes(workspace["ledger"])

    def variant(name, **output):
        data = {**job, "output": {**job["output"], **output, "overwrite": True}}
        return write_job_dict(base / f"{name}.toml", data)

    # pyarrow missing (the old attack: --check passed, each run charged, then crashed on save).
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    parquet = variant("parquet", synthetic="out-p/synthetic.parquet", model="out-p/model.pt",
                      report="out-p/report.html")
    for args in (["--check"], []):
        res = _cli("run", parquet, "--no-progress", *args)
        assert res.exit_code == 1 and "pyarrow" in res.output, res.output
    monkeypatch.undo()
    # Outputs over the job's own inputs: the officer's key, the ledger and its side files.
    for name, output in (("officer", {"report": "keys/officer.pub"}), ("wal", {"model": "ledger.db-wal"}),
                         ("ledger", {"model": "ledger.db"}), ("key", {"model": "keys/ledger.key"}),
                         ("folder", {"model": "keys"})):
        res = _cli("run", variant(name, **output), "--no-progress")
        assert res.exit_code == 1, (name, res.output)
        assert "output." in res.output, (name, res.output)
    assert ledger_bytes(workspace["ledger"]) == before
    assert not (base / "out-p").exists()
    assert (base / "keys" / "officer.pub").read_text().startswith("-----BEGIN PUBLIC KEY")


# --------------------------------------------------------------------------- 12. coarse time

TIMING_KEYS = re.compile(r"second|time|duration|elapsed|clock", re.I)


def _timing_fields(obj, path=""):
    """Every (path, value) in a JSON document whose key names a time or a duration."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if TIMING_KEYS.search(str(k)) and not isinstance(v, (bool, type(None), dict, list)):
                yield f"{path}.{k}", v  # a flag such as a column's `datetime: false` is not a time
            yield from _timing_fields(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _timing_fields(v, f"{path}[{i}]")


def test_sub_minute_timing_in_a_shareable_artifact_is_refused(workspace, tmp_path):
    from dpsynth.compare import compare
    from dpsynth.generators import DPCTGAN, MST
    from dpsynth.jobs import run_job

    # The run report and the model of a real run.
    result = run_job(workspace["job"], evaluate=False)
    html = Path(result.report_path).read_text()
    assert not re.search(r"\d+\.\d+\s*(s|sec|seconds)\b", html), "sub-minute timing in the run report"
    assert re.search(r"time \(whole run\)</td><td>(under a minute|about \d+ minutes?)</td>", html)
    assert re.search(r"Written \d{4}-\d\d-\d\d \d\d:\d\d UTC", html) and not re.search(r"\d\d:\d\d:\d\d", html)
    # The model files: no timing at all, and every receipt's time to the minute.
    frame = small_frame()
    ledger = governed(tmp_path / "l", frame, max_records=200, epsilon=20.0)
    table = table_on(ledger, seed=0)
    MST(epsilon=1.0, iters=20, device="cpu").fit(table).save(tmp_path / "mst.pt")
    DPCTGAN(epsilon=1.0, epochs=1, batch_size=40, generator_dims=(8,), discriminator_dims=(8,), embedding_dim=4,
            device="cpu", progress=False, seed=0).fit(table).save(tmp_path / "dpctgan.pt")
    for path in (Path(result.model_path), tmp_path / "mst.pt", tmp_path / "dpctgan.pt"):
        blob = read_model_blob(path)
        for where, value in _timing_fields({"meta": blob["meta"], "seal": blob["seal"]}):
            assert where.endswith(".timestamp") and MINUTE.match(value), (path.name, where, value)
    # The comparison's results: durations in whole minutes only.
    res = compare(frame, SCHEMA, gate=ledger.gate, dataset_key=ledger.dataset_key,
                  generators={"independent": {"iters": 20}}, epsilons=[0.5], out=tmp_path / "cmp", seed=0,
                  utility_models=[])
    times = res.results[res.results["metric"].str.contains("seconds")]
    assert len(times) and all(v % 60 == 0 for v in times["value"]), times
    csv = (tmp_path / "cmp" / "results.csv").read_text()
    for line in csv.splitlines():
        if "seconds" in line:
            assert float(line.split(",")[4]) % 60 == 0, line
