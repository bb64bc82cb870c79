"""Small tables, schemas and gates shared by the DP-CTGAN tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from accountant.testing import make_test_gate

# Two busy test workers on two cores: torch's intra-op threads only contend.
torch.set_num_threads(1)

SCHEMA = [
    {"name": "colour", "kind": "categorical", "categories": ["red", "green", "blue"]},
    {"name": "size", "kind": "numeric", "lower": 0.0, "upper": 10.0},
    {"name": "flag", "kind": "boolean"},
    {"name": "count", "kind": "integer", "lower": 0, "upper": 5, "nullable": True},
]

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


def gate(tmp_path, epsilon: float = 5.0, delta: float = 1e-6, max_records: int = 200, **kw):
    return make_test_gate(tmp_path, epsilon=epsilon, delta=delta, max_records=max_records, **kw).gate
