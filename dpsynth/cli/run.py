"""`dpsynth run JOB.toml`: one synthesis run from a job file."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import clean_errors

__all__ = ["run"]


def run(
    job: Path = typer.Argument(..., help="The job file (TOML): data, schema, signed policy, ledger, generator, "
                                         "epsilon, outputs."),
    check: bool = typer.Option(False, "--check", help="Validate the job (files, keys, signature, schema against "
                                                      "the data, generator parameters) and stop; spends nothing."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
    evaluate: bool = typer.Option(True, "--evaluate/--no-evaluate", help="Compute the quality figures."),
) -> None:
    """Validate the job, then fit, sample, save the model and write the run report.

    Nothing is measured (or charged) until every check has passed.  Exits 2 when the
    ledger refuses the run's spend (nothing was charged), 1 on any other error.
    """
    from dpsynth.jobs import JobError, prepare
    from dpsynth.jobs.run import STEPS, execute

    with clean_errors():
        try:
            prepared = prepare(job, progress=progress)
        except JobError as exc:
            raise ValueError(f"{job}: {exc}") from None
        if check:
            prepared.close()
            typer.echo(f"{job}: OK (nothing was measured or charged)")
            return
        try:
            steps = [s for s in STEPS if evaluate or s != "evaluate"]
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(steps), desc="dpsynth run", unit="step", leave=True)

                def on_step(name: str) -> None:
                    if bar.n or name != steps[0]:
                        bar.update(1)
                    bar.set_postfix_str(name)
                try:
                    result = execute(prepared, progress=on_step, evaluate=evaluate)
                    bar.update(1)
                finally:
                    bar.close()
            else:
                result = execute(prepared, evaluate=evaluate)
        finally:
            prepared.close()
        typer.echo(f"synthetic table: {result.synthetic_path}")
        typer.echo(f"model (with {len(result.receipts)} receipts): {result.model_path}")
        typer.echo(f"run report: {result.report_path}")
        if result.budget is not None:
            typer.echo(f"budget: {result.budget.headline}; {result.budget.next_run}")
        typer.echo(f"detail: epsilon {result.epsilon_run:.6g} in this run (full curve); the ledger guarantees "
                   f"epsilon {result.epsilon_ledger:.6g} of {result.epsilon_budget:g} (delta {result.delta:g}, "
                   "filter)")
