"""Synthetic-data generators.  Every one has the same shape:

    model = MST(epsilon=1.0).fit(table)        # charges table.gate before it measures
    rows = model.sample(1000, where={"sex": "F"}, seed=0)
    model.save("m.bin"); MST.load("m.bin")     # load and sample re-verify the receipts
"""

from __future__ import annotations

import importlib
from typing import Iterator, Mapping

from .marginal import AIM, MST, Independent

# DP-CTGAN and PATE-GAN pull in torch and opacus (seconds to import); they are loaded when
# first asked for, so the marginal generators, the CLI and the jobs start fast.
_LAZY = {"DPCTGAN": ".dpctgan", "PATEGAN": ".pategan"}


class _Registry(Mapping):
    """name -> generator class; lazily imported entries resolve on first access."""

    def __init__(self, entries: dict[str, object]) -> None:
        self._entries = entries

    def __getitem__(self, name: str) -> type:
        value = self._entries[name]
        return _load(value) if isinstance(value, str) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def _load(attr: str) -> type:
    return getattr(importlib.import_module(_LAZY[attr], __name__), attr)


def __getattr__(name: str):
    if name in _LAZY:
        return _load(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


GENERATORS: Mapping[str, type] = _Registry({"mst": MST, "aim": AIM, "independent": Independent, "dpctgan": "DPCTGAN",
                                           "pategan": "PATEGAN"})

__all__ = ["DPCTGAN", "PATEGAN", "MST", "AIM", "Independent", "GENERATORS"]
