"""A COMPAS-like table (recidivism-style: 0/1 columns, count columns, plain dates) built
from a public table of ../shared/data, for the tests of what a new user trips over.

No data is copied into the repository: the table is derived, at test time, from
`../shared/data/hmeq/hmeq.csv` (HMEQ home-equity loans, see its NOTES.md), and the
tests that need it skip with the reason when the folder is absent.  Rows with a
missing value in the columns used are dropped (4,530 rows remain).  The columns,
named after COMPAS's and derived deterministically from HMEQ's:

| column | kind | from HMEQ |
|---|---|---|
| two_year_recid | 0/1 | BAD (21 % ones) |
| is_violent | 0/1 | MORTDUE missing (5 % ones) |
| juv_fel_count | count 0-10, 87 % zeros | DEROG |
| juv_misd_count | count 0-15, 74 % zeros | DELINQ |
| priors_count | count 0-71 (wide) | CLNO |
| jail_days | count 0-500 (wide), 87 % zeros | 37·DEROG + 11·DELINQ where DEROG > 0, else 0 |
| years_at_job | number with one decimal | YOJ |
| c_charge_degree | F / M | REASON (HomeImp -> F, DebtCon -> M) |
| job | six categories | JOB |
| screening_date | plain date, 2013-2014 | 2013-01-01 + (7·CLAGE rounded) mod 730 days |
"""

from __future__ import annotations

import pandas as pd

from tests.conftest import shared_path

__all__ = ["compas_like", "compas_schema_toml", "COLUMNS"]

COLUMNS = ("two_year_recid", "is_violent", "juv_fel_count", "juv_misd_count", "priors_count", "jail_days",
           "years_at_job", "c_charge_degree", "job", "screening_date")


def compas_like() -> pd.DataFrame:
    """The table, as `pandas.read_csv` would give it from a CSV (dates as ISO text)."""
    raw = pd.read_csv(shared_path("data", "hmeq", "hmeq.csv"))
    d = raw.dropna(subset=["DEROG", "DELINQ", "CLNO", "YOJ", "REASON", "JOB", "CLAGE"]).reset_index(drop=True)
    derog, delinq = d["DEROG"].astype(int), d["DELINQ"].astype(int)
    days = (d["CLAGE"] * 7).round().astype(int) % 730
    frame = pd.DataFrame({
        "two_year_recid": d["BAD"].astype(int),
        "is_violent": d["MORTDUE"].isna().astype(int),
        "juv_fel_count": derog,
        "juv_misd_count": delinq,
        "priors_count": d["CLNO"].astype(int),
        "jail_days": (37 * derog + 11 * delinq).where(derog > 0, 0).astype(int),
        "years_at_job": d["YOJ"].round(1),
        "c_charge_degree": d["REASON"].map({"HomeImp": "F", "DebtCon": "M"}),
        "job": d["JOB"],
        "screening_date": (pd.Timestamp("2013-01-01") + pd.to_timedelta(days, unit="D")).dt.strftime("%Y-%m-%d"),
    })
    return frame


def compas_schema_toml() -> str:
    """A schema an officer would write for it from public knowledge (a code book): the
    0/1 columns declared boolean, counts as integers with public bounds, plain dates."""
    return """\
[[columns]]
name = "two_year_recid"
kind = "boolean"

[[columns]]
name = "is_violent"
kind = "boolean"

[[columns]]
name = "juv_fel_count"
kind = "integer"
lower = 0
upper = 20

[[columns]]
name = "juv_misd_count"
kind = "integer"
lower = 0
upper = 20

[[columns]]
name = "priors_count"
kind = "integer"
lower = 0
upper = 100
bins = 10

[[columns]]
name = "jail_days"
kind = "integer"
lower = 0
upper = 1000
bins = 20

[[columns]]
name = "years_at_job"
kind = "numeric"
lower = 0
upper = 50
bins = 10
decimals = 1

[[columns]]
name = "c_charge_degree"
kind = "categorical"
categories = ["F", "M"]

[[columns]]
name = "job"
kind = "categorical"
categories = ["Mgr", "Office", "Other", "ProfExe", "Sales", "Self"]

[[columns]]
name = "screening_date"
kind = "datetime"
lower = "2013-01-01"
upper = "2015-01-01"
bins = 12
"""
