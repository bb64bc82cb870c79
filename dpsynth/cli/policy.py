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
    data: Optional[str] = typer.Argument(None, help="The dataset: a CSV read with pandas' defaults; with --engine "
                                                    "duckdb, a CSV, a Parquet file or a quoted glob of Parquet "
                                                    "files.  Not with --query."),
    dataset_key: Path = typer.Option(..., "--dataset-key", help="The secret dataset key file."),
    engine: str = typer.Option("memory", "--engine", help="memory (the table as pandas reads it), or duckdb or "
                                                         "spark (the files' bytes, for a job with data.engine = "
                                                         "\"duckdb\" or \"spark\": the same fingerprint)."),
    query: Optional[str] = typer.Option(None, "--query", help="A job's data.query: the rows it returns, digested "
                                                              "in the database (with --postgres or --attach)."),
    postgres: Optional[str] = typer.Option(None, "--postgres", help="The PostgreSQL DSN the query runs in (the "
                                                                    "password from PGPASSWORD or ~/.pgpass)."),
    attach: Optional[Path] = typer.Option(None, "--attach", help="The DuckDB database file the query runs on."),
) -> None:
    """Print the keyed fingerprint of a table (for the policy's dataset.fingerprint)."""
    import pandas as pd

    with clean_errors():
        key = load_dataset_key(dataset_key)
        if query is not None or postgres is not None or attach is not None:
            if data is not None or query is None or (postgres is None) == (attach is None):
                raise typer.BadParameter("a query's fingerprint: --query with --postgres DSN or --attach FILE (and no "
                                         "DATA argument)")
            from dpsynth.table import DuckDBQuerySource, PostgresSource

            source = PostgresSource(postgres, query) if postgres is not None else DuckDBQuerySource(attach, query)
            typer.echo(source.fingerprint(key))
            return
        if data is None:
            raise typer.BadParameter("name the dataset (DATA), or --query with --postgres or --attach")
        if engine in ("duckdb", "spark"):
            from dpsynth.table import DuckDBSource  # the files' bytes: the same for either engine

            typer.echo(DuckDBSource(data).fingerprint(key))
        elif engine == "memory":
            typer.echo(fingerprint_table(pd.read_csv(data), key))
        else:
            raise typer.BadParameter("--engine must be memory, duckdb or spark")


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


@app.command("suggest-order")
def suggest_order_cmd(
    policy: Path = typer.Argument(..., help="The policy TOML (its budget, delta_reserve, max_records, relation); "
                                            "it need not be signed yet."),
    run: list[str] = typer.Option(..., "--run", help="A run you expect, repeatable: GENERATOR:EPSILON, or "
                                                     "GENERATOR:EPSILON:key=value,… for a GAN's plan parameters "
                                                     "(e.g. dpctgan:1:epochs=30,batch_size=500)."),
) -> None:
    """Suggest the filter order α* for the mix of runs you expect (budget.order in the policy).

    Every order is sound; this one lets the mix fit the most times.  The default α* suits
    MST, AIM and Independent (zCDP-shaped spend); DP-SGD and PATE runs can leave budget on
    the table there."""
    from accountant.order_choice import suggest_order
    from dpsynth.generators.planned_events import planned_events

    with clean_errors():
        p = load_policy(policy)
        runs = [_parse_run(item) for item in run]

        # Each run calibrated on its own, as a share is (a whole-budget run at the default
        # order); the choice then compares what the mix costs at each order.
        f = RenyiFilter(p.epsilon, p.delta, delta_reserve=p.delta_reserve)
        events: list = []
        for name, eps, params in runs:
            try:
                events += planned_events(name, eps, params, ledger_filter=f, max_records=p.max_records,
                                         relation=p.relation)
            except TypeError as exc:
                raise typer.BadParameter(f"--run {name}:{eps:g}: {exc}") from None
        choice = suggest_order(p.epsilon, p.delta, events, delta_reserve=p.delta_reserve)
        mix = ", ".join(f"{name} ε {eps:g}" for name, eps, _ in runs)
        typer.echo(f"the mix ({mix}) uses {100 * choice.default_share:.1f} % of the budget at the default order "
                   f"alpha* = {choice.default_order:.6g} (fits {choice.default_copies:.2f} times)")
        if choice.order == choice.default_order:
            typer.echo("suggested: keep the default order (no budget.order line needed)")
        else:
            typer.echo(f"suggested: alpha* = {choice.order:.6g}: the mix uses {100 * choice.share:.1f} % of the "
                       f"budget (fits {choice.copies:.2f} times); add to the policy's [budget]:")
            typer.echo(f"order = {choice.order!r}")


def _parse_run(item: str) -> tuple[str, float, dict]:
    """GENERATOR:EPSILON[:key=value,…] -> (name, ε, parameters); values parsed as TOML scalars."""
    import math
    import tomllib

    from dpsynth.generators import GENERATORS

    parts = item.split(":", 2)
    if len(parts) < 2:
        raise typer.BadParameter(f"--run {item!r}: write GENERATOR:EPSILON (e.g. mst:1)")
    name = parts[0].strip()
    if name not in GENERATORS:
        raise typer.BadParameter(f"--run {item!r}: unknown generator {name!r}; known: {', '.join(GENERATORS)}")
    try:
        eps = float(parts[1])
    except ValueError:
        raise typer.BadParameter(f"--run {item!r}: EPSILON must be a number") from None
    if not (math.isfinite(eps) and eps > 0):
        raise typer.BadParameter(f"--run {item!r}: EPSILON must be a finite number > 0")
    params: dict = {}
    if len(parts) == 3 and parts[2].strip():
        for pair in parts[2].split(","):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip().isidentifier():
                raise typer.BadParameter(f"--run {item!r}: parameters are key=value pairs separated by commas")
            try:
                params[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                raise typer.BadParameter(f"--run {item!r}: {key.strip()} = {value.strip()!r} is not a number, "
                                         "true/false or a quoted string") from None
    return name, eps, params
