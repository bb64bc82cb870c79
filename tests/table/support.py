"""Small tables and gates for the private-table tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from accountant.testing import make_test_gate
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.table import PrivateTable

SCHEMA = Schema([
    Column("colour", "categorical", categories=["red", "green", "blue"]),
    Column("size", "numeric", lower=0.0, upper=10.0, bins=5),
    Column("flag", "boolean"),
    Column("count", "integer", lower=0, upper=5, bins=3, nullable=True),
])


def small_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    count = rng.integers(0, 6, n).astype(float)
    count[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "colour": rng.choice(["red", "green"], n),  # "blue" is declared but absent
        "size": rng.uniform(0, 10, n),
        "flag": rng.random(n) < 0.3,
        "count": count,
    })


def gate(tmp_path, name: str = "ledger", **kwargs):
    kwargs.setdefault("epsilon", 20.0)
    kwargs.setdefault("delta", 1e-6)
    return make_test_gate(tmp_path / name, **kwargs).gate


def governed(tmp_path, frame, name: str = "ledger", **kwargs):
    """A test ledger whose policy governs `frame` (its dataset key in `.dataset_key`)."""
    kwargs.setdefault("epsilon", 20.0)
    kwargs.setdefault("delta", 1e-6)
    return make_test_gate(tmp_path / name, frame=frame, **kwargs)


def table(tmp_path, frame=None, schema=SCHEMA, seed: int = 1, **kwargs) -> PrivateTable:
    frame = small_frame() if frame is None else frame
    tl = governed(tmp_path, frame, **kwargs)
    return PrivateTable(frame, schema, tl.gate, dataset_key=tl.dataset_key, random_source=SeededRandomSource(seed))


def exact_marginal(frame: pd.DataFrame, codes_of: dict[str, np.ndarray], clique, shape) -> np.ndarray:
    """Counts by pandas (a second implementation, independent of dpsynth.table.queries)."""
    df = pd.DataFrame({c: codes_of[c] for c in clique})
    counts = df.value_counts()
    out = np.zeros(shape, dtype=np.int64)
    for key, v in counts.items():
        key = key if isinstance(key, tuple) else (key,)
        out[key] = v
    return out
