"""Helpers shared by the CLI groups: turn library errors into clean exits."""

from __future__ import annotations

import contextlib
from typing import Iterator

import typer

from accountant.gate import BudgetExceeded, DatasetMismatch, LedgerIntegrityError, PolicyViolation
from accountant.keys import KeyFileError
from accountant.ledger.store import LedgerStoreError
from accountant.policy import PolicyError

EXPECTED_ERRORS = (PolicyError, PolicyViolation, KeyFileError, LedgerStoreError, LedgerIntegrityError,
                   DatasetMismatch, FileExistsError, FileNotFoundError, PermissionError, ValueError)


def fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def clean_errors() -> Iterator[None]:
    """Print expected errors as one line and exit non-zero (2 for a refused charge)."""
    try:
        yield
    except BudgetExceeded as exc:
        fail(str(exc), code=2)
    except EXPECTED_ERRORS as exc:
        fail(str(exc))
