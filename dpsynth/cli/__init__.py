"""The `dpsynth` command.  Sub-command groups live in sibling modules."""

from __future__ import annotations

import typer

from .data import app as data_app
from .keys import app as keys_app
from .ledger import app as ledger_app
from .model import app as model_app
from .policy import app as policy_app
from .schema import app as schema_app
from .demo import demo
from .run import run
from .sample import sample
from .compare import compare
from .audit import audit
from .serve import app as service_app
from .serve import serve

app = typer.Typer(
    name="dpsynth",
    help="Differentially private synthetic data with a signed, verifiable privacy ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")
app.add_typer(ledger_app, name="ledger")
app.add_typer(model_app, name="model")
app.add_typer(data_app, name="data")
app.add_typer(schema_app, name="schema")
app.command("run")(run)
app.command("sample")(sample)
app.command("demo")(demo)
app.command("compare")(compare)
app.command("audit")(audit)
app.command("serve")(serve)
app.add_typer(service_app, name="service")


def main() -> None:
    """Console entry point."""
    app()


__all__ = ["app", "main"]
