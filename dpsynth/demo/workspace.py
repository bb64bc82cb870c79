"""`run_demo`: the whole setting of a synthesis, built in a workspace folder, then one run.

What it makes, in the order a real deployment would:

1. the data holder's table (`data.csv`, drawn from the demo model) and its
   public schema (`schema.toml`);
2. the keys: officer and ledger signing keys, the secret dataset key;
3. the officer's policy for the table (its keyed fingerprint, ε = 3 in
   total, δ = 1e-6), signed, a ledger started under it (the officer signs its
   genesis), and a trust file naming the officer's public key;
4. a `job.toml`, run with `dpsynth.jobs.run_job` — MST when the graphical-model
   core is installed, else DP-CTGAN;
5. a summary of the outputs and the ledger's status.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["DemoResult", "run_demo", "default_generator", "write_job"]

DEMO_EPSILON_TOTAL = 3.0
DEMO_DELTA = 1e-6
DEMO_MAX_RECORDS = 10_000


@dataclass
class DemoResult:
    workspace: Path
    job: Path
    run: Any                     # dpsynth.jobs.RunResult
    ledger: Path


def default_generator() -> tuple[str, dict]:
    """MST when `dpsynth.pgm` is importable, else a short DP-CTGAN run."""
    try:
        import dpsynth.pgm  # noqa: F401
        return "mst", {}
    except ImportError:
        return "dpctgan", {"epochs": 2, "batch_size": 500}


def write_job(path: Path, *, generator: str, parameters: dict, epsilon: float, n_samples: int,
              holdout: float = 0.2, target: str | None = "income", seed: int | None = None,
              utility_models: Sequence[str] | None = None) -> Path:
    """A job.toml for the demo workspace layout (paths relative to the job file)."""
    import tomli_w

    job: dict[str, Any] = {"actor": "demo-researcher"}
    if seed is not None:
        job["seed"] = seed
    job["data"] = {"path": "data.csv", "schema": "schema.toml", "dataset_key": "keys/dataset.key"}
    job["policy"] = {"path": "policy.toml", "signature": "policy.toml.sig", "officer_key": "keys/officer.pub"}
    job["ledger"] = {"path": "ledger.db", "key": "keys/ledger.key"}
    job["generator"] = {"name": generator, "epsilon": float(epsilon), "parameters": dict(parameters)}
    job["output"] = {"synthetic": "out/synthetic.csv", "model": "out/model.pt", "report": "out/report.html",
                     "n_samples": int(n_samples), "overwrite": True}
    job["evaluate"] = {"holdout": holdout} | ({"target": target} if target else {})
    if utility_models is not None:
        job["evaluate"]["models"] = list(utility_models)
    path.write_text(tomli_w.dumps(job), encoding="utf-8")
    return path


def setup_workspace(workspace: Path, *, n_rows: int = 5000, data_seed: int = 0, generators=("mst", "aim",
                    "independent", "dpctgan", "pategan"), allow_seeded_noise: bool = False,
                    epsilon_total: float = DEMO_EPSILON_TOTAL) -> dict[str, Path]:
    """Table, schema, keys, signed policy and ledger in `workspace`; returns their paths."""
    import pandas as pd

    from accountant.fingerprint import fingerprint_table, load_dataset_key, write_dataset_key
    from accountant.gate import init_ledger
    from accountant.keys import load_private_key, write_keypair
    from accountant.policy import render_policy, sign_policy_file

    from .data import demo_table
    from .schema import demo_schema

    workspace = Path(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    keys = workspace / "keys"
    data = workspace / "data.csv"
    demo_table(n_rows, seed=data_seed).to_csv(data, index=False)
    demo_schema().save(workspace / "schema.toml")
    officer_key, officer_pub = write_keypair(keys, "officer", overwrite=True)
    ledger_key, ledger_pub = write_keypair(keys, "ledger", overwrite=True)
    dataset_key = keys / "dataset.key"
    write_dataset_key(dataset_key, overwrite=True)
    fingerprint = fingerprint_table(pd.read_csv(data), load_dataset_key(dataset_key))
    policy = workspace / "policy.toml"
    policy.write_text(render_policy(
        epsilon=epsilon_total, delta=DEMO_DELTA, relation="add_or_remove_one", fingerprint=fingerprint,
        max_records=max(DEMO_MAX_RECORDS, n_rows), generators=list(generators),
        allow_seeded_noise=allow_seeded_noise, officer="Demo Officer", dataset_name="demo-survey"))
    sign_policy_file(policy, load_private_key(officer_key))
    ledger = workspace / "ledger.db"
    if ledger.exists():
        ledger.unlink()
    init_ledger(ledger, policy, officer_key=officer_key, ledger_key=ledger_pub)
    trust = workspace / "trust.toml"
    trust.write_text('# the keys this workspace trusts (what an officer publishes)\nkeys = ["keys/officer.pub"]\n')
    return {"data": data, "schema": workspace / "schema.toml", "policy": policy, "ledger": ledger,
            "officer_pub": officer_pub, "ledger_pub": ledger_pub, "trust": trust}


def run_demo(workspace: str | os.PathLike | None = None, *, generator: str | None = None,
             parameters: dict | None = None, epsilon: float = 1.0, n_rows: int = 5000,
             n_samples: int | None = None, seed: int | None = None, echo: Callable[[str], None] = print,
             show_progress: bool = False, utility_models: Sequence[str] | None = None) -> DemoResult:
    """Build the demo setting in `workspace` (default: a new temporary folder), run one
    synthesis, print where the outputs are and the ledger's status.

    `seed` is for tests (seeded noise, recorded as such in the ledger).
    """
    from dpsynth.jobs import run_job

    ws = Path(workspace) if workspace is not None else Path(tempfile.mkdtemp(prefix="dpsynth-demo-"))
    if generator is None:
        generator, default_params = default_generator()
        parameters = default_params if parameters is None else parameters
    echo(f"dpsynth demo: workspace {ws}")
    paths = setup_workspace(ws, n_rows=n_rows, allow_seeded_noise=seed is not None)
    echo("  made a demo table (data.csv) and its schema (schema.toml); officer, ledger and dataset keys (keys/);")
    echo(f"  a signed policy (policy.toml: epsilon {DEMO_EPSILON_TOTAL:g}, delta {DEMO_DELTA:g}) and its ledger "
         "(ledger.db)")
    job = write_job(ws / "job.toml", generator=generator, parameters=parameters or {}, epsilon=epsilon,
                    n_samples=n_samples or n_rows, seed=seed, utility_models=utility_models)
    echo(f"  running {job.name}: {generator} at epsilon {epsilon:g} ...")
    result = run_job(job, progress=lambda step: echo(f"    {step}"), show_progress=show_progress)
    echo(f"synthetic table: {result.synthetic_path}")
    echo(f"model (with {len(result.receipts)} receipts): {result.model_path}")
    echo(f"run report: {result.report_path}")
    echo(f"this run spent epsilon {result.epsilon_run:.4g} (its own events, delta {result.delta:g}); the ledger's "
         f"filter now guarantees epsilon {result.epsilon_ledger:.4g} of {result.epsilon_budget:g} for all runs so far")
    echo("")
    echo(ledger_status(paths["ledger"]))
    echo("")
    echo(f"next: dpsynth ledger verify {paths['ledger']} --officer-key {paths['officer_pub']} "
         f"--ledger-pub {paths['ledger_pub']} --receipts {result.model_path}")
    echo(f"      dpsynth model verify {result.model_path} --trust {paths['officer_pub']} --ledger {paths['ledger']} "
         "--rederive" if generator in ("mst", "aim", "independent") else
         f"      dpsynth model verify {result.model_path} --trust {paths['officer_pub']} --ledger {paths['ledger']}")
    return DemoResult(workspace=ws, job=job, run=result, ledger=paths["ledger"])


def ledger_status(ledger: Path) -> str:
    """What `dpsynth ledger status LEDGER` prints."""
    from typer.testing import CliRunner

    from dpsynth.cli import app

    out = CliRunner().invoke(app, ["ledger", "status", str(ledger)])
    return out.output.rstrip()
