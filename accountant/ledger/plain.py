"""`dataclasses.asdict` for the ledger's records, without its per-leaf `copy.deepcopy`.

`asdict` walks a record and deep-copies every leaf: an AIM selection entry records its
575 candidates, weights and offsets, and a run writes dozens of them, each turned into a
dict several times (hashing, receipts, checks) — 9.6 s of one adult_hd fit went there
(issue 20).  The records hold only JSON values (the gate normalises `parameters`, see
`hashing.normalise_json_value`), whose leaves (str, int, float, bool, None) are immutable:
their deep copy is the object itself.  So `plain_fields` rebuilds the containers and
keeps the leaves, which is what `asdict` returns for such records, value for value and
type for type; on anything else (a nested dataclass, a dict subclass, an array) it falls
back to `asdict` itself, so the result is always `asdict`'s.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

__all__ = ["plain_fields"]

_LEAVES = frozenset({str, int, float, bool, type(None)})


class _NotPlain(Exception):
    pass


def _copy(value: Any) -> Any:
    kind = type(value)
    if kind in _LEAVES:
        return value
    if kind is dict:
        return {_copy(k): _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind is tuple:
        return tuple(_copy(v) for v in value)
    raise _NotPlain


def plain_fields(record: Any) -> dict[str, Any]:
    """``dataclasses.asdict(record)``, fast for records of plain JSON values."""
    try:
        return {f.name: _copy(getattr(record, f.name)) for f in fields(record)}
    except _NotPlain:
        return asdict(record)
