"""`compare`: several generators × several ε × repeats on one table, every run charged.

A comparison measures the governed table, so it spends the governed budget: it
runs on the gate of the officer's ledger (a job file names it), with the
dataset key binding the table to the policy, and refuses up front a comparison
whose planned runs do not all fit what the ledger still admits.  The table is
split once into train and test (uniformly at random, independent of the data,
`PrivateTable.split`); each run is a normal `fit` on the train part through
that gate, so the whole spend is on the officer's record.  The synthetic rows
are evaluated against the train rows (fidelity) and the test rows (utility,
memorisation diagnostics).  Those figures are computed on the private table:
they stay with the data holder.

`demo_comparison` is the one exception: on the built-in demo table (made-up
data) it makes a demo setting — its own officer, policy and ledger — as
`dpsynth demo` does.
"""

from __future__ import annotations

import math
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

__all__ = ["ComparisonResult", "compare", "demo_comparison", "RESULT_COLUMNS", "BASELINE"]

RESULT_COLUMNS = ["generator", "epsilon", "repeat", "metric", "value", "note"]
BASELINE = "real data (train on real)"
# The demo comparison's total budget, as a multiple of the sum of the runs' ε: ρ(ε) is
# superadditive for zCDP runs; the margin covers generators whose cost at the filter's
# order is not a zCDP ρ (DP-SGD).
BUDGET_MARGIN = 1.25


@dataclass
class ComparisonResult:
    out: Path
    results: pd.DataFrame            # tidy: RESULT_COLUMNS
    csv: Path
    plots: dict[str, Path]
    page: Path
    ledger: Path


def _whole_minutes(seconds: float) -> float:
    """A duration rounded to whole minutes, in seconds (0, 60, 120, ...)."""
    return 60.0 * round(seconds / 60.0)


def _planned_cost(gate: Any, generator: Any, table: Any) -> float:
    """A run's cost at the ledger's filter order, from its public plan (charges nothing)."""
    plan = generator.preflight(table)
    if isinstance(plan, dict):  # marginal generators: their run's zCDP ρ
        return float(plan["rho"]) * gate.filter.order
    return float(plan.cost(gate.filter.order))


def demo_comparison(out: str | os.PathLike, *, n_rows: int = 5000, epsilon_total: float, seeded: bool = False
                    ) -> dict[str, Any]:
    """The demo setting for a comparison on made-up data: (gate, dataset key, frame, schema, paths)."""
    from accountant.fingerprint import load_dataset_key
    from accountant.gate import Gate
    from dpsynth.demo.workspace import setup_workspace
    from dpsynth.schema import Schema

    folder = Path(out) / "ledger"
    if (folder / "ledger.db").exists():
        raise FileExistsError(f"{folder / 'ledger.db'} exists: a demo comparison needs a fresh output folder")
    paths = setup_workspace(folder, n_rows=n_rows, epsilon_total=epsilon_total, allow_seeded_noise=seeded,
                            generators=("*",))
    gate = Gate.open(paths["ledger"], ledger_key=folder / "keys" / "ledger.key")
    return {"gate": gate, "dataset_key": load_dataset_key(folder / "keys" / "dataset.key"),
            "frame": pd.read_csv(paths["data"]), "schema": Schema.load(paths["schema"]), "paths": paths}


def compare(data: pd.DataFrame, schema: Any, *, gate: Any, dataset_key: bytes | None,
            generators: Sequence[str] | Mapping[str, Mapping[str, Any]], epsilons: Sequence[float],
            out: str | os.PathLike, repeats: int = 1, test_fraction: float = 0.25, target: str | None = None,
            n_samples: int | None = None, utility_models: Sequence[str] = ("logistic_regression", "gradient_boosting"),
            ks: Sequence[int] = (1, 2, 3), seed: int | None = None, actor: str | None = None,
            progress: Callable[[str], None] | None = None, sensitive: Sequence[str] = ()) -> ComparisonResult:
    """Run every (generator, ε, repeat) on `gate`, write `results.csv`, the plots and `index.html`.

    `gate` is the officer's ledger for `data` (bound by `dataset_key`).  `generators` is a
    list of names or a mapping name -> constructor parameters.  `seed` is for tests (seeded
    noise, recorded as such; the policy must allow it).  Every run's plan is checked first:
    if all of them together do not fit what the ledger still admits, nothing is charged.
    A run that fails after its charges is recorded (metric "failed") and the others go on.
    `sensitive` columns (with a `target`) add each run's demographic-parity and equalized-odds
    differences per column (`tstr_dp_difference_<column>`, `tstr_eo_difference_<column>`),
    beside the train-on-real baseline's.
    """
    from accountant.gate import BudgetExceeded
    from dpsynth.generators import GENERATORS
    from dpsynth.jobs.quality import column_spec, evaluate_synthetic, headline, headline_notes, numeric_view
    from dpsynth.jobs.run import build_generator, receipts_epsilon
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    from .page import write_page
    from .plots import write_plots

    params = {g: {} for g in generators} if not isinstance(generators, Mapping) else {
        g: dict(p or {}) for g, p in generators.items()}
    for name in params:
        if name not in GENERATORS:
            raise ValueError(f"generators: unknown generator {name!r}; choose from {', '.join(sorted(GENERATORS))}")
        if not gate.policy.allows_generator(name):
            raise ValueError(f"generators: the policy does not allow {name!r}")
    if not params:
        raise ValueError("generators: name at least one")
    eps = [float(e) for e in epsilons]
    if not eps or any(not (math.isfinite(e) and e > 0) for e in eps):
        raise ValueError(f"epsilons must be finite numbers > 0, got {list(epsilons)!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if target is not None and target not in schema.names:
        raise ValueError(f"target: the schema has no column {target!r}")
    sensitive = list(sensitive)
    for col in sensitive:
        if target is None:
            raise ValueError("sensitive: the fairness figures need a target")
        if col not in schema.names or not schema.column(col).is_discrete or col == target:
            raise ValueError(f"sensitive: column {col!r} must be a categorical column of the schema, not the target")
    if not (0 < test_fraction < 1):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    out = Path(out)
    step = progress or (lambda _msg: None)
    source = SeededRandomSource(seed) if seed is not None else None
    table, train, test = PrivateTable.split(data[list(schema.names)], schema, gate, holdout=test_fraction,
                                            dataset_key=dataset_key, seed=seed, random_source=source, actor=actor)
    # Every run's plan, before anything is charged: bad parameters and an overspending
    # comparison fail here.
    planned = 0.0
    for name, p in params.items():
        for e in eps:
            gen = build_generator(GENERATORS[name], e, p, seed=seed, field_prefix=f"generators.{name}")
            planned += repeats * _planned_cost(gate, gen, table)
    costs = gate.spent_costs()
    if not gate.filter.admits(costs, planned):
        f = gate.filter
        raise BudgetExceeded(
            f"the comparison's runs need RDP {planned:.6g} at order {f.order:.4g} together, but the ledger admits "
            f"only {f.remaining(costs):.6g} more; nothing was charged", requested=planned,
            remaining=f.remaining(costs), budget=f.budget, order=f.order, epsilon_spent=f.epsilon_spent(costs),
            epsilon_budget=f.epsilon, delta=f.delta)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple] = []
    schema = table.schema  # the file's, with how the table writes its values filled in
    spec = column_spec(schema, target)
    if target is not None:
        from dpsynth.evaluate import utility_scores

        for s in utility_scores(numeric_view(train, schema), numeric_view(test, schema), spec,
                                models=utility_models, seed=seed or 0):
            rows.append((BASELINE, math.nan, 0, f"tstr_{s.model}_accuracy", s.accuracy, ""))
            rows.append((BASELINE, math.nan, 0, f"tstr_{s.model}_roc_auc", s.roc_auc, ""))
        if sensitive:
            from dpsynth.evaluate.fairness import fairness_scores

            fair = fairness_scores(numeric_view(train, schema), numeric_view(test, schema), spec, sensitive,
                                   model=list(utility_models)[-1] if utility_models else "gradient_boosting",
                                   seed=seed or 0)
            for d in fair.disparities:
                rows.append((BASELINE, math.nan, 0, f"tstr_dp_difference_{d.column}",
                             d.demographic_parity_difference, ""))
                rows.append((BASELINE, math.nan, 0, f"tstr_eo_difference_{d.column}", d.equalized_odds_difference, ""))
    run = 0
    for name, p in params.items():
        for e in eps:
            for r in range(repeats):
                run += 1
                step(f"{name} epsilon={e:g} repeat {r + 1}/{repeats}")
                run_seed = None if seed is None else seed + run
                try:
                    gen = build_generator(GENERATORS[name], e, p, seed=run_seed, field_prefix=f"generators.{name}")
                    t0 = time.perf_counter()
                    gen.fit(table, actor=actor)
                    t1 = time.perf_counter()
                    synth = gen.sample(n_samples or len(train), seed=run_seed)
                    t2 = time.perf_counter()
                    report = evaluate_synthetic(train, synth, schema, holdout=test, target=target, ks=ks,
                                                utility_models=utility_models, utility_baseline=False,
                                                max_rows=1000, seed=seed or 0, sensitive=sensitive)
                    figures = headline(report)
                    figures = {k.replace("synthetic_", "tstr_"): v for k, v in figures.items()}
                    # A figure that cannot be computed properly is NaN with the reason, never a number.
                    notes = {k.replace("synthetic_", "tstr_"): v for k, v in headline_notes(report).items()}
                    # Whole minutes only (as seconds): results.csv and the page are shared, and
                    # a sub-minute timing of a private computation is a side channel
                    # (proofs/filter.md, "Coarse time"; proofs/threat_model.md (g)).
                    figures["fit_seconds"] = _whole_minutes(t1 - t0)
                    figures["sample_seconds"] = _whole_minutes(t2 - t1)
                    figures["epsilon_spent"] = receipts_epsilon(gen.receipts, gate.metadata.delta)
                    rows += [(name, e, r, k, float(v), notes.get(k, "")) for k, v in figures.items()]
                except BudgetExceeded:
                    raise
                except Exception as exc:  # noqa: BLE001 - a failed run is a result too
                    note = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
                    rows.append((name, e, r, "failed", math.nan, note))
                    if os.environ.get("DPSYNTH_DEBUG"):
                        traceback.print_exc()
    results = pd.DataFrame.from_records(rows, columns=RESULT_COLUMNS)
    csv = out / "results.csv"
    results.to_csv(csv, index=False)
    plots = write_plots(results, out)
    ledger_path = Path(getattr(getattr(gate, "_store", None), "path", "ledger"))
    page = write_page(results, plots, out, ledger_path)
    return ComparisonResult(out=out, results=results, csv=csv, plots=plots, page=page, ledger=ledger_path)
