"""A demo workspace (table, schema, keys, signed policy, ledger, job) for the run-layer tests."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

from accountant.ledger.sqlite import SQLiteLedgerStore
from dpsynth.demo import setup_workspace, write_job


def make_workspace(path: Path, *, n_rows: int = 300, generator: str = "independent", parameters=None,
                   epsilon: float = 0.5, seed: int | None = 0, allow_seeded_noise: bool = True,
                   holdout: float = 0.2) -> dict:
    paths = setup_workspace(path, n_rows=n_rows, allow_seeded_noise=allow_seeded_noise)
    paths["job"] = write_job(path / "job.toml", generator=generator, parameters=parameters or {"iters": 50},
                             epsilon=epsilon, n_samples=200, holdout=holdout, seed=seed,
                             utility_models=["logistic_regression"])
    return paths


def read_job(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def write_job_dict(path: Path, job: dict) -> Path:
    path.write_text(tomli_w.dumps(job))
    return path


def ledger_entries(ledger: Path) -> int:
    store = SQLiteLedgerStore(ledger)
    try:
        return len(store.snapshot().entries)
    finally:
        store.close()
