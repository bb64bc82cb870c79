"""Offline verification of a ledger (SQLite file, PostgreSQL URL or JSON Lines export).

Checks, in order: the genesis (format, policy text against its hash, the
officer's signatures on the policy and on the genesis, both public keys against
the ones the auditor pinned), then every entry (`ledger.chain`: sequence, hash
chain, its own hash, the ledger's signature, the policy rules, every cost and
running total recomputed from the events — bit for bit — and each charge's life
cycle: released once, sealed once), then the signed head (which catches an
export or file cut short at the end), then what the auditor holds from outside
the ledger: heads pinned earlier, the officer's signed checkpoints and receipts
from model files, each of which the ledger must still hold.

The first problem found names the first bad entry; verification continues so
the report lists everything, but one edit produces one problem (the chain is
followed through the stored hashes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .checkpoint import Checkpoint, check_checkpoint
from .gate import filter_for, run_filter_for
from .genesis import genesis_is_signed_by
from .keys import Ed25519PublicKey, key_id, load_public_key, public_key_from_pem, signature_is_valid
from .ledger.chain import ChainState
from .ledger.entry import FORMAT, FORMATS, HEAD_PURPOSE
from .ledger.open_store import is_postgres_url, open_store
from .ledger.store import LedgerSnapshot, LedgerStoreError
from .policy import PolicyError, PolicySignature, is_ledger_id, parse_policy, policy_hash, verify_policy_signature
from .receipt import Receipt

__all__ = ["Problem", "VerificationReport", "verify_snapshot", "verify_path", "load_snapshot"]



@dataclass(frozen=True)
class Problem:
    """One failed check.  `sequence` is the entry's position (1-based), 0 for the
    metadata, None for the file as a whole."""

    sequence: int | None
    message: str

    def __str__(self) -> str:
        where = "file" if self.sequence is None else ("metadata" if self.sequence == 0 else f"entry #{self.sequence}")
        return f"{where}: {self.message}"


@dataclass
class VerificationReport:
    ok: bool = True
    entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    insecure_entries: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    keys_pinned: bool = False
    epsilon_filter: float = 0.0
    epsilon_curve: float = 0.0
    delta_spent: float = 0.0      # Σδ of approximation parts, recomputed from the events
    delta_reserve: float = 0.0    # the policy's budget.delta_reserve
    ledger_id: str | None = None
    genesis_hash: str | None = None
    head: tuple[int, str] | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    receipts_checked: int = 0

    def fail(self, sequence: int | None, message: str) -> None:
        self.ok = False
        self.problems.append(Problem(sequence, message))

    @property
    def first_problem(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    @property
    def first_bad_entry(self) -> int | None:
        """The sequence number of the first entry with a problem (None if none is)."""
        seqs = [p.sequence for p in self.problems if p.sequence]
        return min(seqs) if seqs else None

    def summary(self) -> str:
        lines = []
        if self.insecure_entries:
            lines.append(
                f"WARNING: INSECURE DEVELOPMENT MODE — {len(self.insecure_entries)} UNSIGNED entr"
                f"{'y' if len(self.insecure_entries) == 1 else 'ies'} (#{', #'.join(map(str, self.insecure_entries[:10]))}"
                f"{', …' if len(self.insecure_entries) > 10 else ''}): nothing proves who wrote them"
            )
        lines.extend(f"warning: {w}" for w in self.warnings)
        if self.ok:
            kinds = ", ".join(f"{v} {k}" for k, v in sorted(self.kinds.items()))
            lines.append(f"OK: {self.entries} entries verified ({kinds or 'none'}); epsilon spent "
                         f"{self.epsilon_filter:.6g} (filter), {self.epsilon_curve:.6g} (full curve); delta spent "
                         f"{self.delta_spent:.6g} of reserve {self.delta_reserve:.6g}")
            if self.ledger_id is not None and self.head is not None:
                lines.append(f"ledger {self.ledger_id}, head {self.head[0]}:{self.head[1]} (pin it: "
                             "--expect-head)")
            if self.receipts_checked:
                lines.append(f"{self.receipts_checked} receipt(s) found in the ledger, field for field")
        else:
            first = self.first_problem
            bad = self.first_bad_entry
            head = f"FAILED: first bad entry #{bad}" if bad is not None else "FAILED"
            lines.append(f"{head}: {first}")
            lines.extend(f"  {p}" for p in self.problems[1:20])
            if len(self.problems) > 20:
                lines.append(f"  … and {len(self.problems) - 20} more problems")
        return "\n".join(lines)


def _pub(key: str | os.PathLike | Ed25519PublicKey | None) -> Ed25519PublicKey | None:
    if key is None or isinstance(key, Ed25519PublicKey):
        return key
    return load_public_key(key)


def verify_snapshot(
    snapshot: LedgerSnapshot,
    *,
    officer_public_key: str | os.PathLike | Ed25519PublicKey | None = None,
    ledger_public_key: str | os.PathLike | Ed25519PublicKey | None = None,
    allow_insecure: bool = False,
    report: VerificationReport | None = None,
    head_present: bool = True,
    expect_heads: Sequence[tuple[int, str]] = (),
    checkpoints: Sequence[Checkpoint] = (),
    receipts: Sequence[Receipt] = (),
) -> VerificationReport:
    """Verify a whole ledger; pass the officer's and the ledger's published public keys.

    `expect_heads` are (sequence, hash) pairs the auditor pinned earlier (sequence 0 is
    the genesis); `checkpoints` are the officer's signed checkpoints; `receipts` are
    receipts issued by this ledger (from model files): the ledger must hold every one
    of them, or it was rolled back, re-initialised or replaced."""
    r = report if report is not None else VerificationReport()
    try:
        _verify(snapshot, r, officer_public_key=officer_public_key, ledger_public_key=ledger_public_key,
                allow_insecure=allow_insecure, head_present=head_present, expect_heads=expect_heads,
                checkpoints=checkpoints, receipts=receipts)
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError, RecursionError) as exc:
        r.fail(None, f"malformed ledger ({type(exc).__name__}: {exc})")
    return r


def _verify(snapshot: LedgerSnapshot, r: VerificationReport, *, officer_public_key, ledger_public_key,
            allow_insecure: bool, head_present: bool, expect_heads, checkpoints, receipts) -> None:
    md = snapshot.metadata
    officer_pin, ledger_pin = _pub(officer_public_key), _pub(ledger_public_key)
    r.keys_pinned = officer_pin is not None and ledger_pin is not None
    r.ledger_id = md.ledger_id
    r.genesis_hash = md.hash
    if not r.keys_pinned:
        r.warnings.append("public keys taken from the ledger itself: pass the published officer and ledger keys "
                          "to detect a ledger whose keys were swapped and every entry re-signed")

    # -- metadata (the genesis) ------------------------------------------------------------
    if md.format not in FORMATS:
        r.fail(0, f"unknown format {md.format!r} (expected {FORMAT})")
        return
    if md.is_legacy:
        r.warnings.append(f"a {md.format} ledger: no officer-signed genesis and no ledger id, so a rollback or a "
                          "re-initialisation cannot be detected from it")
    elif not is_ledger_id(md.ledger_id):
        r.fail(0, f"ledger_id {md.ledger_id!r} is not 32 lower-case hex digits")
    raw = md.policy_toml.encode("utf-8")
    if policy_hash(raw) != md.policy_sha256:
        r.fail(0, "the policy text does not match its recorded SHA-256 (policy altered)")
    try:
        policy = parse_policy(raw)
    except PolicyError as exc:
        r.fail(0, f"the recorded policy is invalid: {exc}")
        return
    for name, value, expected in (
        ("dataset_fingerprint", md.dataset_fingerprint, policy.dataset_fingerprint),
        ("relation", md.relation, policy.relation.value),
        ("epsilon", md.epsilon, policy.epsilon),
        ("delta", md.delta, policy.delta),
    ):
        if value != expected:
            r.fail(0, f"metadata {name} {value!r} differs from the policy's {expected!r}")
    if policy.ledger_id is not None and md.ledger_id != policy.ledger_id:
        r.fail(0, f"the policy governs ledger {policy.ledger_id}, but this ledger is {md.ledger_id}")
    if policy.order is not None and md.filter_order != policy.order:
        r.fail(0, f"filter order {md.filter_order!r} differs from the order the policy pins ({policy.order!r})")
    if md.insecure:
        r.warnings.append("the ledger was CREATED IN INSECURE DEVELOPMENT MODE")
        if not allow_insecure:
            r.fail(0, "ledger created in insecure development mode (its policy and entries need not be signed)")

    officer = ledger_key = None
    try:
        officer = public_key_from_pem(md.officer_public_key) if md.officer_public_key else None
        ledger_key = public_key_from_pem(md.ledger_public_key) if md.ledger_public_key else None
    except ValueError as exc:
        r.fail(0, f"unreadable public key in metadata: {exc}")
    if officer_pin is not None:
        if officer is None or key_id(officer) != key_id(officer_pin):
            r.fail(0, f"the ledger's officer key ({md.officer_key_id}) is not the published one ({key_id(officer_pin)})")
        officer = officer_pin
    if ledger_pin is not None:
        if ledger_key is None or key_id(ledger_key) != key_id(ledger_pin):
            r.fail(0, f"the ledger's signing key ({md.ledger_key_id}) is not the published one ({key_id(ledger_pin)})")
        ledger_key = ledger_pin
    if ledger_key is not None and md.ledger_key_id != key_id(ledger_key):
        r.fail(0, "metadata ledger_key_id does not match the ledger public key")
    if md.policy_signature is None or officer is None:
        if not md.insecure:
            r.fail(0, "the policy is unsigned")
    else:
        try:
            verify_policy_signature(raw, PolicySignature.from_dict(md.policy_signature), officer)
        except PolicyError as exc:
            r.fail(0, f"policy signature: {exc}")
    if not md.is_legacy and not md.insecure:
        if officer is None or not genesis_is_signed_by(md, officer):
            r.fail(0, "the genesis is not signed by the officer: the ledger was not started with the officer's "
                      "key (`dpsynth ledger init`), or its metadata was edited")
    try:
        filt = filter_for(md, policy)
    except ValueError as exc:
        r.fail(0, f"filter cannot be rebuilt: {exc}")
        return
    if filt.budget != md.filter_budget:
        r.fail(0, f"filter budget {md.filter_budget!r} is not the budget of the policy at order {filt.order!r}")
    r.delta_reserve = filt.delta_reserve
    try:
        state = ChainState(md, policy, filt, run_filter_for(policy), None if md.insecure else ledger_key)
    except (TypeError, ValueError) as exc:
        r.fail(0, f"curve_orders is not a grid of Rényi orders: {exc}")
        return

    # -- entries ----------------------------------------------------------------------------
    for position, e in enumerate(snapshot.entries, start=1):
        r.entries = position
        if e.insecure:
            r.insecure_entries.append(position)
        for problem in state.apply(e):
            r.fail(position, problem)
        r.kinds[e.kind] = r.kinds.get(e.kind, 0) + 1
    r.delta_spent = state.delta_spent
    r.epsilon_filter, r.epsilon_curve = state.epsilon_filter, state.epsilon_curve
    opened = sorted(s for s, life in state.lifecycle.items() if life == "open")
    if opened:
        r.warnings.append(f"session(s) opened but never closed by a release (their run stopped early): "
                          f"#{', #'.join(map(str, opened))}")

    # -- head -------------------------------------------------------------------------------
    n = len(snapshot.entries)
    h = snapshot.head
    if not head_present:
        r.fail(n + 1, "no signed head record at the end: the export is truncated")
        return
    if h.sequence != n or h.entry_hash != state.prev_hash:
        if h.sequence > n:
            r.fail(n + 1, f"the signed head records {h.sequence} entries but only {n} are present: "
                          "the ledger was truncated")
        else:
            r.fail(max(h.sequence, 0) + 1, f"the signed head points at entry {h.sequence}, but the ledger holds "
                                           f"{n} entries ending in another hash")
    if md.insecure:
        pass
    elif md.is_legacy and n and snapshot.entries[-1].insecure:
        pass  # format 1 allowed an unsigned tail; the entries' own problems report it
    elif n > 0:
        if ledger_key is None or not signature_is_valid(ledger_key, HEAD_PURPOSE, h.message(), h.signature):
            r.fail(None, "the head's signature does not verify")
    r.head = (h.sequence, h.entry_hash)

    # -- what the auditor holds from outside the ledger --------------------------------------------
    def holds(sequence: int, entry_hash: str) -> bool:
        if sequence == 0:
            return entry_hash == md.hash
        return 1 <= sequence <= n and snapshot.entries[sequence - 1].entry_hash == entry_hash

    for seq, expected in expect_heads:
        if not holds(seq, expected):
            r.fail(None, f"the ledger does not extend the pinned head {seq}:{expected[:16]}…: it was rolled back, "
                         "rewritten or re-initialised")
    for cp in checkpoints:
        for problem in check_checkpoint(cp, md, officer):
            r.fail(None, problem)
        if cp.ledger_id == md.ledger_id and not holds(cp.sequence, cp.entry_hash):
            r.fail(None, f"the ledger does not extend the officer's checkpoint at #{cp.sequence} "
                         f"({cp.created}): it was rolled back, rewritten or re-initialised")
    for receipt in receipts:
        # Only a receipt signed by this ledger's key proves anything: a forged one is set aside
        # (a false alarm would let anyone with the public fingerprint fail an honest ledger).
        signed = False
        if ledger_key is not None and receipt.ledger_key_id == key_id(ledger_key):
            try:
                receipt.verify(ledger_key)
                signed = True
            except (ValueError, TypeError):
                signed = False
        if not signed:
            r.warnings.append(f"receipt #{receipt.sequence} ({receipt.ledger_id}) is not signed by this ledger's key; "
                              "set aside (it proves nothing here)")
            continue
        if receipt.ledger_id != md.ledger_id:
            if receipt.dataset_fingerprint == md.dataset_fingerprint:
                r.fail(None, f"receipt #{receipt.sequence} for this dataset was issued by ledger {receipt.ledger_id}, "
                             f"not by this ledger {md.ledger_id}: the budget's record was re-initialised or "
                             "replaced")
            else:
                r.warnings.append(f"receipt #{receipt.sequence} belongs to another ledger ({receipt.ledger_id}); "
                                  "not checked here")
            continue
        r.receipts_checked += 1
        if not (1 <= receipt.sequence <= n) or snapshot.entries[receipt.sequence - 1] != receipt.entry():
            r.fail(None, f"receipt #{receipt.sequence} ({receipt.entry_hash[:16]}…) was issued by this ledger but "
                         "the ledger does not hold it: the ledger was rolled back or rewritten")


def load_snapshot(path: str | os.PathLike) -> tuple[LedgerSnapshot | None, list[Problem], bool]:
    """Read a ledger (SQLite file, JSON Lines export or PostgreSQL URL): (snapshot or None,
    read problems, head present)."""
    if is_postgres_url(path):
        try:
            store = open_store(path)
        except ValueError as exc:
            return None, [Problem(None, str(exc))], False
        try:
            return store.snapshot(), [], True
        except LedgerStoreError as exc:
            return None, [Problem(None, f"ledger unreadable: {exc}")], False
        finally:
            store.close()
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        return None, [Problem(None, f"cannot read {p}: {exc.strerror}")], False
    if magic.startswith(b"SQLite format 3"):
        store = open_store(p)
        try:
            return store.snapshot(), [], True
        except LedgerStoreError as exc:
            return None, [Problem(None, f"ledger file unreadable (truncated or corrupt): {exc}")], False
        finally:
            store.close()
    from .export import read_jsonl

    return read_jsonl(p)


def verify_path(path: str | os.PathLike, **kwargs: Any) -> VerificationReport:
    """Verify a ledger file or export; see `verify_snapshot` for the keyword arguments."""
    report = VerificationReport()
    snapshot, problems, head_present = load_snapshot(path)
    for pr in problems:
        report.fail(pr.sequence, pr.message)
    if snapshot is None:
        return report
    return verify_snapshot(snapshot, report=report, head_present=head_present, **kwargs)
