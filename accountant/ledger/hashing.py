"""Canonical serialisation and hashing of ledger records.

An auditor must recompute every hash bit for bit with nothing but a JSON
parser and SHA-256, so the serialisation is deliberately plain: JSON with
sorted keys, no whitespace, UTF-8, floats written as Python's shortest
round-trip `repr` (what `json.dumps` emits), NaN and infinities refused.
Parsing the text back with any IEEE-754 JSON reader gives the same floats,
and re-serialising them gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = ["canonical_json", "canonical_bytes", "sha256_hex", "normalise_json_value", "MAX_JSON_DEPTH"]

#: How deeply a recorded value (an entry's `parameters`) may nest.  Every reader of the
#: ledger walks the value recursively (dataclasses.asdict when hashing, json when parsing):
#: a value nested a few hundred levels deep is written fine from a shallow call stack and
#: then raises RecursionError in every reader with a deeper one, so the gate stays shut for
#: ever (the ComposedEvent attack, through the parameters instead; proofs/threat_model.md #9).
MAX_JSON_DEPTH = 32


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, floats as shortest repr; NaN/inf raise ValueError."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def canonical_bytes(obj: Any) -> bytes:
    return canonical_json(obj).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def normalise_json_value(value: Any, *, field: str, _depth: int = 0) -> Any:
    """Deep-copy `value` into plain JSON types (dict with str keys, list, str, int,
    float, bool, None), so that what is hashed is exactly what a reader gets back.

    Tuples become lists; numpy scalars become Python numbers; anything else,
    a non-finite float, or nesting deeper than MAX_JSON_DEPTH, is an error naming `field`.
    """
    if _depth > MAX_JSON_DEPTH:
        raise ValueError(f"{field}: nests deeper than {MAX_JSON_DEPTH} levels (every reader of the ledger would "
                         "have to recurse through it); flatten it")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{field}: non-finite number {value!r} cannot be recorded")
        return float(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", None) == ():
        return normalise_json_value(value.item(), field=field, _depth=_depth)  # numpy scalar
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{field}: keys must be strings, got {type(k).__name__}")
            out[k] = normalise_json_value(v, field=f"{field}.{k}", _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [normalise_json_value(v, field=f"{field}[{i}]", _depth=_depth + 1) for i, v in enumerate(value)]
    raise ValueError(f"{field}: a {type(value).__name__} cannot be recorded (use JSON types)")
