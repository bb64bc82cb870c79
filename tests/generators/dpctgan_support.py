"""Small tables, schemas, ledgers and private tables shared by the DP-CTGAN tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from accountant.ledger.sqlite import SQLiteLedgerStore
from accountant.testing import TestLedger, make_test_gate
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.table import PrivateTable

# Two busy test workers on two cores: torch's intra-op threads only contend.
torch.set_num_threads(1)

SCHEMA = Schema([
    Column("colour", "categorical", categories=["red", "green", "blue"]),
    Column("size", "numeric", lower=0.0, upper=10.0, bins=5),
    Column("flag", "boolean"),
    Column("count", "integer", lower=0, upper=5, bins=3, nullable=True),
])

TINY = dict(epochs=2, batch_size=20, generator_dims=(16, 16), discriminator_dims=(16, 16), embedding_dim=8,
            progress=False, device="cpu")


def small_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    count = rng.integers(0, 6, n).astype(float)
    count[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "colour": rng.choice(["red", "green"], n),  # "blue" is in the schema but never in the data
        "size": rng.uniform(0, 10, n),
        "flag": rng.random(n) < 0.3,
        "count": count,
    })


def worst_case_record() -> dict:
    """Rare or absent values everywhere, numeric at the bound."""
    return {"colour": "blue", "size": 10.0, "flag": True, "count": np.nan}


def ledger(tmp_path, frame: pd.DataFrame, schema: Schema = SCHEMA, *, epsilon: float = 5.0, delta: float = 1e-6,
           max_records: int = 200, **kw) -> TestLedger:
    """A real test ledger whose policy governs exactly `frame` (its keyed fingerprint)."""
    return make_test_gate(tmp_path, epsilon=epsilon, delta=delta, max_records=max_records,
                          frame=schema.validate(frame), **kw)


def private_table(tl: TestLedger, frame: pd.DataFrame, schema: Schema = SCHEMA, *, seed: int | None = 0,
                  cls: type = PrivateTable) -> PrivateTable:
    """The table bound to `tl`'s gate: seeded test noise (`seed`), or the secure source (None)."""
    source = None if seed is None else SeededRandomSource(seed)
    return cls(frame, schema, tl.gate, dataset_key=tl.dataset_key, random_source=source)


def table_and_ledger(tmp_path, frame: pd.DataFrame | None = None, schema: Schema = SCHEMA, *, seed: int | None = 0,
                     cls: type = PrivateTable, **ledger_kw) -> tuple[PrivateTable, TestLedger]:
    frame = small_frame() if frame is None else frame
    tl = ledger(tmp_path, frame, schema, **ledger_kw)
    return private_table(tl, frame, schema, seed=seed, cls=cls), tl


def ledger_entries(tl: TestLedger) -> tuple:
    """Every entry in the ledger file, read afresh from the file (not through the gate)."""
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        return store.snapshot().entries
    finally:
        store.close()


def exact_category_counts(frame: pd.DataFrame, schema: Schema = SCHEMA) -> list[np.ndarray]:
    """Exact counts per categorical column, by pandas (in the layout's slot order: the declared
    categories, then missing where the column is nullable)."""
    out = []
    for c in schema.columns:
        if not c.is_discrete:
            continue
        values = frame[c.name]
        counts = [int((values.dropna().astype(object) == v).sum()) for v in c.categories]
        if c.nullable:
            counts.append(int(values.isna().sum()))
        out.append(np.asarray(counts, dtype=np.float64))
    return out
