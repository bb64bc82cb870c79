"""`dpsynth data check`: the data holder's diagnostic (which rows break the schema)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import clean_errors, fail

app = typer.Typer(help="The data holder's own tools (they read the data file directly).", no_args_is_help=True)


# Rows of a Parquet file checked at once (memory bounded whatever the file's size).
BATCH_ROWS = 1_000_000
SHOWN_ROWS = 20


def _parquet_findings(files: list[Path], sch) -> list:
    """Every (file, column, problem) with its rows (0-based within its file), read in batches
    of BATCH_ROWS rows: a glob of parts or one large file, in bounded memory."""
    import pyarrow.parquet as pq

    from dpsynth.schema import diagnose
    from dpsynth.schema.diagnose import Finding

    merged: dict[tuple, list] = {}
    for f in files:
        offset = 0
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH_ROWS):
            frame = batch.to_pandas()
            for found in diagnose(frame, sch):
                key = (f.name if len(files) > 1 else None, found.column, found.problem)
                rows, count = merged.setdefault(key, [[], 0])
                rows.extend(r + offset for r in found.rows[:SHOWN_ROWS + 1 - len(rows)])
                merged[key][1] = count + len(found.rows)
            offset += len(frame)
    out = []
    for (name, column, problem), (rows, count) in merged.items():
        finding = Finding(column, problem, tuple(rows))
        text = str(finding)
        if count > len(rows):  # only the first rows are kept: say how many there are
            text = text.replace(f"{len(rows)} row(s)", f"{count} row(s)", 1)
        out.append(f"{name}: {text}" if name else text)
    return out


@app.command("check")
def check(
    data: str = typer.Argument(..., help="The table (CSV or Parquet, or a quoted glob of Parquet parts), as the "
                                         "holder keeps it."),
    schema: Path = typer.Option(..., "--schema", help="Its public schema (.toml or .json)."),
) -> None:
    """List every column that breaks the schema, with its ROW NUMBERS (0-based, as read; for
    a glob, within each part).

    For the data holder only: row numbers point at records.  Every other command and error
    names the column and the problem, never a row.  Parquet is read in batches of a million
    rows (bounded memory).  Exits 1 when something breaks the schema."""
    import glob as _glob

    from dpsynth.jobs.tables import read_table
    from dpsynth.schema import Schema, diagnose

    with clean_errors():
        sch = Schema.load(schema)
        files = sorted(Path(f) for f in _glob.glob(data, recursive=True))
        if not files:
            raise FileNotFoundError(f"no file matches {data}")
        if len(files) > 1 or files[0].suffix.lower() in (".parquet", ".pq"):
            if any(f.suffix.lower() not in (".parquet", ".pq") for f in files):
                fail("a glob must name Parquet files only")
            try:
                findings = _parquet_findings(files, sch)
            except ImportError as exc:
                fail(f"cannot read Parquet: {exc}")
        else:
            try:
                frame = read_table(files[0])
            except ImportError as exc:
                fail(f"cannot read {data}: {exc}")
            findings = [str(f) for f in diagnose(frame, sch)]
    if not findings:
        typer.echo(f"{data}: every value fits {schema}")
        return
    typer.echo("HOLDER ONLY — this lists row numbers of private records; do not share it", err=True)
    for f in findings:
        typer.echo(str(f))
    raise typer.Exit(1)
