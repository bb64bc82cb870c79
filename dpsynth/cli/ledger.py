"""`dpsynth ledger …`: create, inspect, charge, export and verify a privacy ledger."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from accountant.events import event_from_json
from accountant.export import delta_costs, spend_by, to_csv, to_html, to_jsonl
from accountant.gate import Gate, init_ledger
from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.policy import parse_policy
from accountant.rdp import sum_up
from accountant.verify import verify_path, verify_snapshot

from ._common import clean_errors, fail

app = typer.Typer(help="The signed, hash-chained record of every privacy spend.", no_args_is_help=True)

LEDGER_KEY_ENV = "DPSYNTH_LEDGER_KEY"


@app.command("init")
def init(
    ledger: Path = typer.Argument(..., help="Ledger file to create (SQLite)."),
    policy: Path = typer.Option(..., "--policy", help="The signed policy TOML."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="The officer's public key."),
    ledger_key: Optional[Path] = typer.Option(None, "--ledger-key", envvar=LEDGER_KEY_ENV,
                                              help="The ledger's private key (signs every entry)."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="Policy signature (default: POLICY.sig)."),
    insecure: bool = typer.Option(False, "--insecure-development-mode",
                                  help="Accept an unsigned policy / no ledger key; every entry is marked UNSIGNED."),
) -> None:
    """Create a ledger governed by a signed policy."""
    with clean_errors():
        md = init_ledger(ledger, policy, officer_public_key=officer_key, ledger_key=ledger_key,
                         signature_path=signature, insecure=insecure)
        typer.echo(f"created {ledger}: epsilon {md.epsilon:g}, delta {md.delta:g}, filter order "
                   f"{md.filter_order:.6g}, ledger key {md.ledger_key_id}")
        if insecure:
            typer.echo("WARNING: INSECURE DEVELOPMENT MODE — entries of this ledger are UNSIGNED", err=True)


@app.command("status")
def status(
    ledger: Path = typer.Argument(..., help="Ledger file."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Budget, spend and remaining budget, per generator and per actor."""
    with clean_errors():
        store = SQLiteLedgerStore(ledger)
        snap = store.snapshot()
        store.close()
        md, entries = snap.metadata, snap.entries
        last = entries[-1] if entries else None
        spent = last.filter_total if last else 0.0
        info = {
            "entries": len(entries),
            "epsilon_budget": md.epsilon, "delta": md.delta, "relation": md.relation,
            "filter_order": md.filter_order, "filter_budget": md.filter_budget, "filter_spent": spent,
            "filter_remaining": max(0.0, md.filter_budget - spent),
            "epsilon_filter": last.epsilon_filter if last else 0.0,
            "epsilon_curve": last.epsilon_curve if last else 0.0,
            "delta_reserve": parse_policy(md.policy_toml.encode("utf-8")).delta_reserve,
            "delta_spent": sum_up(delta_costs(entries)),
            "by_generator": spend_by(entries, "generator"), "by_actor": spend_by(entries, "actor"),
            "insecure": md.insecure or any(e.insecure for e in entries),
        }
        if as_json:
            typer.echo(json.dumps(info, indent=2, sort_keys=True))
            return
        typer.echo(f"ledger {ledger}: {info['entries']} entries; budget epsilon {md.epsilon:g} at delta {md.delta:g} "
                   f"({md.relation})")
        typer.echo(f"spent: epsilon {info['epsilon_filter']:.6g} (filter guarantee), {info['epsilon_curve']:.6g} "
                   f"(full curve); RDP at order {md.filter_order:.6g}: {spent:.6g} of {md.filter_budget:.6g} "
                   f"({100 * spent / md.filter_budget:.1f} %); delta spent {info['delta_spent']:.6g} of reserve "
                   f"{info['delta_reserve']:.6g}")
        for title, key in (("generator", "by_generator"), ("actor", "by_actor")):
            for name, g in info[key].items():
                typer.echo(f"  {title} {name}: {g['entries']} entries, {100 * g['share']:.1f} % of the budget")
        if info["insecure"]:
            typer.echo("WARNING: this ledger holds UNSIGNED entries (insecure development mode)", err=True)


@app.command("charge")
def charge(
    ledger: Path = typer.Argument(..., help="Ledger file."),
    event: str = typer.Option(..., "--event",
                              help="The event as JSON, @FILE to read it from a file, or - for stdin."),
    purpose: str = typer.Option(..., "--purpose", help="Why the privacy is spent."),
    ledger_key: Optional[Path] = typer.Option(None, "--ledger-key", envvar=LEDGER_KEY_ENV,
                                              help="The ledger's private key."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who spends (default: the login name)."),
    generator: str = typer.Option("external", "--generator", help="Generator name (must be allowed)."),
    parameters: Optional[str] = typer.Option(None, "--parameters", help="Run parameters as a JSON object."),
    run_id: Optional[str] = typer.Option(None, "--run-id", help="Groups charges for the per-run cap."),
    insecure: bool = typer.Option(False, "--insecure-development-mode", help="Write an UNSIGNED entry."),
) -> None:
    """Record a spend made outside dpsynth (e.g. your own DP-SGD run) from its event JSON.

    Exits 2 (and writes nothing) when the budget or the per-run cap would be exceeded.
    """
    with clean_errors():
        text = sys.stdin.read() if event == "-" else (Path(event[1:]).read_text() if event.startswith("@") else event)
        ev = event_from_json(text)
        params = None
        if parameters is not None:
            try:
                params = json.loads(parameters)
            except json.JSONDecodeError as exc:
                fail(f"--parameters is not JSON: {exc}")
            if not isinstance(params, dict):
                fail("--parameters must be a JSON object")
        gate = Gate.open(ledger, ledger_key=ledger_key, insecure=insecure)
        receipt = gate.charge(ev, purpose=purpose, generator=generator, parameters=params, actor=actor,
                              run_id=run_id)
        gate.close()
        typer.echo(json.dumps(receipt.to_dict(), indent=2, sort_keys=True))


@app.command("export")
def export(
    ledger: Path = typer.Argument(..., help="Ledger file."),
    out: Path = typer.Option(..., "--out", help="Output file."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv or html."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="Published officer key (for the html "
                                                                           "report's verification status)."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="Published ledger public key."),
) -> None:
    """Export the ledger: JSON Lines (verifiable offline), CSV, or a self-contained HTML report."""
    with clean_errors():
        if fmt not in ("jsonl", "csv", "html"):
            fail(f"--format must be jsonl, csv or html, got {fmt!r}")
        store = SQLiteLedgerStore(ledger)
        snap = store.snapshot()
        store.close()
        if fmt == "jsonl":
            text = to_jsonl(snap)
        elif fmt == "csv":
            text = to_csv(snap)
        else:
            report = verify_snapshot(snap, officer_public_key=officer_key, ledger_public_key=ledger_pub)
            text = to_html(snap, report)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out} ({len(snap.entries)} entries, {fmt})")


@app.command("verify")
def verify(
    ledger: Path = typer.Argument(..., help="Ledger file (SQLite) or JSON Lines export."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="The officer's published public key."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="The ledger's published public key."),
    allow_insecure: bool = typer.Option(False, "--allow-insecure",
                                        help="Do not fail on unsigned (insecure development mode) entries."),
) -> None:
    """Check every signature, the hash chain, the policy signature and every running total.

    Exits 0 when everything verifies, 1 otherwise, naming the first bad entry.
    """
    with clean_errors():
        report = verify_path(ledger, officer_public_key=officer_key, ledger_public_key=ledger_pub,
                             allow_insecure=allow_insecure)
    typer.echo(report.summary(), err=not report.ok)
    raise typer.Exit(0 if report.ok else 1)
