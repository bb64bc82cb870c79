"""Shared pieces of the security tests: small governed tables, ledger snapshots, attacker tools.

An attacker who only has write access to the files works on them as such an attacker
would: sqlite3 on the ledger (dropping the append-only triggers first), json on the
witness and checkpoint files, torch.save on model files.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Iterator

import torch

from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.testing import make_test_gate
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.table import PrivateTable
from tests.table.support import SCHEMA, small_frame

__all__ = ["SCHEMA", "small_frame", "governed", "table_on", "ledger_rows", "ledger_bytes", "attacker_db",
           "rewrite_model", "read_model_blob", "backup", "restore", "snapshot"]

# Two test workers on two cores: torch's own threads would only contend.
torch.set_num_threads(1)


def governed(directory: Path, frame=None, **kwargs):
    """A test ledger whose signed policy governs `frame` (default: a 60-row small frame)."""
    frame = small_frame() if frame is None else frame
    kwargs.setdefault("epsilon", 20.0)
    kwargs.setdefault("delta", 1e-6)
    kwargs.setdefault("max_records", 1000)
    return make_test_gate(directory, frame=frame, **kwargs)


def table_on(ledger, frame=None, *, seed: int | None = None, schema=SCHEMA) -> PrivateTable:
    frame = small_frame() if frame is None else frame
    source = SeededRandomSource(seed) if seed is not None else None
    return PrivateTable(frame, schema, ledger.gate, dataset_key=ledger.dataset_key, random_source=source)


def ledger_rows(path: Path) -> list[str]:
    """The ledger's entries as stored (canonical JSON text), read without any check."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [body for (body,) in conn.execute("SELECT body FROM entries ORDER BY sequence")]
    finally:
        conn.close()


def ledger_bytes(path: Path) -> tuple[list[str], str]:
    """(entries, head) as stored: what "nothing was written" compares."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        head = conn.execute("SELECT body FROM head").fetchone()[0]
        return [b for (b,) in conn.execute("SELECT body FROM entries ORDER BY sequence")], head
    finally:
        conn.close()


def snapshot(path: Path):
    store = SQLiteLedgerStore(path)
    try:
        return store.snapshot()
    finally:
        store.close()


@contextlib.contextmanager
def attacker_db(path: Path) -> Iterator[sqlite3.Connection]:
    """The ledger file opened as an attacker with write access would: triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f"DROP TRIGGER {name}")
        yield conn
    finally:
        conn.close()


def backup(path: Path, copy: Path) -> Path:
    """A consistent copy of the ledger file (what an attacker keeps to restore later)."""
    src, dst = sqlite3.connect(path), sqlite3.connect(copy)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return copy


def restore(copy: Path, path: Path) -> None:
    """Put an old copy back in place of the ledger, as an attacker would (side files removed)."""
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    tmp = path.with_name(path.name + ".restoring")
    tmp.write_bytes(copy.read_bytes())
    os.replace(tmp, path)


def read_model_blob(path: Path) -> dict:
    blob = torch.load(path, weights_only=True)
    return {"meta": json.loads(blob["meta"]), "arrays": dict(blob["arrays"]), "seal": json.loads(blob["seal"])}


def rewrite_model(src: Path, dst: Path, edit) -> Path:
    """Edit a model file as an attacker with write access would (torch.save of plain data)."""
    blob = read_model_blob(src)
    edit(blob)
    meta = blob["meta"] if isinstance(blob["meta"], str) else json.dumps(blob["meta"], sort_keys=True)
    seal = blob["seal"] if isinstance(blob["seal"], str) else json.dumps(blob["seal"], sort_keys=True)
    torch.save({"meta": meta, "arrays": blob["arrays"], "seal": seal}, dst)
    return dst
