"""Receipts an auditor holds outside the ledger: in model files and receipt JSON files.

`dpsynth ledger verify --receipts PATH` checks that the ledger still holds every
receipt it ever issued (a ledger rolled back to an older copy, or started
again, lacks some).  PATH is a model file, a JSON file holding one receipt or a
list of them (what `dpsynth ledger charge` prints), or a folder searched
recursively for both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from accountant.errors import InvalidReceipt
from accountant.receipt import Receipt

__all__ = ["collect_receipts"]

_MODEL_SUFFIXES = (".pt", ".dpsynth", ".model", ".bin", ".dpctgan")


def _from_json(path: Path) -> list[Receipt]:
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data if isinstance(data, list) else [data]
    return [Receipt.from_dict(x) for x in items]


def _from_model(path: Path) -> list[Receipt]:
    from .model_file import read_model
    from .provenance import Provenance

    meta, _, seal = read_model(path)
    return Provenance.from_dict(meta.get("provenance"), seal).all_receipts()


def collect_receipts(paths: Iterable[str | os.PathLike]) -> tuple[list[Receipt], list[str]]:
    """(every receipt found, a note per file in a folder that held none).

    A file named outright that holds no readable receipt is an error (ValueError): the
    auditor meant it as an anchor, and a check that could not be made must not pass.  Files
    found while searching a folder that are not receipts are only noted."""
    found: list[Receipt] = []
    notes: list[str] = []
    files: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += [(x, False) for x in sorted(p.rglob("*")) if x.is_file() and (
                x.suffix.lower() in _MODEL_SUFFIXES or x.suffix.lower() == ".json")]
        elif p.exists():
            files.append((p, True))
        else:
            raise FileNotFoundError(f"--receipts: no such file or folder: {p}")
    for f, named in files:
        try:
            found += _from_json(f) if f.suffix.lower() == ".json" else _from_model(f)
        except (ValueError, InvalidReceipt, OSError, TypeError, RecursionError) as exc:
            if named:
                raise ValueError(f"--receipts {f}: no receipt could be read ({type(exc).__name__}: "
                                 f"{str(exc)[:120]})") from None
            notes.append(f"{f}: no receipts read ({type(exc).__name__}: {str(exc)[:120]})")
    return found, notes
