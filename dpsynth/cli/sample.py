"""`dpsynth sample MODEL -n N [--where COLUMN=VALUE ...] [--out FILE]`: rows from a saved model.

Sampling is post-processing: it reads no data and charges nothing, but it refuses a
model whose receipts do not verify under the keys you trust (like `dpsynth model verify`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from ._common import clean_errors, fail


def _value(column: Any, text: str) -> Any:
    """A --where value, read as the column's kind (text on the command line)."""
    if column is None:
        return text
    if text == "" and getattr(column, "nullable", False):
        return None
    if column.is_discrete:
        declared = list(column.values) if column.kind == "boolean" and column.values is not None else list(
            column.categories or [])
        for v in declared:
            if str(v) == text or (isinstance(v, bool) and text.lower() == str(v).lower()):
                return v
        return text  # the model refuses it with the column's categories
    if column.kind == "integer":
        try:
            return int(text)
        except ValueError:
            fail(f"--where {column.name}={text}: {column.name!r} is an integer column")
    if column.kind == "numeric":
        try:
            return float(text)
        except ValueError:
            fail(f"--where {column.name}={text}: {column.name!r} is a numeric column")
    return text  # datetime: ISO text


def sample(
    model: Path = typer.Argument(..., help="A model file written by `dpsynth run` or a generator's save()."),
    n: int = typer.Option(..., "-n", "--rows", help="How many rows to draw."),
    where: list[str] = typer.Option([], "--where", help="COLUMN=VALUE: condition on a value (repeat the column "
                                                        "for several values; repeat --where for several "
                                                        "columns)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the rows here (.csv or .parquet); default: "
                                                           "CSV on stdout."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Makes the draw reproducible (no privacy role)."),
    trust: list[Path] = typer.Option([], "--trust", help="A public key you trust (the ledger's, or the officer's), "
                                                         "or a trust TOML file; repeatable.  Default: "
                                                         "$DPSYNTH_TRUST."),
    device: str = typer.Option("cpu", "--device", help="Where the model runs (cpu, cuda, auto)."),
) -> None:
    """Draw rows from a saved model (post-processing: charges nothing; the model's receipts must
    verify under a key you trust)."""
    from accountant.errors import InvalidReceipt

    with clean_errors():
        try:
            _sample(model, n, where, out, seed, trust, device)
        except InvalidReceipt as exc:
            fail(f"{model}: {exc}")
        except KeyError as exc:
            fail(str(exc.args[0]) if exc.args else str(exc))


def _sample(model: Path, n: int, where: list[str], out: Optional[Path], seed: Optional[int], trust: list[Path],
            device: str) -> None:
    from dpsynth.generators.model_file import load_model
    from dpsynth.jobs.tables import write_table

    if n < 0:
        fail("-n must be 0 or more")
    loaded = load_model(model, trust=[*trust] or None, device=device)
    schema = getattr(loaded, "schema", None)
    conditions: dict[str, list[Any]] = {}
    for item in where:
        name, sep, text = item.partition("=")
        if not sep or not name:
            fail(f"--where {item!r}: write COLUMN=VALUE")
        column = schema.column(name) if schema is not None and name in schema.names else None
        conditions.setdefault(name, []).append(_value(column, text))
    cond = {k: v[0] if len(v) == 1 else v for k, v in conditions.items()} or None
    rows = loaded.sample(n, where=cond, seed=seed)
    if out is None:
        rows.to_csv(sys.stdout, index=False)
        return
    write_table(rows, out)
    typer.echo(f"{len(rows)} rows: {out}", err=True)
