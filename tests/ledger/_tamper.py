"""Tools a test attacker uses to rewrite a SQLite ledger behind the gate's back."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Callable

from accountant.ledger.hashing import canonical_json


def rewrite_entries(path: Path, edit: Callable[[list[dict]], list[dict]]) -> None:
    """Replace the entries table with edit(entries) (dicts as stored), triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    rows = conn.execute("SELECT body FROM entries ORDER BY sequence").fetchall()
    entries = edit([json.loads(b) for (b,) in rows])
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DROP TRIGGER entries_no_update")
    conn.execute("DROP TRIGGER entries_no_delete")
    conn.execute("DELETE FROM entries")
    # rowid keeps the stored order even when sequence numbers are swapped
    for i, e in enumerate(entries, start=1):
        conn.execute("INSERT INTO entries (rowid, sequence, body) VALUES (?, ?, ?)",
                     (i, i, canonical_json(e)))
    conn.execute("COMMIT")
    conn.close()


def rewrite_metadata(path: Path, edit: Callable[[dict], dict]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    (body,) = conn.execute("SELECT body FROM metadata").fetchone()
    md = edit(json.loads(body))
    conn.execute("DROP TRIGGER metadata_no_update")
    conn.execute("UPDATE metadata SET body = ?", (canonical_json(md),))
    conn.close()


def rewrite_head(path: Path, edit: Callable[[dict], dict]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    (body,) = conn.execute("SELECT body FROM head").fetchone()
    conn.execute("UPDATE head SET body = ?", (canonical_json(edit(json.loads(body))),))
    conn.close()
