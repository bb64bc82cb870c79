"""`dpsynth demo`: build a demo setting in a temporary workspace and run one synthesis."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import clean_errors

__all__ = ["demo"]


def demo(
    workspace: Optional[Path] = typer.Option(None, "--workspace", help="Folder to build the demo in (default: a "
                                                                      "new temporary folder)."),
    generator: Optional[str] = typer.Option(None, "--generator", help="mst, aim, independent, dpctgan or pategan "
                                                                      "(default: mst)."),
    epsilon: float = typer.Option(1.0, "--epsilon", help="Epsilon of the run (the demo policy allows 3 in total)."),
    rows: int = typer.Option(5000, "--rows", help="Rows of the demo table."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the generator's progress bar."),
) -> None:
    """Make a demo table, keys, a signed policy and a ledger; run a synthesis; show the ledger."""
    from dpsynth.demo import run_demo

    with clean_errors():
        run_demo(workspace, generator=generator, epsilon=epsilon, n_rows=rows, echo=typer.echo,
                 show_progress=progress)
