"""Jobs run inside the service: fit a generator on a governed dataset, sample, seal.

A job is checked when it is submitted — the generator exists and the policy
allows it, its parameters build, its whole run fits the ledger, the policy's
per-run cap and the person's cap (`_preflight`) — and checked again just before
it starts (the ledger may have moved).  It then runs on a bounded pool of
worker threads, on a view of the dataset's table in the submitter's name.

What leaves: the synthetic table, the sealed model file and the receipts, to the
person who submitted the job.  The run report of a local run is not made: its
quality figures are computed on the real rows without noise (a data holder's
document, proofs/threat_model.md §6).

Cancelling: a queued job never starts (nothing is charged); a running one stops
before its next charge or session step.  What it charged before stands — each of
those charges was released to the run, and a refund would let a person learn
from a run (its progress, its timing) without paying; see docs/team.md.
A service restarted mid-run marks the job `interrupted` (its charges stand) and
starts queued jobs again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

from .table import JobCancelled, ServedTable

__all__ = ["JobManager", "JobRefused", "job_spec"]

log = logging.getLogger("dpsynth.serve")
MAX_SAMPLES = 10_000_000
FINAL_STATES = ("succeeded", "failed", "cancelled", "interrupted")


class JobRefused(ValueError):
    """The job cannot run (names the field); nothing was charged."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.status = status


def job_spec(data: Mapping[str, Any]) -> dict[str, Any]:
    """The submitted job, checked for shape (the generator checks its own parameters)."""
    allowed = {"dataset", "generator", "epsilon", "parameters", "n_samples"}
    extra = sorted(set(data) - allowed)
    if extra:
        raise JobRefused(extra[0], "unknown field")
    gen = data.get("generator")
    if not isinstance(gen, str) or not gen:
        raise JobRefused("generator", "a generator name is required")
    eps = data.get("epsilon")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (math.isfinite(eps) and eps > 0):
        raise JobRefused("epsilon", f"must be a finite number > 0, got {eps!r}")
    params = data.get("parameters") or {}
    if not isinstance(params, dict):
        raise JobRefused("parameters", "must be an object")
    n = data.get("n_samples")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLES:
        raise JobRefused("n_samples", f"must be an integer in [1, {MAX_SAMPLES}], got {n!r}")
    return {"dataset": data.get("dataset"), "generator": gen, "epsilon": float(eps), "parameters": params,
            "n_samples": n}


def _minute() -> str:
    from accountant.ledger.entry import coarse_timestamp

    return coarse_timestamp()


class JobManager:
    def __init__(self, service: Any, workers: int) -> None:
        self._service = service
        self._state = service.state
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dpsynth-job")
        self._cancel: dict[str, threading.Event] = {}
        self._tables: dict[str, ServedTable] = {}
        self._guard = threading.Lock()
        self.folder = service.state.folder / "jobs"
        self.folder.mkdir(parents=True, exist_ok=True)

    # -- start-up ------------------------------------------------------------------------------
    def recover(self) -> None:
        """After a restart: a job that was running is interrupted (its charges stand); queued ones run."""
        for job in self._state.jobs(states=("running",)):
            self._state.update_job(job.id, state="interrupted", stage="interrupted", finished=_minute(),
                                   error="the service stopped while the job ran; charges made before stand")
            shutil.rmtree(self.folder / job.id, ignore_errors=True)
        for job in self._state.jobs(states=("queued",)):
            self._start(job.id)

    def shutdown(self) -> None:
        with self._guard:
            for ev in self._cancel.values():
                ev.set()
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- submission ------------------------------------------------------------------------------
    def _generator(self, dataset: Any, spec: Mapping[str, Any]) -> Any:
        from dpsynth.generators import GENERATORS
        from dpsynth.jobs.run import build_generator
        from dpsynth.jobs.spec import JobError

        name = spec["generator"]
        if name not in GENERATORS:
            raise JobRefused("generator", f"unknown generator {name!r}; choose one of {', '.join(sorted(GENERATORS))}")
        policy = dataset.gate.policy
        if not policy.allows_generator(name):
            raise JobRefused("generator", f"the policy does not allow {name!r}", status=403)
        if policy.max_epsilon_per_run is not None and spec["epsilon"] > policy.max_epsilon_per_run:
            raise JobRefused("epsilon", f"{spec['epsilon']:g} exceeds the policy's max_epsilon_per_run "
                                        f"{policy.max_epsilon_per_run:g}", status=409)
        if any(k in spec["parameters"] for k in ("seed", "progress")):
            raise JobRefused("parameters", "seed and progress are set by the service (no seeded noise)")
        try:
            return build_generator(GENERATORS[name], spec["epsilon"], dict(spec["parameters"]), progress=False,
                                   field_prefix="parameters")
        except JobError as exc:
            raise JobRefused(exc.field, str(exc).split(": ", 1)[-1]) from None

    def _preflight(self, dataset: Any, person: str, cap: float | None, spec: Mapping[str, Any],
                   table: ServedTable | None = None) -> Any:
        """Every check before the first charge: the generator's own (its whole run against the
        ledger and the per-run cap), and the person's cap against the whole run."""
        from accountant.errors import BudgetExceeded, PolicyViolation
        from accountant.events import ZCdpEvent

        gen = self._generator(dataset, spec)
        view = table if table is not None else ServedTable.over(dataset.table, actor=person, actor_cap=cap)
        try:
            plan = gen.preflight(view)
        except (BudgetExceeded, PolicyViolation) as exc:
            raise JobRefused("epsilon", str(exc), status=409) from None
        except (TypeError, ValueError) as exc:
            raise JobRefused("parameters", str(exc)) from None
        if cap is not None:
            if isinstance(plan, Mapping) and "rho" in plan:
                # A marginal run spends at most ρ in zCDP: its events cost at most α·ρ at any order.
                events = [ZCdpEvent(float(plan["rho"]), relation=dataset.gate.relation)]
            else:
                events = list(plan.events)
            try:
                dataset.gate.check_actor_cap(person, events, cap)
            except BudgetExceeded as exc:
                raise JobRefused("epsilon", str(exc), status=409) from None
        return gen

    def submit(self, dataset: Any, person: str, cap: float | None, data: Mapping[str, Any],
               request_id: str) -> tuple[Any, bool]:
        spec = job_spec({**data, "dataset": dataset.name})
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        existing = [j for j in self._state.jobs(person=person) if j.request_id == request_id]
        if existing:
            if existing[0].request_sha256 != digest:
                raise JobRefused("request_id", "was used for another job", status=409)
            return existing[0], False
        self._preflight(dataset, person, cap, spec)
        job, new = self._state.add_job(uuid.uuid4().hex, person, request_id, dataset.name, digest, spec, _minute())
        if new:
            self._start(job.id)
        elif job.request_sha256 != digest:
            raise JobRefused("request_id", "was used for another job", status=409)
        return job, new

    def _start(self, job_id: str) -> None:
        with self._guard:
            self._cancel[job_id] = threading.Event()
        self._pool.submit(self._run, job_id)

    def cancel(self, job_id: str) -> Any:
        job = self._state.job(job_id)
        if job is None or job.state in FINAL_STATES:
            return job
        with self._guard:
            ev = self._cancel.get(job_id)
        if ev is not None:
            ev.set()
        if job.state == "queued":
            self._state.update_job(job_id, state="cancelled", stage="cancelled", finished=_minute(),
                                   error="cancelled before it started: nothing was charged")
        return self._state.job(job_id)

    def progress(self, job_id: str) -> dict[str, Any]:
        """Charges so far of a running job (each one is in the ledger; nothing else is shown)."""
        with self._guard:
            table = self._tables.get(job_id)
        return {} if table is None else {"charges_so_far": len(table.charges)}

    # -- running -------------------------------------------------------------------------------------
    def _run(self, job_id: str) -> None:
        from accountant.gate import receipts_epsilon
        from dpsynth.jobs.tables import atomic_write, write_table

        job = self._state.job(job_id)
        with self._guard:
            cancel = self._cancel.get(job_id, threading.Event())
        if job is None or job.state != "queued" or cancel.is_set():
            return
        service = self._service
        dataset = service.datasets.get(job.dataset)
        person = service.config.person(job.person)
        if dataset is None or person is None or not person.has("researcher"):
            self._state.update_job(job_id, state="failed", stage="refused", finished=_minute(),
                                   error="the dataset or the person is no longer in the service's configuration")
            return
        cap = service.config.cap(person, dataset.name)
        table = ServedTable.over(dataset.table, actor=person.name, actor_cap=cap, cancel=cancel)
        with self._guard:
            self._tables[job_id] = table
        self._state.update_job(job_id, state="running", stage="checks")
        out = self.folder / job_id
        try:
            try:
                gen = self._preflight(dataset, person.name, cap, job.spec, table)
            except JobRefused as exc:
                self._state.update_job(job_id, state="failed", stage="refused", finished=_minute(),
                                       error=f"{exc} (nothing was charged)")
                return
            self._state.update_job(job_id, stage="fit")
            gen.fit(table, actor=person.name)
            if cancel.is_set():
                raise JobCancelled("the job was cancelled")
            self._state.update_job(job_id, stage="sample")
            synthetic = gen.sample(job.spec["n_samples"])
            self._state.update_job(job_id, stage="save")
            out.mkdir(parents=True, exist_ok=True)
            write_table(synthetic, out / "synthetic.csv")
            atomic_write(out / "model.dpsynth", gen.save)
            receipts = [r.to_dict() for r in gen.receipts]
            (out / "receipts.json").write_text(json.dumps(receipts, indent=1))
            self._state.update_job(job_id, state="succeeded", stage="done", finished=_minute(), receipts=receipts,
                                   epsilon=receipts_epsilon(list(gen.receipts), dataset.gate.metadata.delta))
        except JobCancelled:
            self._finish_stopped(job_id, table, out, "cancelled", "cancelled by its owner")
        except Exception:  # noqa: BLE001 - a failure after a charge must not echo data-dependent text
            error_id = secrets.token_hex(6)
            log.exception("job %s failed (error id %s)", job_id, error_id)
            spent = "its charges so far stand" if table.charges else "nothing was charged"
            self._finish_stopped(job_id, table, out, "failed",
                                 f"the run failed; {spent} (error id {error_id} in the service log)")
        finally:
            with self._guard:
                self._tables.pop(job_id, None)
                self._cancel.pop(job_id, None)

    def _finish_stopped(self, job_id: str, table: ServedTable, out: Path, state: str, why: str) -> None:
        shutil.rmtree(out, ignore_errors=True)
        receipts = [r.to_dict() for r in table.receipts]
        self._state.update_job(job_id, state=state, stage=state, finished=_minute(), receipts=receipts,
                               error=f"{why}; {len([r for r in receipts if r['kind'] == 'charge'])} charge(s) made")

    def output(self, job_id: str, name: str) -> Path | None:
        if name not in ("synthetic.csv", "model.dpsynth", "receipts.json"):
            return None
        p = self.folder / job_id / name
        return p if p.is_file() else None
