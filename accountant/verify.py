"""Offline verification of a ledger (SQLite file or JSON Lines export).

Checks, in order: the metadata (format, policy text against its hash, the
officer's signature on the policy, both public keys against the ones the
auditor pinned), then every entry (sequence, hash chain, its own hash, the
ledger's signature, the policy rules, and every cost and running total
recomputed from the events — bit for bit, with `math.fsum`), then the signed
head (which catches an export or file cut short at the end).

The first problem found names the first bad entry; verification continues so
the report lists everything, but one edit produces one problem (the chain is
followed through the stored hashes).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .accountant import RDPAccountant
from .events import event_from_json
from .gate import filter_for, full_curve_epsilon, run_filter_for
from .keys import Ed25519PublicKey, key_id, load_public_key, public_key_from_pem, signature_is_valid
from .ledger.entry import ENTRY_PURPOSE, FORMAT, HEAD_PURPOSE, NOISE_SOURCES, Entry
from .ledger.sqlite import SQLiteLedgerStore
from .ledger.store import LedgerSnapshot, LedgerStoreError
from .policy import PolicyError, PolicySignature, parse_policy, policy_hash, verify_policy_signature
from .rdp import event_rdp, split, sum_up

__all__ = ["Problem", "VerificationReport", "verify_snapshot", "verify_path", "load_snapshot"]

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ$")


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
            lines.append(f"OK: {self.entries} entries verified; epsilon spent {self.epsilon_filter:.6g} (filter), "
                         f"{self.epsilon_curve:.6g} (full curve); delta spent {self.delta_spent:.6g} of "
                         f"reserve {self.delta_reserve:.6g}")
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
) -> VerificationReport:
    """Verify a whole ledger; pass the officer's and the ledger's published public keys."""
    r = report if report is not None else VerificationReport()
    md = snapshot.metadata
    officer_pin, ledger_pin = _pub(officer_public_key), _pub(ledger_public_key)
    r.keys_pinned = officer_pin is not None and ledger_pin is not None
    if not r.keys_pinned:
        r.warnings.append("public keys taken from the ledger itself: pass the published officer and ledger keys "
                          "to detect a ledger whose keys were swapped and every entry re-signed")

    # -- metadata -----------------------------------------------------------------------
    if md.format != FORMAT:
        r.fail(0, f"unknown format {md.format!r} (expected {FORMAT})")
    raw = md.policy_toml.encode("utf-8")
    if policy_hash(raw) != md.policy_sha256:
        r.fail(0, "the policy text does not match its recorded SHA-256 (policy altered)")
    try:
        policy = parse_policy(raw)
    except PolicyError as exc:
        r.fail(0, f"the recorded policy is invalid: {exc}")
        return r
    for name, value, expected in (
        ("dataset_fingerprint", md.dataset_fingerprint, policy.dataset_fingerprint),
        ("relation", md.relation, policy.relation.value),
        ("epsilon", md.epsilon, policy.epsilon),
        ("delta", md.delta, policy.delta),
    ):
        if value != expected:
            r.fail(0, f"metadata {name} {value!r} differs from the policy's {expected!r}")
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
    try:
        filt = filter_for(md, policy)
    except ValueError as exc:
        r.fail(0, f"filter cannot be rebuilt: {exc}")
        return r
    if filt.budget != md.filter_budget:
        r.fail(0, f"filter budget {md.filter_budget!r} is not the budget of the policy at order {filt.order!r}")
    run_filter = run_filter_for(policy)
    orders = md.curve_orders
    r.delta_reserve = filt.delta_reserve

    # -- entries ------------------------------------------------------------------------
    expected_prev = md.hash
    costs: list[float] = []
    delta_costs: list[float] = []
    run_costs: dict[str, list[float]] = {}
    try:
        accountant = RDPAccountant(policy.relation, orders=orders)
    except (TypeError, ValueError) as exc:
        r.fail(0, f"curve_orders is not a grid of Rényi orders: {exc}")
        return r
    last_time = ""
    for position, e in enumerate(snapshot.entries, start=1):
        r.entries = position

        def bad(msg: str, _p: int = position) -> None:
            r.fail(_p, msg)

        if e.sequence != position:
            bad(f"holds sequence number {e.sequence!r}: an entry was deleted, inserted or reordered")
        if e.prev_hash != expected_prev:
            bad("prev_hash does not match the previous entry's hash: the chain is broken here "
                "(an entry before it was deleted, inserted or reordered)")
        if e.compute_hash() != e.entry_hash:
            bad("its content does not match its hash: a field was edited")
        expected_prev = e.entry_hash
        if e.insecure:
            r.insecure_entries.append(position)
            if not allow_insecure:
                bad("UNSIGNED: written in insecure development mode")
        elif ledger_key is None:
            bad("signed, but the ledger has no public key to check it")
        else:
            if e.ledger_key_id != key_id(ledger_key):
                bad(f"signed by key {e.ledger_key_id}, not by the ledger key {key_id(ledger_key)}")
            if not signature_is_valid(ledger_key, ENTRY_PURPOSE, e.entry_hash.encode(), e.signature):
                bad("signature does not verify under the ledger's public key")
        for name, value, expected in (
            ("policy_sha256", e.policy_sha256, md.policy_sha256),
            ("dataset_fingerprint", e.dataset_fingerprint, md.dataset_fingerprint),
            ("relation", e.relation, md.relation),
            ("delta", e.delta, md.delta),
            ("filter_order", e.filter_order, filt.order),
            ("filter_budget", e.filter_budget, filt.budget),
        ):
            if value != expected:
                bad(f"{name} {value!r} differs from the ledger's {expected!r}")
        if not isinstance(e.timestamp, str) or not _TIMESTAMP.match(e.timestamp):
            bad(f"timestamp {e.timestamp!r} is not a minute-resolution UTC time")
        elif e.timestamp < last_time:
            bad(f"timestamp {e.timestamp} is earlier than the previous entry's {last_time}")
        else:
            last_time = e.timestamp
        if e.noise_source not in NOISE_SOURCES:
            bad(f"noise_source {e.noise_source!r} is not one of {NOISE_SOURCES}")
        elif e.noise_source == "seeded-test" and not policy.allow_seeded_noise:
            bad("uses seeded-test noise, which the policy does not allow")
        if not policy.allows_generator(e.generator):
            bad(f"generator {e.generator!r} is not allowed by the policy")
        try:
            event = event_from_json(e.event)
        except (ValueError, TypeError) as exc:
            bad(f"event does not parse: {exc}")
            continue
        if event.to_json() != e.event:
            bad("event JSON is not canonical")
        if any(leaf.relation is not policy.relation for leaf, _ in event.leaves()):
            bad("event is analysed under another neighbouring relation than the policy's")
            continue
        cost = filt.cost(event)
        if cost != e.cost:
            bad(f"cost {e.cost!r} differs from the event's RDP at order {filt.order!r}: {cost!r}")
        if math.fsum(split(event).rho_terms) != e.rho:
            bad(f"rho {e.rho!r} differs from the event's zCDP part")
        if [float(x) for x in event_rdp(event, orders)] != list(e.curve):
            bad("curve differs from the event's RDP curve")
        costs.append(cost)
        total = filt.total(costs)
        if total != e.filter_total:
            bad(f"running total {e.filter_total!r} differs from the recomputed {total!r}")
        if total > filt.budget:
            bad(f"running total {total!r} is above the budget {filt.budget!r}: the filter would have refused it")
        # The δ part has no stored field: it is recomputed from the signed event JSON.
        delta_cost = filt.delta_cost(event)
        if delta_cost > 0 and not filt.admits_delta(delta_costs, delta_cost):
            bad(f"its approximation delta {delta_cost!r} takes the delta spent over the policy's "
                f"budget.delta_reserve = {filt.delta_reserve!r}: the filter would have refused it")
        delta_costs.append(delta_cost)
        r.delta_spent = sum_up(delta_costs)
        eps_f = filt.epsilon_spent(costs)
        if eps_f != e.epsilon_filter:
            bad(f"epsilon_filter {e.epsilon_filter!r} differs from the recomputed {eps_f!r}")
        accountant.compose(event)
        eps_c = full_curve_epsilon(accountant, md.delta)
        if eps_c != e.epsilon_curve:
            bad(f"epsilon_curve {e.epsilon_curve!r} differs from the recomputed {eps_c!r}")
        r.epsilon_filter, r.epsilon_curve = eps_f, eps_c
        if run_filter is not None and e.run_id is not None:
            rc = run_costs.setdefault(e.run_id, [])
            rc.append(run_filter.cost(event))
            if run_filter.total(rc) > run_filter.budget:
                bad(f"run {e.run_id!r} exceeds the policy's max_epsilon_per_run")

    # -- head -----------------------------------------------------------------------------
    n = len(snapshot.entries)
    h = snapshot.head
    if not head_present:
        r.fail(n + 1, "no signed head record at the end: the export is truncated")
        return r
    if h.sequence != n or h.entry_hash != expected_prev:
        if h.sequence > n:
            r.fail(n + 1, f"the signed head records {h.sequence} entries but only {n} are present: "
                          "the ledger was truncated")
        else:
            r.fail(max(h.sequence, 0) + 1, f"the signed head points at entry {h.sequence}, but the ledger holds "
                                           f"{n} entries ending in another hash")
    if ledger_key is not None and not (md.insecure or (n and snapshot.entries[-1].insecure)):
        if not signature_is_valid(ledger_key, HEAD_PURPOSE, h.message(), h.signature):
            r.fail(None, "the head's signature does not verify")
    return r


def load_snapshot(path: str | os.PathLike) -> tuple[LedgerSnapshot | None, list[Problem], bool]:
    """Read a ledger file (SQLite or JSON Lines): (snapshot or None, read problems, head present)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            magic = fh.read(16)
    except OSError as exc:
        return None, [Problem(None, f"cannot read {p}: {exc.strerror}")], False
    if magic.startswith(b"SQLite format 3"):
        store = SQLiteLedgerStore(p)
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
