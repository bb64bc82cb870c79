"""A job file run from Python, then a small comparison of generators.

Run:  python docs/examples/run_and_compare.py
"""

import tempfile
from pathlib import Path

from dpsynth.compare import compare
from dpsynth.demo import demo_schema, demo_table, setup_workspace, write_job
from dpsynth.jobs import load_job, run_job

ws = Path(tempfile.mkdtemp(prefix="dpsynth-example-"))
setup_workspace(ws, n_rows=2000)               # officer: table, schema, keys, signed policy, ledger
job = write_job(ws / "job.toml", generator="independent", parameters={}, epsilon=0.5, n_samples=2000)
result = run_job(load_job(job))                # validates everything, then fit/sample/save/report
print(f"epsilon {result.epsilon_run:.3f} spent; report at {result.report_path}")

# Two generators x two epsilons on one table, split into train and test; every run is
# charged to a ledger made for the comparison (in out/ledger/).
res = compare(demo_table(1000), demo_schema(), generators={"independent": {}, "mst": {}}, epsilons=[0.5, 2.0],
              target="income", utility_models=["logistic_regression"], out=ws / "compare")
print(res.results.pivot_table(index=["generator", "epsilon"], columns="metric", values="value")
      [["tvd_1way", "tvd_2way", "tvd_3way"]])
print(f"page: {res.page}")
