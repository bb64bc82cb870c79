"""`dpsynth compare`: several generators × several ε × repeats on one table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._common import clean_errors, fail

__all__ = ["compare"]


def _floats(text: str, option: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"{option} must be comma-separated numbers, got {text!r}")


def compare(
    data: Optional[Path] = typer.Argument(None, help="The table (CSV or Parquet); omit with --demo."),
    schema: Optional[Path] = typer.Option(None, "--schema", help="Its public schema (.toml or .json)."),
    demo: bool = typer.Option(False, "--demo", help="Use the demo table and schema (see `dpsynth demo`)."),
    demo_rows: int = typer.Option(5000, "--demo-rows", help="Rows of the demo table (with --demo)."),
    generators: str = typer.Option("mst,aim", "--generators", help="Comma-separated generator names."),
    parameters: Optional[str] = typer.Option(None, "--parameters",
                                             help='Per-generator parameters as JSON, e.g. {"mst": {"iters": 300}}.'),
    epsilons: str = typer.Option("0.5,1,2", "--epsilons", help="Comma-separated ε values, one run each."),
    repeats: int = typer.Option(1, "--repeats", help="Runs per (generator, ε)."),
    target: Optional[str] = typer.Option(None, "--target", help="Classification target for utility."),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Share of rows held out for testing."),
    n_samples: Optional[int] = typer.Option(None, "--samples", help="Synthetic rows per run (default: as many as "
                                                                    "the train split)."),
    models: str = typer.Option("logistic_regression,gradient_boosting", "--models",
                               help="Utility classifiers (logistic_regression, gradient_boosting)."),
    out: Path = typer.Option(..., "--out", help="Output folder (results.csv, plots, index.html, ledger/)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="TESTS ONLY: seeded noise, recorded as such."),
) -> None:
    """Fit every generator at every ε (repeated), each run charged to a ledger made for the
    comparison; write a tidy CSV, plots and one HTML page."""
    from dpsynth.compare import compare as run_compare

    with clean_errors():
        if demo == (data is not None):
            fail("give a DATA table with --schema, or --demo")
        if demo:
            from dpsynth.demo import demo_schema, demo_table

            frame, sch = demo_table(demo_rows, seed=0), demo_schema()
        else:
            if schema is None:
                fail("--schema is required with a DATA table")
            from dpsynth.jobs.tables import read_table
            from dpsynth.schema import Schema

            frame, sch = read_table(data), Schema.load(schema)
        names = [g.strip() for g in generators.split(",") if g.strip()]
        params = {}
        if parameters:
            try:
                params = json.loads(parameters)
            except json.JSONDecodeError as exc:
                fail(f"--parameters is not JSON: {exc}")
            if not isinstance(params, dict) or any(not isinstance(v, dict) for v in params.values()):
                fail('--parameters must be a JSON object {"generator": {"name": value}}')
            unknown = sorted(set(params) - set(names))
            if unknown:
                fail(f"--parameters names {unknown[0]!r}, which is not in --generators")
        res = run_compare(frame, sch, generators={g: params.get(g, {}) for g in names},
                          epsilons=_floats(epsilons, "--epsilons"), repeats=repeats, out=out, target=target,
                          test_fraction=test_fraction, n_samples=n_samples,
                          utility_models=[m.strip() for m in models.split(",") if m.strip()], seed=seed,
                          progress=lambda msg: typer.echo(f"  {msg}", err=True))
        failed = int((res.results["metric"] == "failed").sum())
        typer.echo(f"results: {res.csv}")
        for key, path in res.plots.items():
            typer.echo(f"plot ({key}): {path}")
        typer.echo(f"page: {res.page}")
        typer.echo(f"ledger: {res.ledger} (keys beside it)")
        if failed:
            typer.echo(f"WARNING: {failed} run(s) failed; see the page", err=True)
