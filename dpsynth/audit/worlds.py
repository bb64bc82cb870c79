"""The worst-case neighbouring tables an audit fits a generator on, per generator family.

An audit measures how well *some* test tells two neighbouring tables apart; the bound it
gives is a lower bound on the mechanism's ε for the worst pair, so the audit should pick
the pair where a leak is loudest (research/auditing.md §1.2, §1.6).  All families use the
same public schema — three binary categorical columns a, b, c — and a tiny table:

* add/remove-one (the default relation): D′ = four records (0,0,0); D = D′ + the target
  (1,1,1).
* replace-one: D′ = five records (0,0,0); D = four (0,0,0) + the target (1,1,1) (the
  target replaces one ordinary record).

Why this pair is worst case, family by family:

* marginal generators (MST, AIM, Independent): the target differs from every other
  record in every column, so every marginal cell it touches is *empty* in D′ — each noisy
  measurement of one of its cells reads 0 + noise in OUT and 1 + noise in IN, the largest
  change one record can make to a count (the noise is calibrated to exactly that), and
  the smallest table makes the post-processed model follow those cells most closely.
  A generator that reads its domain from the data (a category list learnt from D) can
  produce (1,1,1) only in IN: the pair exposes that leak completely.
* DP-CTGAN: with n = 5 the target is a fifth of every batch it is sampled into, and its
  values are values no other record has, so its clipped gradient points where no other
  record's does; its un-noised category frequencies (a classic leak) would give its
  values away outright.
* PATE-GAN: the 2024 PATE-GAN audit's setting (research/pategan.md §1.1): with few
  teachers the target sits in one teacher's partition with at most one or two ordinary
  records, so that teacher's vote is the only thing that could carry it; a teacher on
  overlapping data or a judge that sees all records reproduces (1,1,1) only in IN.

The black-box statistic is how many synthetic rows equal the target (`statistics.py`).
Auditors who want another pair can pass their own `WorldPair`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from accountant.events import NeighbouringRelation

__all__ = ["WorldPair", "worst_case_pair", "family_of", "FAMILIES", "WORLDS"]

WORLDS = ("out", "in")
COLUMNS = ("a", "b", "c")
FAMILIES = {"mst": "marginal", "aim": "marginal", "independent": "marginal", "dpctgan": "dpctgan",
            "pategan": "pategan"}
MAX_RECORDS = 8  # the audit policy's public bound on n: the worlds have at most 5 rows


@dataclass(frozen=True)
class WorldPair:
    """Two neighbouring tables on one public schema, and the record that tells them apart."""

    family: str
    relation: str
    schema: Any
    out: pd.DataFrame
    in_: pd.DataFrame
    target: Mapping[str, Any]
    why: str

    def frame(self, world: str) -> pd.DataFrame:
        if world == "out":
            return self.out.copy()
        if world == "in":
            return self.in_.copy()
        raise ValueError(f"world must be one of {WORLDS}, got {world!r}")

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "relation": self.relation, "columns": list(self.schema.names),
                "out": self.out.values.tolist(), "in": self.in_.values.tolist(), "target": dict(self.target),
                "why": self.why}


_WHY = {
    "marginal": "every marginal cell the target touches is empty in D′: each measurement of it reads 0 + noise "
                "in OUT and 1 + noise in IN (the full sensitivity), and a domain read from the data could not "
                "contain the target's values in OUT",
    "dpctgan": "the target is a fifth of the table and shares no value with any other record: its clipped "
               "gradient and its category frequencies stand alone",
    "pategan": "the 2024 PATE-GAN audit's pair: with few teachers the target is nearly alone in one teacher's "
               "partition, so only that teacher's (noised) vote can carry it",
}


def family_of(generator: str) -> str:
    try:
        return FAMILIES[generator]
    except KeyError:
        raise ValueError(f"unknown generator {generator!r}; choose from {', '.join(sorted(FAMILIES))}") from None


def worst_case_pair(generator: str, relation: str | NeighbouringRelation = NeighbouringRelation.ADD_OR_REMOVE_ONE
                    ) -> WorldPair:
    """The documented worst-case pair for `generator`'s family under `relation`."""
    from dpsynth.schema import Column, Schema

    family = family_of(generator)
    rel = NeighbouringRelation(relation)
    schema = Schema([Column(c, "categorical", categories=[0, 1]) for c in COLUMNS])
    zero, target = (0, 0, 0), (1, 1, 1)
    if rel is NeighbouringRelation.ADD_OR_REMOVE_ONE:
        out_rows, in_rows = [zero] * 4, [zero] * 4 + [target]
    else:
        out_rows, in_rows = [zero] * 5, [zero] * 4 + [target]
    frame = lambda rows: pd.DataFrame(rows, columns=list(COLUMNS))  # noqa: E731
    return WorldPair(family, rel.value, schema, frame(out_rows), frame(in_rows), dict(zip(COLUMNS, target)),
                     _WHY[family])
