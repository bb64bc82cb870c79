"""`dpsynth keys …`: Ed25519 key pairs and secret dataset keys."""

from __future__ import annotations

from pathlib import Path

import typer

from accountant.fingerprint import write_dataset_key
from accountant.keys import key_id, load_public_key, write_keypair

from ._common import clean_errors

app = typer.Typer(help="Make signing keys (officer, ledger) and secret dataset keys.", no_args_is_help=True)


@app.command("generate")
def generate(
    out: Path = typer.Option(..., "--out", help="Directory to write NAME.key and NAME.pub into."),
    name: str = typer.Option(..., "--name", help="Key name, e.g. officer or ledger."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing key pair."),
) -> None:
    """Generate an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub."""
    with clean_errors():
        key_path, pub_path = write_keypair(out, name, overwrite=force)
        typer.echo(f"wrote {key_path} (private, 0600) and {pub_path}; key id {key_id(load_public_key(pub_path))}")


@app.command("dataset-key")
def dataset_key(
    out: Path = typer.Option(..., "--out", help="File to write the secret dataset key to (hex, mode 0600)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing key."),
) -> None:
    """Generate the secret key that keys the dataset fingerprint (kept by the data holder)."""
    with clean_errors():
        write_dataset_key(out, overwrite=force)
        typer.echo(f"wrote {out} (secret, 0600): keep it with the data, never in the policy or ledger")


@app.command("id")
def show_id(public_key: Path = typer.Argument(..., help="A .pub file.")) -> None:
    """Print a public key's id (what ledgers, receipts and signatures name)."""
    with clean_errors():
        typer.echo(key_id(load_public_key(public_key)))
