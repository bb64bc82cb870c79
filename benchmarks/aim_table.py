"""The 200,000-row, 15-column table of the AIM speed benchmark (``aim_speed.py``), built at
run time from the shared data (nothing is copied into the repository).

    python benchmarks/aim_table.py            # build (or reuse) it and print where it is

Issue #20 measured AIM on a census extract of 199,523 rows x 15 columns with domain sizes
2-43; no such table is in ``../shared/data``, so this one is put together deterministically
from two that are:

- ``salary_hd`` (135,727 rows): its 8 columns other than ``first-name`` (domain sizes 3-76;
  ``first-name`` has 501 codes, more than any census column).  All 135,727 rows, then
  64,273 of them drawn with replacement (``numpy.random.default_rng(20)``) to reach 200,000.
- ``msnbc`` (989,818 rows): ``site_0`` .. ``site_6`` (domain 18 each), its first 200,000 rows.

The two blocks are placed side by side row by row, so the salary columns depend on each other,
the msnbc columns on each other, and the blocks (almost) not at all: AIM's selection has
structure to find on both sides.  Domain sizes 3-76, product about 4e18.

The table and its domain file go to ``$DPSYNTH_BENCH_CACHE`` (default
``$XDG_CACHE_HOME/dpsynth-bench`` or ``~/.cache/dpsynth-bench``) under ``aim200k/``; a table
already there with the right row count is reused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
NAME = "aim200k"
ROWS = 200_000
SALARY_COLUMNS = ("annual-salary", "pay-rate", "system", "regular-earnings", "overtime-earning",
                  "other-earnings", "ytd-gross", "organization-name")
MSNBC_COLUMNS = tuple(f"site_{i}" for i in range(7))
SEED = 20


def cache_dir() -> Path:
    root = os.environ.get("DPSYNTH_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "dpsynth-bench")
    return Path(root) / NAME


def build(data: Path = DATA) -> tuple[pd.DataFrame, dict[str, int]]:
    """The table (integer codes) and its domain {column: size}."""
    salary = pd.read_csv(data / "salary_hd" / "salary.csv", usecols=list(SALARY_COLUMNS))
    salary_domain = json.loads((data / "salary_hd" / "salary-domain.json").read_text())
    msnbc = pd.read_csv(data / "msnbc" / "msnbc.csv", usecols=list(MSNBC_COLUMNS), nrows=ROWS)
    msnbc_domain = json.loads((data / "msnbc" / "msnbc-domain.json").read_text())
    if len(msnbc) < ROWS:
        raise ValueError(f"msnbc has {len(msnbc)} rows, need {ROWS}")
    extra = np.random.default_rng(SEED).integers(0, len(salary), ROWS - len(salary))
    rows = np.concatenate([np.arange(len(salary)), extra])
    left = salary.iloc[rows].reset_index(drop=True)[list(SALARY_COLUMNS)]
    right = msnbc.reset_index(drop=True)[list(MSNBC_COLUMNS)]
    table = pd.concat([left, right], axis=1).astype(np.int64)
    domain = {c: int(salary_domain[c]) for c in SALARY_COLUMNS} | {c: int(msnbc_domain[c]) for c in MSNBC_COLUMNS}
    for c, size in domain.items():
        if table[c].min() < 0 or table[c].max() >= size:
            raise ValueError(f"column {c!r}: codes outside 0..{size - 1}")
    return table, domain


def ensure(folder: Path | None = None) -> Path:
    """Build the table into ``folder`` (default :func:`cache_dir`) unless it is there; return the folder."""
    folder = folder or cache_dir()
    csv, dom = folder / f"{NAME}.csv", folder / f"{NAME}-domain.json"
    if csv.exists() and dom.exists():
        with open(csv) as f:
            if sum(1 for _ in f) == ROWS + 1:
                return folder
    folder.mkdir(parents=True, exist_ok=True)
    table, domain = build()
    tmp = csv.with_suffix(".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, csv)
    dom.write_text(json.dumps(domain))
    return folder


if __name__ == "__main__":
    print(ensure())
