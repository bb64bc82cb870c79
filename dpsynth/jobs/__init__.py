"""Config-driven synthesis runs: a JOB.toml names the data, schema, signed policy, ledger,
generator, ε and outputs; `run_job` validates all of it before any measurement, then fits,
samples, saves the model (with its receipts), evaluates and writes an HTML run report.

    from dpsynth.jobs import load_job, run_job
    result = run_job(load_job("job.toml"))
    print(result.epsilon_run, result.report_path)
"""

from .run import PreparedRun, RunResult, prepare, receipts_epsilon, run_job
from .spec import JobError, JobSpec, load_job, parse_job

__all__ = ["JobError", "JobSpec", "PreparedRun", "RunResult", "load_job", "parse_job", "prepare",
           "receipts_epsilon", "run_job"]
