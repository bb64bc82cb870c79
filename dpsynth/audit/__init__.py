"""Empirical privacy audits: lower bounds on what a generator actually leaks.

    from dpsynth.audit import audit
    result = audit("mst", epsilon=1.0, runs=500, out="audit-mst")
    result.flagged, result.summary["eps_lb"], result.report   # report: an HTML page

The generator is fitted `runs` times on each of two neighbouring made-up tables (the
worst-case pair of its family, `worlds.py`), every fit through the real gate on an audit
ledger of its own (`ledger.py`); each fit is reduced to scores (`statistics.py`), and the
scores to lower bounds on ε (`bounds.py`, `verdict.py`).  A bound above the claim shows a
leak; a bound below it is not a proof of privacy.  docs/audit.md says how to read one.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .bounds import ceiling, eps_from_mu, eps_lb_cp, mu_from_eps, mu_lb_gdp, split_audit
from .ledger import AUDIT_BUDGET
from .results import ResultsError, ResultsFile
from .runner import DEFAULT_PARAMS, AuditConfig, run_fits
from .verdict import summarize
from .worlds import FAMILIES, WorldPair, worst_case_pair

__all__ = ["audit", "AuditResult", "AuditConfig", "ResultsError", "worst_case_pair", "WorldPair", "FAMILIES",
           "DEFAULT_PARAMS", "split_audit", "eps_lb_cp", "mu_lb_gdp", "ceiling", "eps_from_mu", "mu_from_eps"]

RESULTS_NAME, SUMMARY_NAME, REPORT_NAME = "results.jsonl", "summary.json", "report.html"


@dataclass
class AuditResult:
    """What an audit found, and where it wrote it."""

    config: AuditConfig
    summary: dict[str, Any]
    results: Path
    report: Path
    summary_path: Path

    @property
    def flagged(self) -> bool:
        return bool(self.summary["flagged"])


def _factory_name(factory: Callable | None) -> str | None:
    if factory is None:
        return None
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def audit(generator: str, *, epsilon: float, runs: int, out: str | os.PathLike,
          params: Mapping[str, Any] | None = None, delta: float = 1e-5, relation: str = "add_or_remove_one",
          n_synth: int = 1000, alpha: float = 0.05, jobs: int | None = None, resume: bool = False,
          seed: int | None = None, factory: Callable[[AuditConfig, int | None], Any] | None = None,
          progress: bool = True) -> AuditResult:
    """Audit `generator` (a name in `dpsynth.generators.GENERATORS`) at the claimed `epsilon`.

    `runs` fits per world; `params` the generator's parameters (over the audit's small
    defaults, `DEFAULT_PARAMS`); `relation` the neighbouring relation (a policy's); `jobs`
    worker processes (default: every core); `resume` continues `out/results.jsonl` (refused
    if it was written for another configuration or edited); `seed` TESTS ONLY (seeded noise).
    `factory(config, seed)` builds the generator instead of the named class — for auditing a
    modified generator (the canaries in tests); it must have the named generator's shape.
    Writes results.jsonl, summary.json and report.html in `out`."""
    config = AuditConfig(generator=generator, epsilon=epsilon, runs=runs, delta=delta, relation=relation,
                         params=dict(params or {}), n_synth=n_synth, alpha=alpha, seed=seed,
                         factory=_factory_name(factory))
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if factory is None:  # a bad parameter is refused before any ledger or file is made
        from .runner import make_generator

        make_generator(config, None)
    out = Path(out)
    results = ResultsFile(out / RESULTS_NAME, config.to_dict())
    if resume:
        results.resume()
    else:
        for name in (RESULTS_NAME, SUMMARY_NAME, REPORT_NAME):  # never overwrite an earlier audit's files
            if (out / name).exists():
                raise FileExistsError(f"{out / name} exists: pass resume=True (--resume) or another output folder")
        results.start()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    c0 = time.process_time()
    try:
        wall = run_fits(config, results, jobs=jobs, factory=factory, progress=progress)
    except BaseException:
        if not resume and not results.fits:  # failed before any fit finished: leave nothing behind
            results.path.unlink(missing_ok=True)
        raise
    summary = summarize(config.to_dict(), results.fits)
    pair = worst_case_pair(generator, relation).describe()
    timing = {"wall_seconds": wall, "jobs": jobs, "started": started, "parent_cpu_seconds": time.process_time() - c0,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "audit_budget": AUDIT_BUDGET}
    summary_path = out / SUMMARY_NAME
    plain = {k: v for k, v in summary.items() if k != "statistics"}
    plain["statistics"] = {k: {kk: vv for kk, vv in s.items() if kk not in ("out", "in")}
                           for k, s in summary["statistics"].items()}
    summary_path.write_text(json.dumps({"config": config.to_dict(), "summary": plain, "worlds": pair,
                                        "timing": timing}, indent=1), encoding="utf-8")
    from .report import write_report

    report = write_report(out / REPORT_NAME, config.to_dict(), summary, pair, timing)
    return AuditResult(config, summary, results.path, report, summary_path)
