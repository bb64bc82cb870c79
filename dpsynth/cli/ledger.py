"""`dpsynth ledger …`: create, inspect, charge, export and verify a privacy ledger."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer

from accountant.events import event_from_json
from accountant.export import delta_costs, spend_by, to_csv, to_html, to_jsonl
from accountant.gate import Gate, filter_for, init_ledger
from accountant.ledger.open_store import describe_location, open_store
from accountant.policy import parse_policy
from accountant.rdp import sum_up
from accountant.verify import verify_path, verify_snapshot
from accountant.words import budget_words

from ._common import clean_errors, fail

app = typer.Typer(help="The signed, hash-chained record of every privacy spend.", no_args_is_help=True)

LEDGER_KEY_ENV = "DPSYNTH_LEDGER_KEY"


@contextlib.contextmanager
def _malformed(ledger: str) -> Iterator[None]:
    """A crafted ledger (a field of the wrong type, a zero budget) is reported, not a traceback:
    the figures of `status` and `export` are computed from fields nobody has verified yet."""
    try:
        yield
    except (TypeError, AttributeError, ArithmeticError, KeyError, RecursionError) as exc:
        shown = describe_location(ledger)
        fail(f"{shown}: malformed ledger ({type(exc).__name__}: {exc}); run `dpsynth ledger verify {shown}`")


def _snapshot(ledger: str):
    store = open_store(ledger)
    try:
        return store.snapshot()
    finally:
        store.close()


_LEDGER_HELP = "Ledger file (SQLite), or postgresql://USER@HOST/DB#ledger=NAME."


@app.command("init")
def init(
    ledger: str = typer.Argument(..., help="Ledger file to create (SQLite), or a PostgreSQL URL "
                                           "postgresql://USER@HOST/DB#ledger=NAME (default name: default)."),
    policy: Path = typer.Option(..., "--policy", help="The signed policy TOML."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key",
                                               help="The officer's PRIVATE key: it must have signed the policy, "
                                                    "and it signs the ledger's genesis."),
    ledger_key: Optional[Path] = typer.Option(None, "--ledger-key",
                                              help="The ledger's key (its .pub, or the private key file): the "
                                                   "key every entry will be signed with."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="Policy signature (default: POLICY.sig)."),
    ledger_id: Optional[str] = typer.Option(None, "--ledger-id", help="The ledger id (default: the policy's "
                                                                      "ledger_id, else a fresh random id)."),
    insecure: bool = typer.Option(False, "--insecure-development-mode",
                                  help="Accept an unsigned policy / no keys; every entry is marked UNSIGNED."),
) -> None:
    """Start a ledger governed by a signed policy (the officer's step: it needs the officer's key)."""
    import warnings

    from accountant.gate import InsecureModeWarning

    with clean_errors(), warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureModeWarning)
        md = init_ledger(ledger, policy, officer_key=officer_key, ledger_key=ledger_key,
                         signature_path=signature, insecure=insecure, ledger_id=ledger_id)
        typer.echo(f"created {describe_location(ledger)}: ledger {md.ledger_id}, epsilon {md.epsilon:g}, delta {md.delta:g}, filter "
                   f"order {md.filter_order:.6g}, ledger key {md.ledger_key_id}")
        typer.echo(f"genesis {md.hash} (signed by the officer, {md.officer_key_id})")
        if insecure:
            typer.echo("WARNING: INSECURE DEVELOPMENT MODE — entries of this ledger are UNSIGNED", err=True)


@app.command("new-id")
def new_id() -> None:
    """Print a fresh random ledger id (for a policy's `ledger_id`)."""
    from accountant.policy import new_ledger_id

    typer.echo(new_ledger_id())


@app.command("status")
def status(
    ledger: str = typer.Argument(..., help=_LEDGER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Budget, spend and remaining budget, per generator and per actor."""
    with clean_errors(), _malformed(ledger):
        snap = _snapshot(ledger)
        md, entries = snap.metadata, snap.entries
        check = verify_snapshot(snap)
        last = entries[-1] if entries else None
        spent = last.filter_total if last else 0.0
        policy = parse_policy(md.policy_toml.encode("utf-8"))
        words = budget_words(filter_for(md, policy), [spent] if spent else [],
                             max_epsilon_per_run=policy.max_epsilon_per_run)
        info = {
            "used_fraction": words["used_fraction"], "remaining_fraction": words["remaining_fraction"],
            "next_marginal_run_epsilon": words["next_marginal_epsilon"],
            "in_words": f"{words.headline}; {words.next_run}",
            "entries": len(entries),
            "epsilon_budget": md.epsilon, "delta": md.delta, "relation": md.relation,
            "filter_order": md.filter_order, "filter_budget": md.filter_budget, "filter_spent": spent,
            "filter_remaining": max(0.0, md.filter_budget - spent),
            "epsilon_filter": last.epsilon_filter if last else 0.0,
            "epsilon_curve": last.epsilon_curve if last else 0.0,
            "delta_reserve": policy.delta_reserve,
            "delta_spent": sum_up(delta_costs(entries)),
            "by_generator": spend_by(entries, "generator"), "by_actor": spend_by(entries, "actor"),
            "insecure": md.insecure or any(e.insecure for e in entries),
            "ledger_id": md.ledger_id, "verifies": check.ok,
            "head": [snap.head.sequence, snap.head.entry_hash],
        }
        if as_json:
            typer.echo(json.dumps(info, indent=2, sort_keys=True))
            return
        typer.echo(f"ledger {describe_location(ledger)}: {info['entries']} entries; budget epsilon {md.epsilon:g} at delta {md.delta:g} "
                   f"({md.relation})")
        typer.echo(f"budget: {words.headline}; {words.next_run}")
        typer.echo(f"detail: epsilon {info['epsilon_filter']:.6g} (filter guarantee), {info['epsilon_curve']:.6g} "
                   f"(full curve); RDP at order {md.filter_order:.6g}: {spent:.6g} of {md.filter_budget:.6g} "
                   f"({100 * spent / md.filter_budget:.1f} %); delta spent {info['delta_spent']:.6g} of reserve "
                   f"{info['delta_reserve']:.6g}")
        for title, key in (("generator", "by_generator"), ("actor", "by_actor")):
            for name, g in info[key].items():
                typer.echo(f"  {title} {name}: {g['entries']} charges, {100 * g['share']:.1f} % of the budget")
        typer.echo(f"ledger id {md.ledger_id}; head {snap.head.sequence}:{snap.head.entry_hash}")
        if info["insecure"]:
            typer.echo("WARNING: this ledger holds UNSIGNED entries (insecure development mode)", err=True)
        if not check.ok:
            typer.echo(f"WARNING: this ledger does NOT verify (its figures cannot be trusted): {check.first_problem}",
                       err=True)


@app.command("charge")
def charge(
    ledger: str = typer.Argument(..., help=_LEDGER_HELP),
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
            except RecursionError:  # nested deeper than the parser recurses: an error, not a crash
                fail("--parameters nests too deeply")
            if not isinstance(params, dict):
                fail("--parameters must be a JSON object")
        import warnings

        from accountant.gate import InsecureModeWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureModeWarning)
            gate = Gate.open(ledger, ledger_key=ledger_key, insecure=insecure)
        if insecure:
            typer.echo("WARNING: INSECURE DEVELOPMENT MODE — this entry is UNSIGNED", err=True)
        try:
            receipt = gate.charge(ev, purpose=purpose, generator=generator, parameters=params, actor=actor,
                                  run_id=run_id)
        finally:
            gate.close()
        typer.echo(json.dumps(receipt.to_dict(), indent=2, sort_keys=True))


@app.command("export")
def export(
    ledger: str = typer.Argument(..., help=_LEDGER_HELP),
    out: Path = typer.Option(..., "--out", help="Output file."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv or html."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="Published officer key (for the html "
                                                                           "report's verification status)."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="Published ledger public key."),
) -> None:
    """Export the ledger: JSON Lines (verifiable offline), CSV, or a self-contained HTML report."""
    with clean_errors(), _malformed(ledger):
        if fmt not in ("jsonl", "csv", "html"):
            fail(f"--format must be jsonl, csv or html, got {fmt!r}")
        snap = _snapshot(ledger)
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
    ledger: str = typer.Argument(..., help="Ledger file (SQLite), JSON Lines export, or "
                                           "postgresql://USER@HOST/DB#ledger=NAME."),
    officer_key: Optional[Path] = typer.Option(None, "--officer-key", help="The officer's published public key."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="The ledger's published public key."),
    expect_head: list[str] = typer.Option([], "--expect-head", help="SEQ:HASH of a head you pinned earlier "
                                                                     "(repeatable; 0:HASH is the genesis)."),
    checkpoint: list[Path] = typer.Option([], "--checkpoint", help="An officer-signed checkpoint file "
                                                                   "(repeatable)."),
    receipts: list[Path] = typer.Option([], "--receipts", help="A model file, a receipts JSON file or a folder "
                                                               "of them (repeatable): the ledger must hold "
                                                               "every receipt it issued."),
    allow_insecure: bool = typer.Option(False, "--allow-insecure",
                                        help="Accept a ledger CREATED in insecure development mode (unsigned "
                                             "entries of a secure ledger always fail)."),
) -> None:
    """Check every signature, the hash chain, the genesis, every running total, and that the
    ledger still holds every head, checkpoint and receipt you give it.

    Exits 0 when everything verifies, 1 otherwise, naming the first bad entry.
    """
    from accountant.checkpoint import read_checkpoint

    from ..generators.receipt_files import collect_receipts

    with clean_errors():
        heads = [_head(text) for text in expect_head]
        cps = [read_checkpoint(p) for p in checkpoint]
        found, skipped = collect_receipts(receipts)
        report = verify_path(ledger, officer_public_key=officer_key, ledger_public_key=ledger_pub,
                             allow_insecure=allow_insecure, expect_heads=heads, checkpoints=cps, receipts=found)
        report.warnings.extend(skipped)
    typer.echo(report.summary(), err=not report.ok)
    raise typer.Exit(0 if report.ok else 1)


def _head(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    try:
        n = int(seq)
    except ValueError:
        n = -1
    if n < 0 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        fail(f"--expect-head must be SEQ:HASH (a sequence number and a 64-hex-digit hash), got {text!r}")
    return n, digest


@app.command("checkpoint")
def checkpoint(
    ledger: str = typer.Argument(..., help="Ledger file (SQLite), JSON Lines export, or "
                                           "postgresql://USER@HOST/DB#ledger=NAME."),
    officer_key: Path = typer.Option(..., "--officer-key", help="The officer's PRIVATE key (signs the checkpoint)."),
    out: Path = typer.Option(..., "--out", help="Checkpoint file to write (JSON)."),
    ledger_pub: Optional[Path] = typer.Option(None, "--ledger-pub", help="The ledger's published public key."),
) -> None:
    """Verify the ledger, then sign its head with the officer's key: publish the file, and
    `verify --checkpoint` will fail on any ledger that no longer holds that head."""
    from accountant.checkpoint import make_checkpoint, write_checkpoint
    from accountant.keys import load_private_key
    from accountant.verify import load_snapshot

    with clean_errors():
        key = load_private_key(officer_key)
        snapshot, problems, head_present = load_snapshot(ledger)
        if snapshot is None:
            fail(f"{describe_location(ledger)}: {problems[0] if problems else 'unreadable'}")
        report = verify_snapshot(snapshot, officer_public_key=key.public_key(), ledger_public_key=ledger_pub,
                                 head_present=head_present)
        for p in problems:
            report.fail(p.sequence, p.message)
        if not report.ok:
            fail(f"{describe_location(ledger)} does not verify, so it is not checkpointed: {report.first_problem}")
        cp = make_checkpoint(snapshot, key)
        write_checkpoint(cp, out)
        typer.echo(f"checkpoint {out}: ledger {cp.ledger_id} at #{cp.sequence} ({cp.entry_hash}), signed by "
                   f"{cp.officer_key_id}")
