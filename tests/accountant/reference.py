"""Loading the third-party reference vectors (opacus, dp_accounting, 40-digit mpmath).

They are facts, copied from ../shared/reference/accounting into tests/accountant/data/reference
(README.md there says how they were made), so a fresh clone checks them; where the shared
folder is present its copy must be identical (`test_reference_copies_match_the_shared_ones`).
"""

from __future__ import annotations

import csv
from pathlib import Path

from tests.conftest import SHARED

HERE = Path(__file__).resolve().parent / "data" / "reference"


def load(name: str) -> list[dict[str, str]]:
    path = HERE / name
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def column(row: dict[str, str], prefix: str) -> float:
    """The value of the one column whose header starts with `prefix`."""
    keys = [k for k in row if k.startswith(prefix)]
    if len(keys) != 1:
        raise KeyError(f"{len(keys)} columns start with {prefix!r}: {keys}")
    return float(row[keys[0]])


def params(name: str):
    """Rows as pytest params; one param that skips when the folder is absent."""
    import pytest

    rows = load(name)
    if not rows:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"needs tests/accountant/data/reference/{name}"))]
    return [pytest.param(r, id=f"row{i}") for i, r in enumerate(rows)]
