"""Fit a generator many times in both worlds, in parallel, into a resumable results file.

Each task is a chunk of run indices of one world.  A worker process builds a fresh audit
ledger for the chunk (`ledger.py`), then for every run: a new `PrivateTable` on the
world's table bound to that ledger, a fresh generator, `fit` (charged through the gate
before it measures), `sample(n_synth)` (which re-verifies the model's receipts), and the
scores (`statistics.py`).  The parent appends each finished chunk to the results file, so
an interrupted audit resumes where it stopped.  With `seed` set, every fit's noise, model
and sample seeds derive from (seed, run, world) and the audit ledgers allow seeded noise;
without it, every fit draws secure noise.
"""

from __future__ import annotations

import inspect
import math
import os
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .ledger import audit_gate
from .results import ResultsFile
from .statistics import has_marginal_releases, marginal_lrt, target_count, value_count
from .worlds import FAMILIES, MAX_RECORDS, WORLDS, worst_case_pair

__all__ = ["AuditConfig", "DEFAULT_PARAMS", "run_fits", "make_generator"]

# Small, fast configurations the audit uses unless the auditor overrides them (--param):
# the bound is about the mechanism, and a smaller model only makes a leak easier to see.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "mst": {"iters": 200},
    "aim": {"iters": 50, "final_iters": 200},
    "independent": {"iters": 100},
    "dpctgan": {"epochs": 2, "batch_size": 4, "embedding_dim": 8, "generator_dims": [32],
                "discriminator_dims": [32]},
    # 8 teachers and 8 label queries: the smallest plan dpsynth does not refuse as useless at ε = 1
    # with the audit's max_records (benchmarks/pategan_audit.py audits the 2024 two-teacher setting).
    "pategan": {"teachers": 8, "queries": 8, "queries_per_iteration": 8, "teacher_hidden": [16],
                "teacher_lr": 0.01, "teacher_batch": 8, "teacher_steps": 4, "student_dims": [32],
                "student_lr": 0.01, "student_steps": 5, "generator_dims": [32], "embedding_dim": 8,
                "generator_lr": 0.01, "generator_steps": 5, "batch_size": 64},
}
_TUPLES = {"generator_dims", "discriminator_dims", "teacher_hidden", "student_dims"}


@dataclass(frozen=True)
class AuditConfig:
    """Everything the fits depend on (public numbers); the results file is keyed to it."""

    generator: str
    epsilon: float
    runs: int                        # fits per world
    delta: float = 1e-5
    relation: str = "add_or_remove_one"
    params: Mapping[str, Any] = field(default_factory=dict)
    n_synth: int = 1000              # synthetic rows per fit (the black-box statistic counts the target among them)
    alpha: float = 0.05              # total one-sided error of the verdict's bounds
    seed: int | None = None          # TESTS ONLY: seeded noise; None = secure noise
    factory: str | None = None       # a custom generator factory's qualified name (canaries in tests)

    def __post_init__(self) -> None:
        if self.generator not in FAMILIES:
            raise ValueError(f"generator: unknown generator {self.generator!r}; choose from "
                             f"{', '.join(sorted(FAMILIES))}")
        for name in ("epsilon", "delta", "alpha"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
        if not (self.delta < 1 and self.alpha < 1):
            raise ValueError("delta and alpha must be below 1")
        for name in ("runs", "n_synth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        if self.runs < 4:
            raise ValueError(f"runs must be at least 4 per world (half pick the threshold, half bound ε), "
                             f"got {self.runs}")
        if self.runs > 1_000_000 or self.n_synth > 10_000_000:
            raise ValueError("runs (at most 1,000,000) or n_synth (at most 10,000,000) is too large")
        worst_case_pair(self.generator, self.relation)  # checks the relation
        if not isinstance(self.params, Mapping) or any(not isinstance(k, str) for k in self.params):
            raise ValueError("params must be a mapping of parameter names to values")
        for k in ("epsilon", "seed", "progress", "device"):
            if k in self.params:
                raise ValueError(f"params: {k!r} is set by the audit, not a parameter")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0):
            raise ValueError(f"seed must be an integer >= 0 or None, got {self.seed!r}")

    @property
    def family(self) -> str:
        return FAMILIES[self.generator]

    def generator_params(self) -> dict[str, Any]:
        """The audit's defaults for this generator, overridden by the auditor's parameters."""
        return {**DEFAULT_PARAMS.get(self.generator, {}), **dict(self.params)}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = self.generator_params()
        return d


def make_generator(config: AuditConfig, seed: int | None, cls: type | None = None) -> Any:
    """The generator as the data holder would construct it, with the audit's parameters
    (`cls`: a class with the named generator's constructor, e.g. a modified one in tests)."""
    from dpsynth.generators import GENERATORS

    cls = cls or GENERATORS[config.generator]
    kw = {k: tuple(v) if k in _TUPLES and isinstance(v, list) else v for k, v in config.generator_params().items()}
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(kw) - set(accepted))
    if unknown:
        raise ValueError(f"params: {config.generator} has no parameter {unknown[0]!r}")
    kw["epsilon"] = config.epsilon
    if "progress" in accepted:
        kw["progress"] = False
    if "device" in accepted:
        kw["device"] = "cpu"
    if "seed" in accepted:
        kw["seed"] = seed
    return cls(**kw)


def _seeds(seed: int | None, run: int, world: str) -> list[int | None]:
    if seed is None:
        return [None, None, None]
    return [int(x) for x in np.random.SeedSequence([seed, run, WORLDS.index(world)]).generate_state(3)]


def run_chunk(config: AuditConfig, world: str, runs: Sequence[int],
              factory: Callable[[AuditConfig, int | None], Any] | None = None) -> list[dict[str, Any]]:
    """Fit the generator once per run index in `runs` on `world`'s table, each fit charged to
    one audit ledger made for this chunk in a temporary folder (deleted afterwards)."""
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    if config.family in ("dpctgan", "pategan") or "torch" in sys.modules:
        import torch

        torch.set_num_threads(1)  # one core per worker: the pool is the parallelism
    pair = worst_case_pair(config.generator, config.relation)
    frame = pair.frame(world)
    make = factory or make_generator
    out = []
    with tempfile.TemporaryDirectory(prefix=f"dpsynth-audit-{world}-") as tmp:
        ledger = audit_gate(Path(tmp) / "ledger", frame, pair.schema, delta=config.delta, relation=pair.relation,
                            max_records=MAX_RECORDS, seeded=config.seed is not None)
        try:
            for run in runs:
                s = _seeds(config.seed, int(run), world)
                t0, c0 = time.perf_counter(), time.process_time()
                table = PrivateTable(frame, pair.schema, ledger.gate, dataset_key=ledger.dataset_key,
                                     random_source=None if s[0] is None else SeededRandomSource(s[0]))
                model = make(config, s[1]).fit(table)
                synthetic = model.sample(config.n_synth, seed=s[2])
                white = None
                if has_marginal_releases(model):
                    white = marginal_lrt(model, pair.schema, pair.out, pair.in_)
                out.append({"world": world, "run": int(run), "score": target_count(synthetic, pair.target),
                            "values": value_count(synthetic, pair.target),
                            "white": white, "epsilon_spent": float(model.epsilon_spent()),
                            "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0})
        finally:
            ledger.gate.close()
    return out


def _chunks(todo: Sequence[tuple[str, int]], jobs: int) -> list[tuple[str, list[int]]]:
    """Chunks of one world's runs: small enough for a live progress bar and a balanced pool,
    large enough that making a ledger per chunk costs little."""
    size = max(1, min(25, math.ceil(len(todo) / max(1, 4 * jobs))))
    out = []
    for world in WORLDS:
        runs = [r for w, r in todo if w == world]
        out += [(world, runs[i:i + size]) for i in range(0, len(runs), size)]
    return out


def run_fits(config: AuditConfig, results: ResultsFile, *, jobs: int = 1,
             factory: Callable[[AuditConfig, int | None], Any] | None = None, progress: bool = True) -> float:
    """Run every (world, run) not yet in `results`; append each chunk as it finishes.
    Returns the wall seconds spent here."""
    todo = [(w, r) for w in WORLDS for r in range(config.runs) if (w, r) not in results.done()]
    t0 = time.perf_counter()
    if not todo:
        return 0.0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * config.runs, initial=2 * config.runs - len(todo), desc=f"audit {config.generator}",
                   unit="fit", file=sys.stderr)
    tasks = _chunks(todo, jobs)
    try:
        if jobs <= 1:
            for world, runs in tasks:
                fits = run_chunk(config, world, runs, factory)
                results.append(fits)
                if bar is not None:
                    bar.update(len(fits))
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                pending = {pool.submit(run_chunk, config, w, r, factory) for w, r in tasks}
                try:
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            fits = f.result()
                            results.append(fits)
                            if bar is not None:
                                bar.update(len(fits))
                except BaseException:
                    for f in pending:  # what finished is kept; what has not started is not run
                        f.cancel()
                    raise
    finally:
        if bar is not None:
            bar.close()
    return time.perf_counter() - t0
