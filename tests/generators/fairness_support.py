"""A small table with a rare group (18 rows) for the rebalancing and fairness-fitting tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dpsynth.schema import Column, Schema

SCHEMA = Schema([
    Column("group", "categorical", categories=["a", "b", "rare"]),
    Column("y", "categorical", categories=["no", "yes"]),
    Column("x", "categorical", categories=["p", "q", "r", "s"]),
    Column("z", "categorical", categories=["u", "v"]),
])


def rare_group_frame(n: int = 600, rare: int = 18, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.array(["rare"] * rare + list(rng.choice(["a", "b"], n - rare)))
    y = np.where(rng.random(n) < np.where(group == "a", 0.6, 0.3), "yes", "no")
    x = np.where(y == "yes", rng.choice(["p", "q"], n), rng.choice(["r", "s"], n))
    z = rng.choice(["u", "v"], n)
    return pd.DataFrame({"group": group, "y": y, "x": x, "z": z}).sample(frac=1, random_state=seed) \
        .reset_index(drop=True)
