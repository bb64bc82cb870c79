"""A job file run from Python, then a small comparison of generators.

Run:  python docs/examples/run_and_compare.py
"""

import tempfile
from pathlib import Path

import pandas as pd

from accountant import Gate
from accountant.fingerprint import load_dataset_key
from dpsynth.compare import compare
from dpsynth.demo import setup_workspace, write_job
from dpsynth.jobs import load_job, run_job
from dpsynth.schema import Schema

ws = Path(tempfile.mkdtemp(prefix="dpsynth-example-"))
setup_workspace(ws, n_rows=2000)               # officer: table, schema, keys, signed policy, ledger
job = write_job(ws / "job.toml", generator="independent", parameters={}, epsilon=0.5, n_samples=2000)
result = run_job(load_job(job))                # validates everything, then fit/sample/save/report
print(f"epsilon {result.epsilon_run:.3f} spent; report at {result.report_path}")

# Two generators x two epsilons on the same governed table, split into train and test.  A
# comparison spends the governed budget: every run is charged to the officer's ledger through its
# gate, the dataset key binds the table to the policy, and a comparison that would not fit what
# the ledger still admits is refused before anything is charged.
gate = Gate.open(ws / "ledger.db", ledger_key=ws / "keys" / "ledger.key")
try:
    res = compare(pd.read_csv(ws / "data.csv"), Schema.load(ws / "schema.toml"), gate=gate,
                  dataset_key=load_dataset_key(ws / "keys" / "dataset.key"),
                  generators={"independent": {}, "mst": {}}, epsilons=[0.5, 1.0], target="income",
                  utility_models=["logistic_regression"], out=ws / "compare")
finally:
    gate.close()
print(res.results.pivot_table(index=["generator", "epsilon"], columns="metric", values="value")
      [["tvd_1way", "tvd_2way", "tvd_3way"]])
print(f"page: {res.page}; every run charged to {res.ledger}")
