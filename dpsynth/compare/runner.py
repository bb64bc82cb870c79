"""`compare`: several generators × several ε × repeats on one table, every run charged.

The table is split once into train and test (uniformly at random, independent of
the data).  A ledger is created for the comparison — its own keys, a signed
policy whose total ε covers every planned run, a dataset key — and each run is
a normal `fit` on a `PrivateTable` of the train rows through that ledger's
gate, so the comparison's whole spend is on record and verifiable afterwards.
The synthetic rows are evaluated against the train rows (fidelity) and the
test rows (utility, memorisation diagnostics).  All figures are computed on the
private table: the outputs stay with the data holder.
"""

from __future__ import annotations

import math
import os
import secrets
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["ComparisonResult", "compare", "RESULT_COLUMNS", "BASELINE"]

RESULT_COLUMNS = ["generator", "epsilon", "repeat", "metric", "value", "note"]
BASELINE = "real data (train on real)"
# Total budget of the comparison's ledger, as a multiple of the sum of the runs' ε:
# ρ(ε) is superadditive for zCDP runs; the margin covers generators whose cost at the
# filter's order is not a zCDP ρ (DP-SGD).
_BUDGET_MARGIN = 1.25


@dataclass
class ComparisonResult:
    out: Path
    results: pd.DataFrame            # tidy: RESULT_COLUMNS
    csv: Path
    plots: dict[str, Path]
    page: Path
    ledger: Path
    keys: dict[str, Path] = field(default_factory=dict)


def _split(frame: pd.DataFrame, test_fraction: float, rng: np.random.Generator):
    n = len(frame)
    n_test = int(round(test_fraction * n))
    if not (0 < test_fraction < 1) or n_test < 1 or n - n_test < 1:
        raise ValueError(f"test_fraction must leave rows on both sides, got {test_fraction!r}")
    order = rng.permutation(n)
    return (frame.iloc[np.sort(order[n_test:])].reset_index(drop=True),
            frame.iloc[np.sort(order[:n_test])].reset_index(drop=True))


def _comparison_ledger(folder: Path, train: pd.DataFrame, generators: Sequence[str], epsilon_total: float,
                       seeded: bool) -> dict[str, Path]:
    from accountant.fingerprint import fingerprint_table, load_dataset_key, write_dataset_key
    from accountant.gate import init_ledger
    from accountant.keys import load_private_key, write_keypair
    from accountant.policy import render_policy, sign_policy_file

    folder.mkdir(parents=True, exist_ok=True)
    officer_key, officer_pub = write_keypair(folder, "officer", overwrite=True)
    ledger_key, ledger_pub = write_keypair(folder, "ledger", overwrite=True)
    dataset_key = folder / "dataset.key"
    write_dataset_key(dataset_key, overwrite=True)
    max_records = 10 ** max(2, math.ceil(math.log10(len(train) + 1)))
    delta = min(1e-6, 0.1 / max_records)
    policy = folder / "policy.toml"
    policy.write_text(render_policy(
        epsilon=epsilon_total, delta=delta, relation="add_or_remove_one",
        fingerprint=fingerprint_table(train, load_dataset_key(dataset_key)), max_records=max_records,
        generators=list(generators), allow_seeded_noise=seeded, officer="dpsynth compare",
        dataset_name="comparison train split"))
    sign_policy_file(policy, load_private_key(officer_key))
    ledger = folder / "ledger.db"
    if ledger.exists():
        raise FileExistsError(f"{ledger} exists: a comparison needs a fresh output folder")
    init_ledger(ledger, policy, officer_public_key=officer_pub, ledger_key=ledger_key)
    return {"ledger": ledger, "ledger_key": ledger_key, "ledger_pub": ledger_pub, "officer_pub": officer_pub,
            "policy": policy, "dataset_key": dataset_key}


def compare(data: pd.DataFrame, schema: Any, *, generators: Sequence[str] | Mapping[str, Mapping[str, Any]],
            epsilons: Sequence[float], out: str | os.PathLike, repeats: int = 1, test_fraction: float = 0.25,
            target: str | None = None, n_samples: int | None = None,
            utility_models: Sequence[str] = ("logistic_regression", "gradient_boosting"),
            ks: Sequence[int] = (1, 2, 3), seed: int | None = None,
            progress: Callable[[str], None] | None = None) -> ComparisonResult:
    """Run every (generator, ε, repeat), write `results.csv`, the plots and `index.html` in `out`.

    `generators` is a list of names or a mapping name -> constructor parameters.
    `seed` is for tests (seeded noise, recorded as such in the comparison's ledger).
    A failed run is recorded (metric "failed", the error in "note") and the others go on.
    """
    from accountant.gate import Gate
    from dpsynth.generators import GENERATORS
    from dpsynth.jobs.quality import column_spec, evaluate_synthetic, headline, numeric_view
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
    if not params:
        raise ValueError("generators: name at least one")
    eps = [float(e) for e in epsilons]
    if not eps or any(not (math.isfinite(e) and e > 0) for e in eps):
        raise ValueError(f"epsilons must be finite numbers > 0, got {list(epsilons)!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if target is not None and target not in schema.names:
        raise ValueError(f"target: the schema has no column {target!r}")
    for name, p in params.items():  # bad parameters fail here, before anything is charged
        build_generator(GENERATORS[name], eps[0], p, seed=seed, field_prefix=f"generators.{name}")
    frame = schema.validate(data[list(schema.names)])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda _msg: None)

    rng = np.random.default_rng(secrets.randbits(128) if seed is None else seed)
    train, test = _split(frame, test_fraction, rng)
    total = _BUDGET_MARGIN * repeats * len(params) * math.fsum(eps)
    keys = _comparison_ledger(out / "ledger", train, list(params), total, seed is not None)
    gate = Gate.open(keys["ledger"], ledger_key=keys["ledger_key"])
    rows: list[tuple] = []
    spec = column_spec(schema, target)
    try:
        if target is not None:
            from dpsynth.evaluate import utility_scores

            for s in utility_scores(numeric_view(train, schema), numeric_view(test, schema), spec,
                                    models=utility_models, seed=seed or 0):
                rows.append((BASELINE, math.nan, 0, f"tstr_{s.model}_accuracy", s.accuracy, ""))
                rows.append((BASELINE, math.nan, 0, f"tstr_{s.model}_roc_auc", s.roc_auc, ""))
        run = 0
        for name, p in params.items():
            for e in eps:
                for r in range(repeats):
                    run += 1
                    step(f"{name} epsilon={e:g} repeat {r + 1}/{repeats}")
                    run_seed = None if seed is None else seed + run
                    try:
                        source = SeededRandomSource(run_seed) if run_seed is not None else None
                        table = PrivateTable(train, schema, gate, random_source=source, actor="dpsynth-compare")
                        gen = build_generator(GENERATORS[name], e, p, seed=run_seed,
                                              field_prefix=f"generators.{name}")
                        t0 = time.perf_counter()
                        gen.fit(table, gate, actor="dpsynth-compare")
                        t1 = time.perf_counter()
                        synth = gen.sample(n_samples or len(train), seed=run_seed)
                        t2 = time.perf_counter()
                        report = evaluate_synthetic(train, synth, schema, holdout=test, target=target, ks=ks,
                                                    utility_models=utility_models, utility_baseline=False,
                                                    max_rows=1000, seed=seed or 0)
                        figures = headline(report)
                        figures = {k.replace("synthetic_", "tstr_"): v for k, v in figures.items()}
                        figures["fit_seconds"] = t1 - t0
                        figures["sample_seconds"] = t2 - t1
                        figures["epsilon_spent"] = receipts_epsilon(gen.receipts, gate.metadata.delta)
                        rows += [(name, e, r, k, float(v), "") for k, v in figures.items()]
                    except Exception as exc:  # noqa: BLE001 - a failed run is a result too
                        note = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
                        rows.append((name, e, r, "failed", math.nan, note))
                        if os.environ.get("DPSYNTH_DEBUG"):
                            traceback.print_exc()
    finally:
        gate.close()
    results = pd.DataFrame.from_records(rows, columns=RESULT_COLUMNS)
    csv = out / "results.csv"
    results.to_csv(csv, index=False)
    plots = write_plots(results, out)
    page = write_page(results, plots, out, keys["ledger"])
    return ComparisonResult(out=out, results=results, csv=csv, plots=plots, page=page, ledger=keys["ledger"],
                            keys=keys)
