"""`dpsynth data check`: the data holder's diagnostic (which rows break the schema)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import clean_errors, fail

app = typer.Typer(help="The data holder's own tools (they read the data file directly).", no_args_is_help=True)


@app.command("check")
def check(
    data: Path = typer.Argument(..., help="The table (CSV or Parquet), as the holder keeps it."),
    schema: Path = typer.Option(..., "--schema", help="Its public schema (.toml or .json)."),
) -> None:
    """List every column that breaks the schema, with its ROW NUMBERS (0-based, as read).

    For the data holder only: row numbers point at records.  Every other command and error
    names the column and the problem, never a row.  Exits 1 when something breaks the schema."""
    from dpsynth.jobs.tables import read_table
    from dpsynth.schema import Schema, diagnose

    with clean_errors():
        sch = Schema.load(schema)
        try:
            frame = read_table(data)
        except ImportError as exc:
            fail(f"cannot read {data}: {exc}")
        findings = diagnose(frame, sch)
    if not findings:
        typer.echo(f"{data}: every value fits {schema}")
        return
    typer.echo("HOLDER ONLY — this lists row numbers of private records; do not share it", err=True)
    for f in findings:
        typer.echo(str(f))
    raise typer.Exit(1)
