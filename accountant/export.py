"""Exports for auditors: JSON Lines (verifiable offline), CSV (flat), HTML report.

JSON Lines layout — one JSON object per line, canonical JSON:

    {"record": "metadata", ...LedgerMetadata fields...}
    {"record": "entry", ...Entry fields incl. entry_hash and signature...}   (one per entry)
    {"record": "head", "sequence": n, "entry_hash": ..., "signature": ...}

The last line is the ledger's signed head, so an export cut short is detected.
`dpsynth ledger verify export.jsonl` checks it exactly like the SQLite file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from .ledger.entry import Entry, Head, LedgerMetadata
from .ledger.hashing import canonical_json
from .ledger.store import LedgerSnapshot
from .rdp import sum_up

__all__ = ["to_jsonl", "read_jsonl", "to_csv", "to_html", "spend_by", "delta_costs", "CSV_COLUMNS"]


def delta_costs(entries: Iterable[Entry]) -> list[float]:
    """Each entry's approximation δ, recomputed from its event JSON (no stored field)."""
    from .events import event_from_json
    from .rdp import event_delta

    return [event_delta(event_from_json(e.event)) if e.kind == "charge" else 0.0 for e in entries]


def to_jsonl(snapshot: LedgerSnapshot) -> str:
    lines = [canonical_json({"record": "metadata", **snapshot.metadata.to_dict()})]
    lines += [canonical_json({"record": "entry", **e.to_dict()}) for e in snapshot.entries]
    lines.append(canonical_json({"record": "head", **snapshot.head.to_dict()}))
    return "\n".join(lines) + "\n"


def read_jsonl(path: str | os.PathLike):
    """Parse a JSON Lines export: (snapshot or None, problems, head present).

    Reading stops at the first unreadable line; the problem names the entry
    position where it happened, so a truncated export names its first bad entry.
    """
    from .verify import Problem

    problems: list[Problem] = []
    metadata: LedgerMetadata | None = None
    entries: list[Entry] = []
    head: Head | None = None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(None, f"cannot read {path}: {exc}")], False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        position = len(entries) + 1
        try:
            record = json.loads(line)
            kind = record.pop("record")
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, RecursionError):
            problems.append(Problem(position if metadata else 0, f"line {lineno} is not a ledger record "
                                                                 "(truncated or edited)"))
            break
        try:
            if kind == "metadata" and metadata is None and lineno == 1:
                metadata = LedgerMetadata.from_dict(record)
            elif kind == "entry" and metadata is not None and head is None:
                entries.append(Entry.from_dict(record))
            elif kind == "head" and metadata is not None and head is None:
                head = Head.from_dict(record)
            else:
                problems.append(Problem(position, f"line {lineno}: unexpected {kind!r} record here"))
                break
        except (TypeError, ValueError) as exc:
            problems.append(Problem(position, f"line {lineno}: {exc}"))
            break
    if metadata is None:
        return None, problems or [Problem(0, "no metadata record on the first line")], False
    present = head is not None and not problems
    return LedgerSnapshot(metadata, tuple(entries), head or Head(-1, "", "")), problems, present


CSV_COLUMNS = [
    "sequence", "timestamp", "kind", "refs", "commitment", "actor", "purpose", "generator", "run_id", "noise_source",
    "insecure", "code_sha256", "ledger_id",
    "event", "cost", "rho", "filter_total", "filter_budget", "filter_order", "epsilon_filter",
    "epsilon_curve", "delta", "dataset_fingerprint", "parameters", "policy_sha256", "prev_hash",
    "entry_hash", "ledger_key_id", "signature", "delta_cost", "delta_spent",
]
# Columns recomputed from the event (not stored in the entry): the approximation δ.
_DERIVED = ("delta_cost", "delta_spent")


def to_csv(snapshot: LedgerSnapshot) -> str:
    """One row per entry (the RDP curve is left out; it is in the JSONL export).
    Floats are written as repr, so they read back exactly."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    deltas = delta_costs(snapshot.entries)
    for i, e in enumerate(snapshot.entries):
        d = {"kind": "charge", "refs": None, "commitment": None, "code_sha256": None, "ledger_id": None,
             **e.to_dict()}
        d["delta_cost"], d["delta_spent"] = deltas[i], sum_up(deltas[: i + 1])
        row = []
        for c in CSV_COLUMNS:
            v = d[c]
            if isinstance(v, (dict, list)):
                v = canonical_json(v)
            elif isinstance(v, float):
                v = repr(v)
            elif v is None:
                v = ""
            row.append(v)
        w.writerow(row)
    return buf.getvalue()


def spend_by(entries: Iterable[Entry], key: str) -> dict[str, dict[str, Any]]:
    """Entries, filter cost (fsum) and share of the budget, grouped by an entry field."""
    groups: dict[str, list[Entry]] = defaultdict(list)
    for e in entries:
        if e.kind != "charge":
            continue
        groups[str(getattr(e, key) if getattr(e, key) is not None else "(none)")].append(e)
    out = {}
    for name, es in sorted(groups.items()):
        cost = math.fsum(e.cost for e in es)
        out[name] = {"entries": len(es), "cost": cost, "share": cost / es[0].filter_budget}
    return out


def to_html(snapshot: LedgerSnapshot, report=None) -> str:
    from .report import render_html

    return render_html(snapshot, report)
