"""Keyed dataset fingerprints.

The policy names the table it governs by a fingerprint, and the fingerprint is
exported to auditors in every ledger entry.  A plain hash of the table would
let anyone who can guess the table (or all but one row of it) confirm the
guess offline — the fingerprint is derived from private data, so it must not
be a public function of it.  We therefore use HMAC-SHA256 under a secret
*dataset key* that only the data holder keeps (never in the policy, never in
the ledger).  Without the key the fingerprint is a pseudorandom label; with it
the data holder can check that the table being used is the governed one.

The table is serialised canonically before hashing: a JSON header with the
column names, then one JSON line per row with cells normalised to plain JSON
values (numpy scalars to Python numbers, NaN/None to null, dates to ISO text).
The same table loaded the same way gives the same fingerprint; a changed cell,
row order, column name or column order gives a different one.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import hashlib
import math
import os
import secrets
from pathlib import Path
from typing import Any, Iterable, Sequence

from .ledger.hashing import canonical_bytes

__all__ = [
    "FINGERPRINT_PREFIX",
    "fingerprint_table",
    "fingerprint_files",
    "fingerprint_query",
    "query_row_key",
    "generate_dataset_key",
    "write_dataset_key",
    "load_dataset_key",
    "fingerprints_match",
]

FINGERPRINT_PREFIX = "hmac-sha256:"
_MIN_KEY_BYTES = 16


def generate_dataset_key() -> bytes:
    """32 random bytes from the operating system's CSPRNG."""
    return secrets.token_bytes(32)


def write_dataset_key(path: str | os.PathLike, key: bytes | None = None, *, overwrite: bool = False) -> Path:
    """Write a dataset key as hex text, mode 0600; refuses to overwrite by default."""
    key = generate_dataset_key() if key is None else key
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p} exists; refusing to overwrite a dataset key")
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key.hex().encode() + b"\n")
    finally:
        os.close(fd)
    return p


def load_dataset_key(path: str | os.PathLike) -> bytes:
    text = Path(path).read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"dataset key file {path} must hold hex text") from None
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"dataset key in {path} is shorter than {_MIN_KEY_BYTES} bytes")
    return key


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        value = value.item()  # numpy scalar → Python
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return {"$float": repr(value)} if math.isinf(value) else value
    if isinstance(value, (int, str, bool)) or value is None:
        return value
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas missing markers
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _table_bytes(rows: Iterable[Sequence[Any]], columns: Sequence[str] | None) -> Iterable[bytes]:
    yield canonical_bytes({"columns": None if columns is None else [str(c) for c in columns]}) + b"\n"
    for row in rows:
        yield canonical_bytes([_cell(v) for v in row]) + b"\n"


def fingerprint_table(table: Any, key: bytes, columns: Sequence[str] | None = None) -> str:
    """HMAC-SHA256 fingerprint of a table under the secret dataset key.

    `table` is bytes (hashed as given, e.g. a file's contents), an iterable of
    rows (sequences of cells; pass `columns` to bind the header), or any
    DataFrame-like object with `.columns` and `.itertuples(index=False)`
    (pandas is not imported here).  Returns ``"hmac-sha256:<64 hex>"``.
    """
    if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the dataset key must be at least {_MIN_KEY_BYTES} bytes")
    mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
    if isinstance(table, (bytes, bytearray, memoryview)):
        mac.update(b"bytes\n")
        mac.update(bytes(table))
    else:
        if hasattr(table, "itertuples") and hasattr(table, "columns"):
            columns = list(table.columns)
            rows: Iterable[Sequence[Any]] = table.itertuples(index=False, name=None)
        else:
            rows = table
        mac.update(b"rows\n")
        for chunk in _table_bytes(rows, columns):
            mac.update(chunk)
    return FINGERPRINT_PREFIX + mac.hexdigest()


def fingerprint_files(kind: str, files: Sequence[tuple[str, int, str]], key: bytes) -> str:
    """HMAC-SHA256 fingerprint of a table kept in files, under the secret dataset key.

    `files` lists (name relative to the table's folder, size in bytes, SHA-256 hex of the
    bytes) per file, in name order; `kind` is the files' format ("parquet", "csv").  The MAC
    covers the canonical JSON {"files": [[name, size, sha256], ...], "format": "dpsynth.files/1",
    "kind": kind}: a changed byte, an added, removed or renamed file gives another fingerprint;
    moving the folder does not.  (The files' bytes are hashed by the caller, streamed:
    dpsynth.table.DuckDBSource.)"""
    if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the dataset key must be at least {_MIN_KEY_BYTES} bytes")
    listed = [[str(name), int(size), str(digest)] for name, size, digest in files]
    if not listed or [f[0] for f in listed] != sorted(f[0] for f in listed):
        raise ValueError("files must be a non-empty list in name order")
    mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
    mac.update(b"files\n")
    mac.update(canonical_bytes({"files": listed, "format": "dpsynth.files/1", "kind": str(kind)}))
    return FINGERPRINT_PREFIX + mac.hexdigest()


def query_row_key(key: bytes) -> bytes:
    """The key an engine hashes each row of a query's result under (HMAC-SHA256 of a fixed
    label under the dataset key): derived, so the dataset key itself never enters the engine."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the dataset key must be at least {_MIN_KEY_BYTES} bytes")
    return hmac.new(bytes(key), b"dpsynth.query-rows/1", hashlib.sha256).digest()


def fingerprint_query(engine: str, columns: Sequence[tuple[str, str]], rows: int, digest: Sequence[int],
                      key: bytes) -> str:
    """HMAC-SHA256 fingerprint of a table that a database query returns, under the dataset key.

    The engine hashes each row (its cells as text, length-prefixed) under `query_row_key(key)`
    and sums the 64-bit lanes of those hashes over all rows (`digest`: the lane sums, exact
    integers): an order-independent digest of the rows as a multiset, computed without a row
    leaving the engine.  The MAC covers the canonical JSON {"columns": [[name, engine type],
    ...], "digest": [...], "engine": engine, "format": "dpsynth.query/1", "rows": rows}: a
    changed, added or removed row, or a changed column type, gives another fingerprint; the
    query's text and the rows' order do not enter it."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"the dataset key must be at least {_MIN_KEY_BYTES} bytes")
    body = {"columns": [[str(n), str(t)] for n, t in columns], "digest": [str(int(x)) for x in digest],
            "engine": str(engine), "format": "dpsynth.query/1", "rows": int(rows)}
    mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
    mac.update(b"query\n")
    mac.update(canonical_bytes(body))
    return FINGERPRINT_PREFIX + mac.hexdigest()


def fingerprints_match(a: str, b: str) -> bool:
    """Constant-time comparison of two fingerprints."""
    return hmac.compare_digest(a.encode(), b.encode())
