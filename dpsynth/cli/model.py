"""`dpsynth model …`: inspect and audit saved models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._common import clean_errors

app = typer.Typer(help="Saved models: what paid for them.", no_args_is_help=True)


@app.command("verify")
def verify(
    model: Path = typer.Argument(..., help="A model file written by `dpsynth run` or a generator's save()."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="The ledger's published public key "
                                                                         "(pins who signed the receipts)."),
    ledger: Optional[Path] = typer.Option(None, "--ledger", help="The ledger file or its JSON Lines export: every "
                                                                  "receipt must be one of its entries."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="The officer's published public key "
                                                                           "(pins the ledger's policy)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check a model's receipts: signed, unaltered, paying for its fit, and in the ledger.

    Exits 1 when any check fails."""
    from dpsynth.generators.model_file import audit_model

    with clean_errors():
        audit = audit_model(model, ledger_public_key=ledger_pub, ledger=ledger, officer_public_key=officer_key)
        typer.echo(json.dumps(audit.to_dict(), indent=2, sort_keys=True) if as_json else audit.summary())
