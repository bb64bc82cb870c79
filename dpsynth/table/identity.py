"""Record identities: a key per record that depends on the record alone.

`record_keys(frame, key)` gives each row HMAC-SHA256(key, canonical(row) ‖ j),
truncated to 64 bits, where j counts the earlier identical copies of the row.
A record's key depends on its values, the secret key and how many identical
copies precede it — never on the other records or on row order.  Identical
copies are interchangeable: removing any one of them leaves the same multiset
of keys as removing the last one.

Two uses inside the private table:

* PATE partitions: teacher = key mod k, and each partition sorted by key, so
  adding or removing one record changes one teacher's training set, and leaves
  every other teacher's data *and its order* untouched;
* seeded (test) DP-SGD: the Poisson sample and the per-row uniforms are keyed
  functions of (record key, step), so on a neighbouring table every other
  record is sampled exactly as before — what record-and-replay compares.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["record_keys", "keyed_uniform_words", "MIN_KEY_BYTES"]

MIN_KEY_BYTES = 16
_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (bool, int, float, str)):
        return [type(value).__name__, value]
    return [type(value).__name__, str(value)]


def record_keys(frame: pd.DataFrame, key: bytes) -> np.ndarray:
    """A uint64 key per row (see the module docstring)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the record key must be at least {MIN_KEY_BYTES} secret bytes")
    seen: dict[bytes, int] = {}
    out = np.empty(len(frame), dtype=np.uint64)
    mac = hmac.new(bytes(key), digestmod=hashlib.sha256)
    for i, row in enumerate(frame.itertuples(index=False, name=None)):
        body = json.dumps([_cell(v) for v in row], separators=(",", ":")).encode()
        copy = seen.get(body, 0)
        seen[body] = copy + 1
        m = mac.copy()
        m.update(body + b"#" + str(copy).encode())
        out[i] = int.from_bytes(m.digest()[:8], "big")
    return out


def _splitmix(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return z ^ (z >> np.uint64(31))


def keyed_uniform_words(keys: np.ndarray, stream: int, step: int, width: int) -> np.ndarray:
    """A (len(keys), width) array of 64-bit words, a fixed function of (key, stream, step, column).

    For seeded test runs only (the mixing is not a cryptographic PRF)."""
    base = _splitmix(np.asarray([(stream * 1_000_003 + step) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    k = np.asarray(keys, dtype=np.uint64)[:, None] ^ base
    cols = np.arange(width, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        return _splitmix(_splitmix(k) + cols * np.uint64(0xD1B54A32D192ED03))
