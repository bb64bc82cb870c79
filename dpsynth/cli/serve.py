"""`dpsynth serve CONFIG` and `dpsynth service …`: the team deployment's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ._common import fail

app = typer.Typer(help="The team privacy service: sign its configuration, open the dashboard, a demo setting.",
                  no_args_is_help=True)


def serve(
    config: Path = typer.Argument(..., help="The service configuration (TOML), signed by the officer."),
    officer_key: Path = typer.Option(..., "--officer-key", help="The officer's public key: the configuration, every "
                                                                "policy and every ledger genesis must be signed "
                                                                "by it."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (put TLS in front for a "
                                                         "network)."),
    port: int = typer.Option(8470, "--port", help="Port to listen on."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level."),
) -> None:
    """Run the privacy service: it holds the datasets, their keys and ledgers, and answers
    signed requests (measurements, jobs, ledger exports, the dashboard)."""
    try:
        import uvicorn
    except ImportError:
        fail("the service needs its extra: pip install 'dpsynth[serve]'", code=1)
    from accountant.keys import KeyFileError, load_public_key
    from dpsynth.serve.config import ConfigError
    from dpsynth.serve.startup import start_service

    try:
        officer = load_public_key(officer_key)
    except KeyFileError as exc:
        fail(f"--officer-key: {exc}", code=1)
    try:
        service = start_service(config, officer)
    except ConfigError as exc:
        fail(str(exc), code=1)
    from dpsynth.serve.app import create_app

    typer.echo(f"dpsynth service {service.config.name!r} (configuration version {service.config.version}): "
               f"{len(service.datasets)} dataset(s), {len(service.config.people)} people; "
               f"http://{host}:{port}/dashboard/")
    try:
        uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()


@app.command("sign-config")
def sign_config(
    config: Path = typer.Argument(..., help="The service configuration (TOML) to sign."),
    officer_key: Path = typer.Option(..., "--officer-key", help="The officer's private key."),
) -> None:
    """Check the configuration and write its detached signature (CONFIG.sig)."""
    from accountant.keys import KeyFileError, load_private_key
    from dpsynth.serve.config import ConfigError, sign_config_file

    try:
        out = sign_config_file(config, load_private_key(officer_key))
    except (ConfigError, KeyFileError, OSError) as exc:
        fail(str(exc), code=1)
    typer.echo(f"signed: {out}")


@app.command("login")
def login(
    url: str = typer.Argument(..., help="The service's address, e.g. http://127.0.0.1:8470"),
    key: Path = typer.Option(..., "--key", help="Your private key (officer or auditor)."),
) -> None:
    """Print a one-time dashboard address (valid two minutes, used once)."""
    from dpsynth.remote import ServiceClient, ServiceError

    try:
        with ServiceClient(url, key, retries=1) as client:
            typer.echo(url.rstrip("/") + client.login_path())
    except ServiceError as exc:
        fail(exc.message, code=2)


@app.command("push-config")
def push_config(
    url: str = typer.Argument(..., help="The service's address."),
    config: Path = typer.Argument(..., help="The new configuration (signed: CONFIG.sig beside it)."),
    key: Path = typer.Option(..., "--key", help="Your private key (an officer of the roster)."),
) -> None:
    """Replace the running service's roster and caps (a higher service.version, signed by the officer)."""
    from dpsynth.remote import ServiceClient, ServiceError
    from dpsynth.serve.config import config_signature_path

    try:
        with ServiceClient(url, key, retries=1) as client:
            out = client.replace_config(config.read_text(), config_signature_path(config).read_text())
    except ServiceError as exc:
        fail(exc.message, code=2)
    except OSError as exc:
        fail(str(exc), code=1)
    typer.echo(json.dumps(out))


@app.command("demo")
def demo(
    folder: Path = typer.Argument(..., help="Folder to write the team demo into."),
    rows: int = typer.Option(2000, "--rows", help="Rows of the demo table."),
    ledger: Optional[str] = typer.Option(None, "--ledger", help="A postgresql:// URL for the ledger (default: "
                                                                "SQLite in the folder)."),
) -> None:
    """Write a team setting on made-up data: keys for an officer, two researchers and an
    auditor, the dataset, its signed policy and ledger, a signed service configuration."""
    from dpsynth.serve.team_demo import make_team_workspace

    paths = make_team_workspace(folder, n_rows=rows, ledger=ledger)
    typer.echo(f"team demo in {folder}:\n  dpsynth serve {paths['config']} --officer-key {paths['officer_pub']}\n"
               f"  researcher keys: {paths['alice_key']}, {paths['bob_key']}; auditor: {paths['audrey_key']}; "
               f"officer: {paths['olivia_key']}")
