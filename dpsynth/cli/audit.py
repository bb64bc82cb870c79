"""`dpsynth audit`: an empirical privacy audit of one generator configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from ._common import clean_errors, fail

__all__ = ["audit"]


def _param(text: str) -> tuple[str, object]:
    """k=v, v read as JSON when it parses (numbers, lists, true/false), else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        fail(f"--param must be NAME=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except (json.JSONDecodeError, RecursionError):
        parsed = value
    return key.strip(), parsed


def audit(
    generator: str = typer.Argument(..., help="The generator to audit (mst, aim, independent, dpctgan, pategan)."),
    epsilon: float = typer.Option(..., "--epsilon", help="The claimed ε of one fit (what the ledger charges)."),
    runs: int = typer.Option(200, "--runs", help="Fits per world (half choose the threshold, half bound ε)."),
    out: Path = typer.Option(..., "--out", help="Output folder: results.jsonl, summary.json, report.html."),
    param: Optional[List[str]] = typer.Option(None, "--param", help="A generator parameter NAME=VALUE (VALUE as "
                                                                    "JSON when it parses); repeatable."),
    delta: Optional[float] = typer.Option(None, "--delta", help="The policy's δ (default 1e-5, or --policy's)."),
    relation: Optional[str] = typer.Option(None, "--relation", help="add_or_remove_one (default) or replace_one "
                                                                    "(or --policy's)."),
    policy: Optional[Path] = typer.Option(None, "--policy", help="Read δ and the neighbouring relation from this "
                                                                 "policy file (only read: no ledger is opened)."),
    n_synth: int = typer.Option(1000, "--n-synth", help="Synthetic rows per fit."),
    alpha: float = typer.Option(0.05, "--alpha", help="Total one-sided error of the bounds."),
    jobs: Optional[int] = typer.Option(None, "--jobs", help="Worker processes (default: every core)."),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT/results.jsonl (same configuration only)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="TESTS ONLY: seeded noise (audit ledgers allow it)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Fit GENERATOR --runs times on each of two worst-case neighbouring made-up tables and
    bound its privacy loss from below (black-box and, where the mechanism allows, white-box
    statistics).  Every fit is charged to an audit ledger made for the audit; no governed data
    is read and no governed budget is spent.  Exit 3 when the audit flags a leak."""
    from dpsynth.audit import audit as run_audit

    with clean_errors():
        params = dict(_param(p) for p in (param or []))
        if policy is not None:
            from accountant.policy import load_policy

            pol = load_policy(policy)
            if delta is None:
                delta = pol.delta
            if relation is None:
                relation = pol.relation.value
        result = run_audit(generator, epsilon=epsilon, runs=runs, out=out, params=params,
                           delta=1e-5 if delta is None else delta, relation=relation or "add_or_remove_one",
                           n_synth=n_synth, alpha=alpha, jobs=jobs, resume=resume, seed=seed, progress=not quiet)
        s = result.summary
        for name, st in s["statistics"].items():
            gdp = "" if st["eps_lb_gdp"] is None else f", GDP mu_lb {st['mu_lb']:.3f} (eps {st['eps_lb_gdp']:.3f})"
            typer.echo(f"{st['kind']} ({name}): eps_lb {st['eps_lb']:.3f} (ceiling {st['ceiling']:.3f}){gdp}, "
                       f"AUC {st['auc']:.3f}")
        typer.echo(f"claim: eps {s['claim']['epsilon']:g} at delta {s['claim']['delta']:g}; "
                   f"{s['runs_per_world']} fits per world, charged to audit ledgers (no governed data)")
        if not s["can_exceed_claim"]:
            typer.echo(f"WARNING: {s['eval_runs_per_world']} evaluation fits per world cannot bound eps above "
                       f"{s['ceiling']:.3f} <= the claim: run more", err=True)
        typer.echo(f"report: {result.report}")
        if result.flagged:
            for r in s["reasons"]:
                typer.echo(f"FLAGGED: {r}", err=True)
            raise typer.Exit(3)
        typer.echo("passed: no lower bound exceeds the claim (a lower bound, not a proof)")
