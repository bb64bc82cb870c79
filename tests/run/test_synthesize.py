"""Issue 17: `dpsynth.synthesize(frame, schema, epsilon=...)` — one call on your own data, with a
personal ledger per dataset fingerprint that adds up across calls and never starts from zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dpsynth
from accountant.conversions import zcdp_epsilon, zcdp_rho
from accountant.gate import BudgetExceeded
from dpsynth.schema import Column, Schema


def _frame(seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"flag": (rng.random(300) < 0.3).astype(int), "n": rng.integers(0, 4, 300),
                         "city": rng.choice(["a", "b", "c"], 300)})


SCHEMA = Schema([Column("flag", "boolean"), Column("n", "integer", lower=0, upper=5),
                 Column("city", "categorical", categories=["a", "b", "c"])])


def test_repeated_calls_add_up_on_one_personal_ledger_per_table(tmp_path, monkeypatch, capsys):
    from accountant.ledger.sqlite import SQLiteLedgerStore

    monkeypatch.setenv("DPSYNTH_HOME", str(tmp_path / "home"))
    frame = _frame()
    rows = dpsynth.synthesize(frame, SCHEMA, epsilon=1.0, generator="independent", budget=2.5)
    assert len(rows) == len(frame) and set(rows["flag"].unique()) <= {0, 1}
    err = capsys.readouterr().err
    assert "personal ledger" in err and str(tmp_path / "home" / "ledgers") in err
    ledgers = list((tmp_path / "home" / "ledgers").glob("*/ledger.db"))
    assert len(ledgers) == 1
    dpsynth.synthesize(frame, SCHEMA, epsilon=1.0, generator="independent", n=10)
    # The same table: the same ledger, both runs on it (not a fresh one).
    assert list((tmp_path / "home" / "ledgers").glob("*/ledger.db")) == ledgers
    store = SQLiteLedgerStore(ledgers[0])
    try:
        charges = [e for e in store.snapshot().entries if e.kind == "charge"]
    finally:
        store.close()
    assert len({e.run_id for e in charges}) == 2
    # zCDP adds ρ: after two runs of ε 1, a budget of ε 2.5 (fixed by the first call) leaves
    # ρ(2.5) - 2ρ(1), about ε 1.97 at δ 1e-7: a run of ε 2 is refused with nothing charged.
    rho_left = zcdp_rho(2.5, 1e-7) - 2 * zcdp_rho(1.0, 1e-7)
    assert 1.9 < zcdp_epsilon(rho_left, 1e-7) < 2.0
    with pytest.raises(BudgetExceeded, match="nothing was charged"):
        dpsynth.synthesize(frame, SCHEMA, epsilon=2.0, generator="independent")
    # Another table has a ledger of its own.
    dpsynth.synthesize(_frame(1), SCHEMA, epsilon=1.0, generator="independent", n=5, quiet=True)
    assert len(list((tmp_path / "home" / "ledgers").glob("*/ledger.db"))) == 2
    assert oct((tmp_path / "home" / "dataset.key").stat().st_mode & 0o777) == "0o600"
