"""`dpsynth data check` on Parquet parts (a glob) and large Parquet files, read in batches:
the holder's row numbers are each part's own, across batches."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

import dpsynth.cli.data as data_cli
from dpsynth.cli import app
from dpsynth.schema import Column, Schema


def _parts(tmp_path, bad: dict[int, list[int]]):
    schema = Schema([Column("colour", "categorical", categories=["red", "blue"]),
                     Column("size", "numeric", lower=0, upper=10, bins=2)])
    (tmp_path / "parts").mkdir()
    for i in range(3):
        frame = pd.DataFrame({"colour": ["red", "blue"] * 6, "size": [1.0] * 12})
        for r in bad.get(i, []):
            frame.loc[r, "colour"] = "green"
        frame.to_parquet(tmp_path / "parts" / f"part-{i}.parquet", index=False)
    schema.save(tmp_path / "schema.toml")
    return tmp_path / "schema.toml"


def test_a_glob_is_checked_part_by_part_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(data_cli, "BATCH_ROWS", 4)  # three batches per part
    schema = _parts(tmp_path, {1: [2, 9]})
    out = CliRunner().invoke(app, ["data", "check", str(tmp_path / "parts" / "*.parquet"), "--schema", str(schema)])
    assert out.exit_code == 1
    assert "part-1.parquet: column 'colour'" in out.output and "2 row(s) (2, 9)" in out.output
    assert "part-0" not in out.output and "part-2" not in out.output
    assert "HOLDER ONLY" in out.output


def test_a_clean_glob_passes_and_a_glob_of_csv_is_refused(tmp_path):
    schema = _parts(tmp_path, {})
    out = CliRunner().invoke(app, ["data", "check", str(tmp_path / "parts" / "*.parquet"), "--schema", str(schema)])
    assert out.exit_code == 0, out.output
    for i in range(2):
        (tmp_path / f"t{i}.csv").write_text("colour,size\nred,1\n")
    out = CliRunner().invoke(app, ["data", "check", str(tmp_path / "t*.csv"), "--schema", str(schema)])
    assert out.exit_code == 1 and "Parquet" in out.output
    out = CliRunner().invoke(app, ["data", "check", str(tmp_path / "none-*.parquet"), "--schema", str(schema)])
    assert out.exit_code == 1 and "no file matches" in out.output
