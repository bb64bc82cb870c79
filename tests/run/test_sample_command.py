"""Issue 17: `dpsynth sample MODEL -n N [--where ...] [--out FILE]` from the command line."""

from __future__ import annotations

import io

import pandas as pd
from typer.testing import CliRunner

from dpsynth.cli import app
from tests.schema.test_representation import fit_sample, small_frame, small_schema


def test_sample_writes_rows_the_table_way_conditions_and_refuses_untrusted_models(tmp_path):
    model, _ = fit_sample(small_frame(), small_schema(), generator="independent", tmp_path=tmp_path / "l")
    path = tmp_path / "model.pt"
    model.save(path)
    pub = next((tmp_path / "l").rglob("ledger.pub"))
    runner = CliRunner()
    out = runner.invoke(app, ["sample", str(path), "-n", "40", "--where", "count=2", "--where", "flag=1",
                              "--trust", str(pub), "--seed", "3", "--out", str(tmp_path / "s.csv")])
    assert out.exit_code == 0, out.output
    rows = pd.read_csv(tmp_path / "s.csv")
    assert len(rows) == 40 and (rows["count"] == 2).all() and (rows["flag"] == 1).all()
    assert rows["day"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()  # plain dates, as the table wrote them
    to_stdout = runner.invoke(app, ["sample", str(path), "-n", "3", "--trust", str(pub)])
    assert to_stdout.exit_code == 0 and len(pd.read_csv(io.StringIO(to_stdout.stdout))) == 3
    binned = runner.invoke(app, ["sample", str(path), "-n", "3", "--where", "score=5", "--trust", str(pub)])
    assert binned.exit_code == 1 and "lies in the bin [4, 6)" in binned.output
    made = runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "k"), "--name", "stranger"])
    assert made.exit_code == 0, made.output
    refused = runner.invoke(app, ["sample", str(path), "-n", "3", "--trust", str(tmp_path / "k" / "stranger.pub")])
    assert refused.exit_code == 1 and not refused.stdout.strip()
