"""`dpsynth policy …`: write, check, fingerprint, sign and verify budget policies."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from accountant.filter import RenyiFilter
from accountant.fingerprint import fingerprint_table, load_dataset_key
from accountant.keys import load_private_key, load_public_key
from accountant.policy import (
    load_policy,
    read_signature,
    sign_policy_file,
    signature_path_for,
    verify_policy_signature,
)

from ._common import clean_errors

app = typer.Typer(help="The privacy officer's budget policy (TOML, signed).", no_args_is_help=True)


@app.command("fingerprint")
def fingerprint(
    data: str = typer.Argument(..., help="The dataset: a CSV read with pandas' defaults; with --engine duckdb, a "
                                         "CSV, a Parquet file or a quoted glob of Parquet files."),
    dataset_key: Path = typer.Option(..., "--dataset-key", help="The secret dataset key file."),
    engine: str = typer.Option("memory", "--engine", help="memory (the table as pandas reads it) or duckdb (the "
                                                         "files' bytes, for a job with data.engine = \"duckdb\")."),
) -> None:
    """Print the keyed fingerprint of a table (for the policy's dataset.fingerprint)."""
    import pandas as pd

    with clean_errors():
        key = load_dataset_key(dataset_key)
        if engine == "duckdb":
            from dpsynth.table import DuckDBSource

            typer.echo(DuckDBSource(data).fingerprint(key))
        elif engine == "memory":
            typer.echo(fingerprint_table(pd.read_csv(data), key))
        else:
            raise typer.BadParameter("--engine must be memory or duckdb")


@app.command("template")
def template(
    fingerprint: str = typer.Option(..., "--fingerprint", help="The dataset's keyed fingerprint."),
    dataset_name: str = typer.Option(..., "--dataset-name", help="A name for the dataset."),
    max_records: int = typer.Option(..., "--max-records", help="Public upper bound on the number of records."),
    epsilon: float = typer.Option(..., "--epsilon", help="Total epsilon for the dataset."),
    delta: float = typer.Option(..., "--delta", help="Total delta (must be < 1/max-records)."),
    officer: str = typer.Option(..., "--officer", help="The accountable officer's name."),
    generators: str = typer.Option("mst,aim,independent,external", "--generators",
                                   help="Comma-separated allowed generators."),
    relation: str = typer.Option("add_or_remove_one", "--relation", help="add_or_remove_one or replace_one."),
    max_epsilon_per_run: Optional[float] = typer.Option(None, "--max-epsilon-per-run", help="Per-run cap."),
    ledger_id: Optional[str] = typer.Option(None, "--ledger-id", help="Pin the one ledger this policy governs "
                                                                      "(see `dpsynth ledger new-id`)."),
    allow_custom_code: bool = typer.Option(False, "--allow-custom-code/--no-custom-code",
                                           help="May researchers run their own code on the rows "
                                                "(custom_measurement; each entry records the code's hash)?"),
) -> None:
    """Print a policy (validated) to edit and sign."""
    from accountant.policy import parse_policy, render_policy

    with clean_errors():
        text = render_policy(epsilon=epsilon, delta=delta, relation=relation, fingerprint=fingerprint,
                           max_records=max_records, generators=[g.strip() for g in generators.split(",")],
                           max_epsilon_per_run=max_epsilon_per_run, allow_seeded_noise=False,
                           officer=officer, dataset_name=dataset_name, ledger_id=ledger_id,
                           allow_custom_code=allow_custom_code)
        parse_policy(text)
        typer.echo(text, nl=False)


@app.command("check")
def check(policy: Path = typer.Argument(..., help="Policy TOML file.")) -> None:
    """Validate a policy and print the filter it implies."""
    with clean_errors():
        p = load_policy(policy)
        f = RenyiFilter(p.epsilon, p.delta, order=p.order, delta_reserve=p.delta_reserve)
        typer.echo(f"policy OK: dataset {p.dataset_name!r}, epsilon {p.epsilon:g}, delta {p.delta:g}, "
                   f"{p.relation.value}; filter order alpha* = {f.order:.6g}, RDP budget {f.budget:.6g} "
                   f"(zCDP rho {f.remaining_rho([]):.6g}); delta_reserve {p.delta_reserve:g} "
                   f"(for approximate mechanisms such as key discovery)")


@app.command("sign")
def sign(
    policy: Path = typer.Argument(..., help="Policy TOML file."),
    key: Path = typer.Option(..., "--key", help="The officer's private key."),
    out: Optional[Path] = typer.Option(None, "--out", help="Signature file (default: POLICY.sig)."),
) -> None:
    """Validate the policy and write a detached Ed25519 signature beside it."""
    with clean_errors():
        path = sign_policy_file(policy, load_private_key(key), out)
        typer.echo(f"signed {policy}; signature in {path}")


@app.command("verify")
def verify(
    policy: Path = typer.Argument(..., help="Policy TOML file."),
    officer_key: Path = typer.Option(..., "--officer-key", help="The officer's public key."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="Signature file (default: POLICY.sig)."),
) -> None:
    """Check that the policy is exactly what the officer signed."""
    with clean_errors():
        sig = read_signature(signature or signature_path_for(policy))
        verify_policy_signature(policy.read_bytes(), sig, load_public_key(officer_key))
        load_policy(policy)
        typer.echo(f"policy signature OK ({sig.officer_key_id})")
