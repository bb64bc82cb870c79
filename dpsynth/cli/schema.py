"""`dpsynth schema …`: write a schema without an afternoon of typing.

`template` reads a table's column names only (a CSV's header line, a Parquet file's
schema), never a value, and writes a skeleton with the kinds you confirm; every
category and bound is left for the officer to declare from public knowledge (or to
learn privately through the gate).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

import typer

from ._common import clean_errors, fail

app = typer.Typer(help="Schemas: a skeleton from a table's column names; learning what is missing through the ledger.", no_args_is_help=True)

KINDS = ("categorical", "ordinal", "boolean", "integer", "numeric", "datetime")
_NEEDS = {
    "categorical": ["# categories = [...]  # TODO: every category, from the code book"],
    "ordinal": ["# categories = [...]  # TODO: every category, in order"],
    "boolean": ["# values = [0, 1]  # how the table writes false/true (optional: taken from the table)"],
    "integer": ["# lower = ...  # TODO: public bounds; at most 64 whole numbers: one code per value",
                "# upper = ...",
                "# bins = [...]  # a wider range: bin edges (an edge at 1 keeps a count's zeros)"],
    "numeric": ["# lower = ...  # TODO: public bounds", "# upper = ...", "# bins = 10", "# decimals = 1"],
    "datetime": ["# lower = \"YYYY-MM-DD\"  # TODO: public bounds", "# upper = \"YYYY-MM-DD\"", "# bins = 12"],
}


def column_names(path: Path) -> list[str]:
    """The table's column names, read from its header (CSV) or schema (Parquet): no value."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
    if not header:
        fail(f"{path}: no header line")
    return header


def render_template(names: list[str], kinds: dict[str, str], source: str) -> str:
    lines = [f"# Schema skeleton for {source}, from its column names only (no value was read).",
             "# Declare every kind, category and bound from public knowledge (a code book, a",
             "# questionnaire, a standard), never from the table; or learn the missing ones",
             "# privately (table.learn_schema).  Then: dpsynth data check TABLE --schema THIS_FILE", ""]
    for name in names:
        kind = kinds.get(name)
        lines.append("[[columns]]")
        lines.append(f"name = {json.dumps(name, ensure_ascii=False)}")
        if kind is None:
            lines.append(f"kind = \"\"  # TODO: one of {', '.join(KINDS)}")
        else:
            lines.append(f"kind = \"{kind}\"")
            lines += _NEEDS[kind]
        lines.append("# nullable = true  # if values may be missing")
        lines.append("")
    return "\n".join(lines)


@app.command("template")
def template(
    data: Path = typer.Argument(..., help="The table (CSV or Parquet): only its column names are read."),
    kind: list[str] = typer.Option([], "--kind", help="COLUMN=KIND for a kind you confirm (repeatable); "
                                                      f"KIND is one of {', '.join(KINDS)}."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the skeleton here (default: stdout)."),
) -> None:
    """Write a schema skeleton from a table's column names and the kinds you confirm (reads no value)."""
    with clean_errors():
        names = column_names(data)
        kinds: dict[str, str] = {}
        for item in kind:
            name, sep, k = item.partition("=")
            if not sep or name not in names:
                fail(f"--kind {item!r}: write COLUMN=KIND with a column of {data}")
            if k not in KINDS:
                fail(f"--kind {item!r}: KIND is one of {', '.join(KINDS)}")
            kinds[name] = k
        text = render_template(names, kinds, data.name)
        if out is None:
            typer.echo(text)
        else:
            if out.exists():
                fail(f"{out} exists; refusing to overwrite a schema")
            out.write_text(text + "\n", encoding="utf-8")
            typer.echo(f"schema skeleton: {out} ({len(names)} columns, {len(kinds)} kinds confirmed)")


@app.command("learn")
def learn(
    job: Path = typer.Argument(..., help="A job file: its [data] table and schema, [policy] and [ledger] are used."),
    epsilon: float = typer.Option(..., "--epsilon", help="ε for the whole learning, split across the columns."),
    delta: Optional[float] = typer.Option(None, "--delta", help="δ for learning categories (from the policy's "
                                                                "delta_reserve); needed when a column lacks them."),
    bins: int = typer.Option(16, "--bins", help="Bins per numeric column learned by DP quantiles."),
    out: Path = typer.Option(..., "--out", help="Write the learned schema here (.toml or .json)."),
) -> None:
    """Learn the schema's missing categories (DP key discovery) and bins (DP quantiles) through the
    job's ledger, charged under the purpose "schema"; says what it could not learn."""
    from dpsynth.jobs.run import learn_schema_job

    with clean_errors():
        if out.exists():
            fail(f"{out} exists; refusing to overwrite a schema")
        learned, notes, words = learn_schema_job(job, epsilon, delta, bins=bins)
        learned.save(out)
        typer.echo(f"learned schema: {out}")
        for name, note in notes.items():
            typer.echo(f"  {name}: {note}")
        typer.echo(f"budget: {words.headline}; {words.next_run}")
