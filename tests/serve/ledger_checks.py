"""What a served ledger must satisfy after faults, races and attacks, checked from the
entries themselves (not from what the service says about them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from accountant.receipt import Receipt
from accountant.verify import verify_path, verify_snapshot
from dpsynth.remote.protocol import decode_answer
from dpsynth.table.commitments import release_digest

from .support import read_snapshot

__all__ = ["Answer", "check_ledger", "verify_ledger"]


@dataclass
class Answer:
    """One answer a client received: who asked, under which request id, what came back."""
    person: str
    request_id: str
    kind: str
    answer: Any
    receipts: list[dict] = field(default_factory=list)


def verify_ledger(paths: dict[str, Path], location: Any = None) -> None:
    """The full offline verification (`dpsynth ledger verify`) under the pinned keys."""
    location = paths["ledger"] if location is None else location
    if isinstance(location, str) and "://" in location:
        from accountant.keys import load_public_key

        report = verify_snapshot(read_snapshot(location), officer_public_key=load_public_key(paths["officer_pub"]),
                                 ledger_public_key=load_public_key(paths["ledger_pub"]))
    else:
        report = verify_path(location, officer_public_key=paths["officer_pub"], ledger_public_key=paths["ledger_pub"])
    assert report.ok, report.summary()


def check_ledger(paths: dict[str, Path], answers: Iterable[Answer] = (), *, sent: dict[str, str] | None = None,
                 failed: Iterable[str] = (), location: Any = None, verify: bool = True) -> Any:
    """Every invariant of a served ledger; returns the snapshot.

    * it verifies (signatures, chain, recomputed costs and totals, signed head);
    * sequences are 1..N with no gap or repeat, and no entry's filter total is above the budget;
    * each (person, request id) has at most one charge; a release names one charge, made before it,
      and no charge is released twice;
    * every answer a client received is in the ledger field for field (its receipts are the
      entries' receipts), its release commits to exactly that answer, and its charge is in the
      name of the person who asked, under the request id they sent;
    * with `sent` (request id -> person): every charge under a request id is in the name of the
      person who sent it, and each is released unless the request is in `failed` (a client saw a
      failure for it).
    """
    if verify:
        verify_ledger(paths, location)
    snap = read_snapshot(paths["ledger"] if location is None else location)
    entries = list(snap.entries)
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1)), "sequences are not contiguous"
    assert snap.head.sequence == len(entries)
    for e in entries:
        assert e.filter_total <= e.filter_budget, f"entry #{e.sequence} is above the budget"
    by_seq = {e.sequence: e for e in entries}
    charges = [e for e in entries if e.kind == "charge"]
    keyed = Counter((e.actor, e.request_id) for e in charges if e.request_id is not None)
    twice = [k for k, n in keyed.items() if n > 1]
    assert not twice, f"request ids charged twice: {twice[:5]}"
    released: dict[int, Any] = {}
    for e in entries:
        if e.kind != "release":
            continue
        assert len(e.refs) == 1, f"release #{e.sequence} names {e.refs}"
        ref = by_seq.get(e.refs[0])
        assert ref is not None and ref.kind == "charge" and ref.sequence < e.sequence, f"release #{e.sequence}"
        assert ref.sequence not in released, f"charge #{ref.sequence} released twice"
        released[ref.sequence] = e
    for a in answers:
        got = [Receipt.from_dict(r) for r in a.receipts]
        assert [r.kind for r in got] == ["charge", "release"], a
        for r in got:
            stored = by_seq.get(r.sequence)
            assert stored is not None, f"receipt #{r.sequence} is not in the ledger"
            assert Receipt.of_entry(stored).to_dict() == r.to_dict(), f"receipt #{r.sequence} differs from its entry"
        charge, release = got
        assert charge.actor == a.person and charge.request_id == a.request_id, (charge.actor, charge.request_id, a)
        assert release.refs == [charge.sequence] and released.get(charge.sequence) is not None
        assert released[charge.sequence].entry_hash == release.entry_hash
        assert release.commitment == release_digest(decode_answer(a.kind, a.answer)), \
            f"the answer to {a.request_id} is not the one its release commits to"
    if sent is not None:
        failed = set(failed)
        for e in charges:
            if e.request_id is None or e.request_id not in sent:
                continue
            assert e.actor == sent[e.request_id], f"charge #{e.sequence} is {e.actor}'s, sent by {sent[e.request_id]}"
            assert e.run_id is None or e.run_id.startswith(e.actor + "/"), e.run_id
            if e.request_id not in failed:
                assert e.sequence in released, f"charge #{e.sequence} ({e.request_id}) was never released"
    return snap
