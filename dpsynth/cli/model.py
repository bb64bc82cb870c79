"""`dpsynth model …`: audit saved models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._common import clean_errors, fail

app = typer.Typer(help="Saved models: what paid for them, and whether they are what was paid for.",
                  no_args_is_help=True)


@app.command("verify")
def verify(
    model: Path = typer.Argument(..., help="A model file written by `dpsynth run` or a generator's save()."),
    trust: list[Path] = typer.Option([], "--trust", help="A public key you trust (the ledger's, or the officer's "
                                                         "who signed the ledger's genesis), or a trust TOML file; "
                                                         "repeatable.  Default: $DPSYNTH_TRUST."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="The ledger's published public key (a "
                                                                         "trust anchor)."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="The officer's published public key (a "
                                                                           "trust anchor; also pins the ledger's "
                                                                           "policy with --ledger)."),
    ledger: Optional[Path] = typer.Option(None, "--ledger", help="The ledger file or its JSON Lines export: it must "
                                                                  "verify and hold every receipt."),
    rederive: bool = typer.Option(False, "--rederive", help="Marginal models: fit the model again from its "
                                                            "committed noisy measurements and compare."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Check a model file: its state hashes to its sealed ledger entry, every receipt is signed by
    a key you trust, each charge was released once and paid for exactly this fit, and (with
    --ledger) the ledger holds them all.  Exits 1 when any check fails."""
    from accountant.errors import InvalidReceipt
    from dpsynth.generators.model_file import audit_model

    anchors = [*trust, *([ledger_pub] if ledger_pub else []), *([officer_key] if officer_key else [])]
    with clean_errors():
        try:
            audit = audit_model(model, trust=anchors or None, ledger=ledger, officer_public_key=officer_key,
                                rederive=rederive)
        except InvalidReceipt as exc:
            text = str(exc)
            fail(text if text.startswith(str(model)) else f"{model}: {text}")
        typer.echo(json.dumps(audit.to_dict(), indent=2, sort_keys=True) if as_json else audit.summary())
