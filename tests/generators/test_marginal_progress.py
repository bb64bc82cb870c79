"""Issue 17: MST and AIM accepted `progress` and ignored it (AIM runs for minutes)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from accountant.testing import make_test_gate
from dpsynth.schema import Column, Schema
from tests.generators.marginal_support import seeded_table


def _table(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.choice(["x", "y"], 300), "b": rng.choice(["u", "v", "w"], 300),
                          "c": rng.integers(0, 4, 300)})
    schema = Schema([Column("a", "categorical", categories=["x", "y"]),
                     Column("b", "categorical", categories=["u", "v", "w"]),
                     Column("c", "integer", lower=0, upper=3)])
    led = make_test_gate(tmp_path, epsilon=4.0, frame=schema.validate(frame))
    return seeded_table(frame, schema, led)


def test_mst_and_aim_report_their_steps_when_asked_and_stay_quiet_otherwise(tmp_path, capsys):
    from dpsynth.generators.marginal import AIM, MST

    table = _table(tmp_path)
    MST(epsilon=1.0, device="cpu", progress=True, iters=50).fit(table)
    err = capsys.readouterr().err
    assert "[mst] measuring 3 1-way marginals" in err and "selecting tree edge 2 of 2" in err
    assert "[mst] done" in err
    AIM(epsilon=1.0, device="cpu", progress=True, iters=50).fit(table)
    err = capsys.readouterr().err
    assert "[aim] round 1: measuring" in err and "% of the run's budget after it" in err and "[aim] done" in err
    MST(epsilon=0.5, device="cpu", iters=50).fit(table)
    assert capsys.readouterr().err == ""
