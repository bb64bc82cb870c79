"""Evaluate a synthetic table against the real one, using the public schema for types and ranges.

A thin adapter from a `dpsynth.schema.Schema` to `dpsynth.evaluate`: the schema
gives the coded domain (for the k-way marginal TVDs) and the column kinds and
public bounds (for the per-column distances and correlations), so no range is
read off the private table.  Every figure is computed on private rows: the
result stays with the data holder (see `dpsynth.evaluate.DESCRIPTIVE_LABEL`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["column_spec", "evaluate_synthetic", "numeric_view"]


def column_spec(schema: Any, target: str | None = None):
    """A `ColumnSpec`: discrete kinds categorical, binned kinds numeric with the schema's bounds."""
    from dpsynth.evaluate import ColumnSpec

    categorical, numeric, bounds = [], [], {}
    for col in schema.columns:
        if col.is_discrete or col.name == target:
            categorical.append(col.name)
        else:
            numeric.append(col.name)
            edges = col.edges
            bounds[col.name] = (edges[0], edges[-1])
    if target is not None and target not in schema.names:
        raise ValueError(f"evaluate.target: the schema has no column {target!r}")
    return ColumnSpec(categorical=tuple(categorical), numeric=tuple(numeric), target=target, bounds=bounds)


def numeric_view(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    """The table with datetime columns as seconds since the epoch (the schema's numeric axis)."""
    out = frame.copy()
    for col in schema.columns:
        if col.kind == "datetime":
            ts = pd.to_datetime(out[col.name], errors="coerce")
            seconds = (ts - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)
            out[col.name] = seconds.astype(np.float64)
        elif col.kind in ("numeric", "integer"):
            out[col.name] = pd.to_numeric(out[col.name], errors="coerce").astype(np.float64)
    return out


def _coded(frame: pd.DataFrame, schema: Any) -> pd.DataFrame:
    return pd.DataFrame(schema.encode(frame[list(schema.names)]), columns=list(schema.names))


def evaluate_synthetic(real: pd.DataFrame, synth: pd.DataFrame, schema: Any, *,
                       holdout: pd.DataFrame | None = None, target: str | None = None,
                       ks: Sequence[int] = (1, 2, 3), utility_models: Sequence[str] | None = None,
                       privacy: bool = True, utility_baseline: bool = True, max_rows: int = 2000, seed: int = 0,
                       metadata: Mapping[str, Any] | None = None):
    """An `EvaluationReport` of `synth` against `real` (the rows the generator was fitted on).

    Fidelity (mean k-way marginal TVD on the schema's domain, per-column distances,
    association differences) always; with a `holdout` (real rows the generator never
    saw) also utility (train on synthetic / on real, test on the holdout; needs
    `target`; `utility_baseline` adds train-on-real) and the descriptive memorisation
    diagnostics (`privacy`).
    """
    from dpsynth.evaluate import (MODELS, EvaluationReport, column_distances, correlation_difference, mean_tvds,
                                  privacy_diagnostics, utility_scores)

    domain = schema.domain()
    ks = tuple(k for k in ks if 1 <= k <= len(domain))
    tvd = mean_tvds(_coded(real, schema), _coded(synth, schema), domain, ks) if ks else {}
    spec = column_spec(schema, target)
    real_v, synth_v = numeric_view(real, schema), numeric_view(synth, schema)
    report: dict[str, Any] = dict(mean_tvd=tvd, metadata=dict(metadata or {}))
    report["column_distances"] = column_distances(real_v, synth_v, spec)
    report["correlation"] = correlation_difference(real_v, synth_v, spec)
    if holdout is not None and len(holdout) > 0:
        hold_v = numeric_view(holdout, schema)
        if target is not None:
            from threadpoolctl import threadpool_limits

            models = tuple(utility_models) if utility_models is not None else MODELS
            # One thread: on these small tables OpenMP's thread start-up and, on a busy
            # machine, oversubscription cost 10-30x the work (gradient boosting).
            with threadpool_limits(1):
                    report["utility"] = utility_scores(synth_v, hold_v, spec,
                                                   real_train=real_v if utility_baseline else None,
                                                   models=models, seed=seed)
        if privacy:
            report["privacy"] = privacy_diagnostics(real_v, synth_v, hold_v, spec, max_rows=max_rows, seed=seed)
    return EvaluationReport(**report)


def headline(report: Any) -> dict[str, float]:
    """The few numbers a summary line or a comparison row needs (NaN when not computed)."""
    out = {f"tvd_{k}way": float(v) for k, v in sorted(report.mean_tvd.items())}
    out["association_diff"] = (math.nan if report.correlation is None
                               else float(report.correlation.mean_abs_difference))
    for s in report.utility:
        out[f"{s.trained_on}_{s.model}_accuracy"] = float(s.accuracy)
        out[f"{s.trained_on}_{s.model}_roc_auc"] = float(s.roc_auc)
    if report.privacy is not None:
        out["mia_auc"] = float(report.privacy.membership_inference.auc)
    return out
