"""Loading the third-party reference vectors in ../shared/reference/accounting."""

from __future__ import annotations

import csv

from tests.conftest import SHARED


def load(name: str) -> list[dict[str, str]]:
    path = SHARED / "reference" / "accounting" / name
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
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"needs shared/reference/accounting/{name}"))]
    return [pytest.param(r, id=f"row{i}") for i, r in enumerate(rows)]
