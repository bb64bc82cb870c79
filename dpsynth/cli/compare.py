"""`dpsynth compare`: several generators × several ε × repeats on one table."""

from __future__ import annotations

import json
import math
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
    job: Optional[Path] = typer.Argument(None, help="A job file (TOML): its data, policy and ledger sections name the "
                                                    "governed table and the officer's ledger every run is charged "
                                                    "to.  Omit with --demo."),
    demo: bool = typer.Option(False, "--demo", help="Use the demo table (made-up data) in a demo setting of its "
                                                    "own (see `dpsynth demo`)."),
    demo_rows: int = typer.Option(5000, "--demo-rows", help="Rows of the demo table (with --demo)."),
    generators: str = typer.Option("mst,aim", "--generators", help="Comma-separated generator names."),
    parameters: Optional[str] = typer.Option(None, "--parameters",
                                             help='Per-generator parameters as JSON, e.g. {"mst": {"iters": 300}}.'),
    epsilons: str = typer.Option("0.5,1,2", "--epsilons", help="Comma-separated ε values, one run each."),
    repeats: int = typer.Option(1, "--repeats", help="Runs per (generator, ε)."),
    target: Optional[str] = typer.Option(None, "--target", help="Classification target for utility."),
    sensitive: Optional[str] = typer.Option(None, "--sensitive", help="Comma-separated sensitive columns: "
                                            "per-column demographic-parity and equalized-odds differences of the "
                                            "classifier (needs --target; docs/fairness.md)."),
    test_fraction: float = typer.Option(0.25, "--test-fraction", help="Share of rows held out for testing."),
    n_samples: Optional[int] = typer.Option(None, "--samples", help="Synthetic rows per run (default: as many as "
                                                                    "the train split)."),
    models: str = typer.Option("logistic_regression,gradient_boosting", "--models",
                               help="Utility classifiers (logistic_regression, gradient_boosting)."),
    out: Path = typer.Option(..., "--out", help="Output folder (results.csv, plots, index.html)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="TESTS ONLY: seeded noise, recorded as such (the "
                                                            "policy must allow it)."),
) -> None:
    """Fit every generator at every ε (repeated), every run charged to the officer's ledger
    (or, with --demo, to the demo's); write a tidy CSV, plots and one HTML page.

    The whole comparison is checked against the ledger first: nothing is charged when the
    runs together would overspend (exit 2)."""
    from dpsynth.compare import compare as run_compare
    from dpsynth.compare.runner import BUDGET_MARGIN, demo_comparison

    with clean_errors():
        if demo == (job is not None):
            fail("give a JOB file (the governed table and its ledger), or --demo")
        names = [g.strip() for g in generators.split(",") if g.strip()]
        params = {}
        if parameters:
            try:
                params = json.loads(parameters)
            except json.JSONDecodeError as exc:
                fail(f"--parameters is not JSON: {exc}")
            except RecursionError:  # nested deeper than the parser recurses: an error, not a crash
                fail("--parameters nests too deeply")
            if not isinstance(params, dict) or any(not isinstance(v, dict) for v in params.values()):
                fail('--parameters must be a JSON object {"generator": {"name": value}}')
            unknown = sorted(set(params) - set(names))
            if unknown:
                fail(f"--parameters names {unknown[0]!r}, which is not in --generators")
        eps = _floats(epsilons, "--epsilons")
        actor = None
        if demo:
            if out.exists() and any(out.iterdir()):
                fail(f"--out {out} is not empty: a demo comparison makes its own ledger there")
            setting = demo_comparison(out, n_rows=demo_rows, seeded=seed is not None,
                                      epsilon_total=BUDGET_MARGIN * repeats * len(names) * math.fsum(eps))
            gate, key, frame, sch = setting["gate"], setting["dataset_key"], setting["frame"], setting["schema"]
        else:
            from accountant.fingerprint import load_dataset_key
            from dpsynth.jobs import JobError, load_job
            from dpsynth.jobs.run import _check_policy_file, _load_data, _open_gate

            try:
                spec = load_job(job)
                gate = _open_gate(spec)
            except JobError as exc:
                fail(f"{job}: {exc}")
            try:
                _check_policy_file(spec, gate)
                sch, frame = _load_data(spec, gate)
            except JobError as exc:
                gate.close()
                fail(f"{job}: {exc}")
            key = load_dataset_key(spec.dataset_key)
            actor = spec.actor
            if spec.seed is not None and seed is None:
                seed = spec.seed
        try:
            res = run_compare(frame, sch, gate=gate, dataset_key=key,
                              generators={g: params.get(g, {}) for g in names}, epsilons=eps, repeats=repeats,
                              out=out, target=target, test_fraction=test_fraction, n_samples=n_samples,
                              utility_models=[m.strip() for m in models.split(",") if m.strip()], seed=seed,
                              actor=actor, progress=lambda msg: typer.echo(f"  {msg}", err=True),
                              sensitive=[c.strip() for c in (sensitive or "").split(",") if c.strip()])
        finally:
            gate.close()
        failed = int((res.results["metric"] == "failed").sum())
        typer.echo(f"results: {res.csv}")
        for key_name, path in res.plots.items():
            typer.echo(f"plot ({key_name}): {path}")
        typer.echo(f"page: {res.page}")
        typer.echo(f"ledger: {res.ledger} (every run's charges)")
        if failed:
            typer.echo(f"WARNING: {failed} run(s) failed; see the page", err=True)
