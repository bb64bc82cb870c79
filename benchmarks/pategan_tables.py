"""The two binary-target tables of the PATE-GAN benchmark, with their public schemas.

Every fact a generator is given here is declared, never read from the private rows:

* ``adult``: UCI Adult raw, the official train/test split; schema, bounds and bins imported
  from ``dpctgan_adult.py`` (categories from ``adult.names``, census code ranges).
* ``hmeq``: the HMEQ home-equity table (``../shared/data/hmeq``, 5,960 rows, target BAD), split
  70/30 by a permutation with a fixed seed (``HMEQ_SPLIT_SEED``).  The ``hmeq_bounds.json``
  shipped beside it is the data's own min/max and its observed category values (each bound
  equals the column's extreme in ``hmeq.csv``), so it is not used: the bounds below are round
  numbers from what the columns mean (loan amounts to $100k, property values to $1M, the
  oldest credit line to 100 years), the category names of REASON and JOB are the documented
  ones (NOTES.md), and the counts DEROG / DELINQ / NINQ are integers in 0..20 rather than the
  categories that happen to occur.  Every feature is nullable (the NOTES: raw values with
  missing cells).

A table also knows how to hand its rows to a peer (``to_peer`` / ``from_peer``): the peers'
runners take categorical columns as strings and refuse a missing number, so a missing
category becomes the literal token ``?`` and a missing number the column's declared lower
bound plus a ``<column>__missing`` flag column ("0" / "1"), undone on the way back.  That
transform reads no statistic of the data.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
BENCH = REPO / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))  # appended: benchmarks/accountant.py must not shadow the package

import dpctgan_adult as adult  # noqa: E402

DATA = REPO.parent / "shared" / "data"
MISSING_TOKEN = "?"
MISSING_FLAG = "__missing"


@dataclass(frozen=True)
class TableSpec:
    """One benchmark table: its public schema (GAN and binned) and its train/test split."""

    name: str
    target: str
    columns: tuple[str, ...]
    categorical: tuple[str, ...]                   # includes the target
    bounds: dict[str, tuple[float, float]]         # every numeric column
    integer: tuple[str, ...]                       # numeric columns holding integers
    max_records: int                               # the policy's public bound on n
    gan_columns: Callable[[], list[dict]]          # Schema.from_dict columns (no bins)
    bins: dict[str, list[float]]                   # public bin edges for MST / AIM
    load: Callable[[], tuple[Any, Any]]            # (train, test) DataFrames, NaN = missing
    source: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def numeric(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in self.categorical)

    def schema(self):
        from dpsynth.schema import Schema

        return Schema.from_dict({"columns": self.gan_columns()})

    def marginal_schema(self):
        """The same public schema with the numeric columns binned by ``bins``."""
        from dpsynth.schema import Column, Schema

        cols = []
        for c in self.gan_columns():
            if c["name"] in self.bins:
                cols.append(Column(c["name"], c["kind"], bins=self.bins[c["name"]],
                                   nullable=c.get("nullable", False)))
            else:
                cols.append(Column(c["name"], "categorical", categories=c["categories"],
                                   nullable=c.get("nullable", False)))
        return Schema(cols)

    def column_spec(self):
        from dpsynth.evaluate.columns import ColumnSpec

        return ColumnSpec(categorical=self.categorical, numeric=self.numeric, target=self.target,
                          bounds=self.bounds)

    # -- to and from the peers' CSVs -----------------------------------------------------------
    def to_peer(self, frame):
        """Categoricals as strings (missing -> "?"); a missing number -> its lower bound and a
        "0"/"1" flag column (only for columns that may be missing)."""
        out = frame[list(self.columns)].copy()
        nullable = {c["name"] for c in self.gan_columns() if c.get("nullable")}
        for c in self.categorical:
            out[c] = out[c].astype(object).where(out[c].notna(), MISSING_TOKEN).astype(str)
        for c in self.numeric:
            if c in nullable:
                missing = out[c].isna()
                out[c + MISSING_FLAG] = missing.map({True: "1", False: "0"})
                out[c] = out[c].where(~missing, self.bounds[c][0])
            out[c] = out[c].astype(float)
        return out

    def peer_categorical(self) -> list[str]:
        nullable = {c["name"] for c in self.gan_columns() if c.get("nullable")}
        return list(self.categorical) + [c + MISSING_FLAG for c in self.numeric if c in nullable]

    def from_peer(self, frame):
        """Undo `to_peer` on a peer's synthetic CSV (read with every cell as a string)."""
        import numpy as np
        import pandas as pd

        out = pd.DataFrame(index=frame.index)
        for c in self.columns:
            if c not in frame.columns:
                out[c] = np.nan
                continue
            if c in self.categorical:
                s = frame[c].astype(object)
                out[c] = s.where(~s.isin([MISSING_TOKEN, "", "nan", "None"]) & s.notna(), None)
            else:
                s = pd.to_numeric(frame[c], errors="coerce")
                flag = frame.get(c + MISSING_FLAG)
                if flag is not None:
                    s = s.where(flag.astype(str).str.strip() != "1", np.nan)
                out[c] = s
        return out

    def read_synthetic(self, path, peer: bool = False):
        """A synthetic CSV (ours or a peer's) as a frame typed like the test table."""
        import pandas as pd

        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if peer:
            return self.from_peer(frame)
        out = frame.reindex(columns=list(self.columns))
        for c in self.numeric:
            out[c] = pd.to_numeric(out[c], errors="coerce")
        for c in self.categorical:
            out[c] = out[c].astype(object).where(out[c].notna(), None)
        return out


# -- UCI Adult (raw) ----------------------------------------------------------------------------
def _adult_load():
    return adult.load()


ADULT = TableSpec(
    name="adult", target="income", columns=tuple(adult.COLUMNS),
    categorical=tuple(c for c in adult.COLUMNS if c not in adult.BOUNDS),
    bounds={k: (float(lo), float(hi)) for k, (lo, hi) in adult.BOUNDS.items()},
    integer=tuple(adult.BOUNDS), max_records=adult.MAX_RECORDS, gan_columns=adult.schema,
    bins=adult.BINS, load=_adult_load,
    source="UCI Adult raw (../shared/data/adult/raw): adult.data 32,561 rows / adult.test 16,281 rows")


# -- HMEQ ---------------------------------------------------------------------------------------
HMEQ_PATH = DATA / "hmeq" / "hmeq.csv"
HMEQ_SPLIT_SEED = 0
HMEQ_TRAIN_FRACTION = 0.7
HMEQ_COLUMNS = ("BAD", "LOAN", "MORTDUE", "VALUE", "REASON", "JOB", "YOJ", "DEROG", "DELINQ", "CLAGE", "NINQ",
                "CLNO", "DEBTINC")
HMEQ_CATEGORIES = {"BAD": ["0", "1"], "REASON": ["DebtCon", "HomeImp"],
                   "JOB": ["Mgr", "Office", "Other", "ProfExe", "Sales", "Self"]}
# Declared from what each column means (dollars, years, months, counts, a percentage).
HMEQ_BOUNDS = {"LOAN": (0, 100_000), "MORTDUE": (0, 500_000), "VALUE": (0, 1_000_000), "YOJ": (0, 60),
               "DEROG": (0, 20), "DELINQ": (0, 20), "CLAGE": (0, 1_200), "NINQ": (0, 20), "CLNO": (0, 100),
               "DEBTINC": (0, 250)}
HMEQ_INTEGER = ("LOAN", "DEROG", "DELINQ", "NINQ", "CLNO")
# Round edges over the declared ranges, for MST / AIM.
HMEQ_BINS = {
    "LOAN": [0, 5_000, 7_500, 10_000, 12_500, 15_000, 17_500, 20_000, 25_000, 30_000, 40_000, 50_000, 100_000],
    "MORTDUE": [0, 25_000, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 300_000, 500_000],
    "VALUE": [0, 50_000, 75_000, 100_000, 125_000, 150_000, 200_000, 300_000, 500_000, 1_000_000],
    "YOJ": [0, 1, 2, 3, 5, 7, 10, 15, 20, 30, 60],
    "DEROG": [-0.5, 0.5, 1.5, 2.5, 3.5, 5.5, 20.5],
    "DELINQ": [-0.5, 0.5, 1.5, 2.5, 3.5, 5.5, 20.5],
    "CLAGE": [0, 60, 120, 180, 240, 300, 360, 480, 1_200],
    "NINQ": [-0.5, 0.5, 1.5, 2.5, 3.5, 5.5, 20.5],
    "CLNO": [0, 5, 10, 15, 20, 25, 30, 40, 50, 100],
    "DEBTINC": [0, 10, 20, 25, 30, 35, 40, 50, 100, 250],
}
HMEQ_MAX_RECORDS = 6_000  # public: the whole published table has 5,960 rows


def _hmeq_columns() -> list[dict]:
    cols = []
    for name in HMEQ_COLUMNS:
        if name in HMEQ_CATEGORIES:
            cols.append({"name": name, "kind": "categorical", "categories": HMEQ_CATEGORIES[name],
                         "nullable": name != "BAD"})
        else:
            lo, hi = HMEQ_BOUNDS[name]
            cols.append({"name": name, "kind": "integer" if name in HMEQ_INTEGER else "numeric",
                         "lower": lo, "upper": hi, "nullable": True})
    return cols


def _hmeq_load():
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(HMEQ_PATH, dtype={c: str for c in HMEQ_CATEGORIES})
    frame = frame[list(HMEQ_COLUMNS)]
    for c in HMEQ_CATEGORIES:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), None)
    for c in HMEQ_BOUNDS:
        frame[c] = frame[c].astype(float)
    order = np.random.RandomState(HMEQ_SPLIT_SEED).permutation(len(frame))
    cut = int(round(HMEQ_TRAIN_FRACTION * len(frame)))
    return frame.iloc[order[:cut]].reset_index(drop=True), frame.iloc[order[cut:]].reset_index(drop=True)


HMEQ = TableSpec(
    name="hmeq", target="BAD", columns=HMEQ_COLUMNS, categorical=tuple(HMEQ_CATEGORIES),
    bounds={k: (float(lo), float(hi)) for k, (lo, hi) in HMEQ_BOUNDS.items()}, integer=HMEQ_INTEGER,
    max_records=HMEQ_MAX_RECORDS, gan_columns=_hmeq_columns, bins=HMEQ_BINS, load=_hmeq_load,
    source=(f"HMEQ (../shared/data/hmeq/hmeq.csv, 5,960 rows): a permutation with seed {HMEQ_SPLIT_SEED}, "
            f"first {HMEQ_TRAIN_FRACTION:.0%} train (4,172 rows), rest test (1,788 rows)"))

TABLES = {t.name: t for t in (ADULT, HMEQ)}


def describe(table: TableSpec) -> dict:
    """The public facts of a table, for the results file."""
    return {"source": table.source, "target": table.target, "max_records": table.max_records,
            "bounds": {k: list(v) for k, v in table.bounds.items()}, "bins": table.bins,
            "categorical": list(table.categorical)}


if __name__ == "__main__":  # a quick look: sizes and class balance of each split
    for t in TABLES.values():
        tr, te = t.load()
        print(t.name, len(tr), len(te), json.dumps(tr[t.target].value_counts(dropna=False).to_dict()))
