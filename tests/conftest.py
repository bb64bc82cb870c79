"""Shared test fixtures: where the shared reference data lives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path under ../shared; skips the test (with the reason) when the folder is absent,
    which only happens outside the project's own machines."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data folder, absent on this machine)")
    return path


def pytest_configure(config):
    """The gate's rollback witness (accountant.witness) lives in a folder of this test run,
    never in the user's home; subprocesses (the CLI tests) inherit it."""
    if "DPSYNTH_WITNESS_DIR" not in os.environ:
        os.environ["DPSYNTH_WITNESS_DIR"] = tempfile.mkdtemp(prefix="dpsynth-witness-")


# A throwaway PostgreSQL server per test process, for the PostgreSQL ledger backend's tests.
from tests.postgres_server import pg_ledger_url, postgres_server  # noqa: E402,F401
