"""`dpsynth.synthesize(frame, schema, epsilon=..., generator=...)`: trying dpsynth on your own
data in one call, with a personal ledger that remembers what each table has spent.

The ledger is real (signed policy, signed entries, secure noise) and personal: you are
the officer, the holder and the researcher at once.  It lives in your data directory
(``$DPSYNTH_HOME``, else ``$XDG_DATA_HOME/dpsynth`` or ``~/.local/share/dpsynth``), one
folder per dataset: the table's keyed fingerprint under your personal dataset key
(``dataset.key``, made once, mode 0600).  So repeated calls on the same table add up on
the same ledger and never start again from zero; a different table (any cell changed)
is a different dataset with a ledger of its own.  The total budget (`budget`, default
ε 10) and δ are fixed by the first call on a table, like any policy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["synthesize", "personal_home", "personal_ledger"]

DEFAULT_BUDGET = 10.0
DEFAULT_MAX_RECORDS = 1_000_000  # a public bound, not the table's size (which stays private)


def personal_home() -> Path:
    """Where personal ledgers live: $DPSYNTH_HOME, $XDG_DATA_HOME/dpsynth or ~/.local/share/dpsynth."""
    if os.environ.get("DPSYNTH_HOME"):
        return Path(os.environ["DPSYNTH_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "dpsynth"


def _dataset_key(home: Path) -> bytes:
    from accountant.fingerprint import load_dataset_key, write_dataset_key

    path = home / "dataset.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        write_dataset_key(path)
    return load_dataset_key(path)


def personal_ledger(frame: pd.DataFrame, schema: Any, *, budget: float = DEFAULT_BUDGET, delta: float | None = None,
                    max_records: int = DEFAULT_MAX_RECORDS, home: str | os.PathLike | None = None,
                    ) -> tuple[Any, bytes, Path]:
    """(an open gate, the dataset key, the ledger's folder) for `frame`: the folder of its
    fingerprint, made (keys, signed policy, ledger) the first time."""
    from accountant.fingerprint import fingerprint_table
    from accountant.gate import Gate, init_ledger
    from accountant.keys import load_private_key, write_keypair
    from accountant.policy import render_policy, sign_policy_file

    home = Path(home).expanduser() if home is not None else personal_home()
    key = _dataset_key(home)
    fingerprint = fingerprint_table(schema.validate(frame), key)
    folder = home / "ledgers" / fingerprint.split(":")[-1][:32]
    ledger_path = folder / "ledger.db"
    if not ledger_path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        delta = float(delta) if delta is not None else 0.1 / max_records
        officer_key, _ = write_keypair(folder, "officer", overwrite=True)
        _, ledger_pub = write_keypair(folder, "ledger", overwrite=True)
        policy_path = folder / "policy.toml"
        policy_path.write_text(render_policy(epsilon=budget, delta=delta, relation="add_or_remove_one",
                                             fingerprint=fingerprint, max_records=max_records, generators=("*",),
                                             dataset_name="personal"))
        sign_policy_file(policy_path, load_private_key(officer_key))
        init_ledger(ledger_path, policy_path, officer_key=officer_key, ledger_key=ledger_pub)
    return Gate.open(ledger_path, ledger_key=folder / "ledger.key"), key, folder


def synthesize(frame: pd.DataFrame, schema: Any, *, epsilon: float, generator: str = "mst", n: int | None = None,
               budget: float = DEFAULT_BUDGET, delta: float | None = None, max_records: int = DEFAULT_MAX_RECORDS,
               home: str | os.PathLike | None = None, quiet: bool = False, **parameters: Any) -> pd.DataFrame:
    """Fit `generator` at `epsilon` on `frame` (described by the public `schema`), charged to
    this table's personal ledger, and return `n` synthetic rows (default: as many as the
    table has).  Prints (to stderr) where the ledger is and what remains of its budget.

    Raises what a run would: BudgetExceeded when the ledger cannot afford the run (nothing
    charged), a schema error naming the column, ValueError for a bad parameter."""
    from accountant.words import budget_words
    from dpsynth.generators import GENERATORS
    from dpsynth.table import PrivateTable

    if generator not in GENERATORS:
        raise ValueError(f"generator must be one of {', '.join(sorted(GENERATORS))}, got {generator!r}")
    model = GENERATORS[generator](epsilon=epsilon, **parameters)
    gate, key, folder = personal_ledger(frame, schema, budget=budget, delta=delta, max_records=max_records,
                                        home=home)
    try:
        table = PrivateTable(frame, schema, gate, dataset_key=key)
        model.fit(table)
        rows = model.sample(len(frame) if n is None else n)
        if not quiet:
            words = budget_words(gate.filter, gate.spent_costs(), max_epsilon_per_run=gate.policy.max_epsilon_per_run)
            print(f"dpsynth: charged to the personal ledger {folder / 'ledger.db'}: {words.headline}; "
                  f"{words.next_run}", file=sys.stderr)
        return rows
    finally:
        gate.close()
