"""Issue 17: `dpsynth schema learn JOB --epsilon E`: categories and bins learned through the
governed ledger as a purpose the policy allows, with what could not be learned said."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from accountant.testing import make_test_gate
from dpsynth.cli import app
from dpsynth.schema import Schema

JOB = """actor = "alice"
[data]
path = "data.csv"
schema = "schema.toml"
dataset_key = "dataset.key"
[policy]
path = "{policy}"
officer_key = "{officer}"
[ledger]
path = "{ledger}"
key = "{key}"
[generator]
name = "mst"
epsilon = 1.0
[output]
synthetic = "out/s.csv"
model = "out/m.pt"
report = "out/r.html"
n_samples = 100
"""


def _setup(tmp_path, generators):
    from accountant.fingerprint import write_dataset_key

    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"city": rng.choice(["Paris", "Rome", "Oslo"], 1500), "income": rng.uniform(0, 100, 1500)})
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame = pd.read_csv(tmp_path / "data.csv")
    (tmp_path / "schema.toml").write_text('[[columns]]\nname = "city"\nkind = "categorical"\n\n'
                                          '[[columns]]\nname = "income"\nkind = "numeric"\nlower = 0\nupper = 100\n')
    tl = make_test_gate(tmp_path / "l", epsilon=10.0, delta=1e-6, delta_reserve=2e-7, generators=generators,
                        frame=frame)
    write_dataset_key(tmp_path / "dataset.key", tl.dataset_key)
    (tmp_path / "job.toml").write_text(JOB.format(policy=tl.policy_path, officer=tl.officer_pub, ledger=tl.ledger_path,
                                                  key=tl.ledger_key))
    return tl


def test_schema_learn_writes_the_learned_schema_and_says_what_it_could_not_learn(tmp_path):
    _setup(tmp_path, ("mst", "schema"))
    out = CliRunner().invoke(app, ["schema", "learn", str(tmp_path / "job.toml"), "--epsilon", "2", "--delta", "1e-7",
                                   "--bins", "4", "--out", str(tmp_path / "learned.toml")])
    assert out.exit_code == 0, out.output
    learned = Schema.load(tmp_path / "learned.toml")
    assert learned.is_complete and learned.column("city").categories == ("Oslo", "Paris", "Rome")
    assert "city: 3 categories found; a category held by fewer than about" in out.output
    assert "income: " in out.output and "bins from DP quantiles" in out.output
    assert "% of the budget used" in out.output


def test_schema_learn_is_refused_uncharged_when_the_policy_does_not_allow_it(tmp_path):
    from accountant.ledger.sqlite import SQLiteLedgerStore

    tl = _setup(tmp_path, ("mst",))
    out = CliRunner().invoke(app, ["schema", "learn", str(tmp_path / "job.toml"), "--epsilon", "2", "--delta", "1e-7",
                                   "--out", str(tmp_path / "learned.toml")])
    assert out.exit_code == 1 and "adds 'schema' to the policy's generators" in out.output
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        assert not store.snapshot().entries
    finally:
        store.close()
    assert not (tmp_path / "learned.toml").exists()
