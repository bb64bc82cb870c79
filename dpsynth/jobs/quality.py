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

__all__ = ["canonical_view", "column_spec", "evaluate_synthetic", "headline", "headline_notes", "numeric_view"]


def column_spec(schema: Any, target: str | None = None):
    """A `ColumnSpec`: discrete kinds categorical, binned kinds numeric with the schema's bounds."""
    from dpsynth.evaluate import ColumnSpec

    categorical, numeric, bounds = [], [], {}
    for col in schema.columns:
        if col.is_discrete or col.name == target:
            categorical.append(col.name)
        else:
            numeric.append(col.name)
            bounds[col.name] = col.bounds
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


def canonical_view(frame: pd.DataFrame, schema: Any, flags: dict[str, str] | None = None,
                   role: str = "synthetic") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table's codes on the schema's domain, its values read through the schema).

    Both tables of a comparison go through here, so they are compared like with like
    whatever way each writes its values (``1`` and ``True`` in a boolean column are one
    value, ``1`` and ``1.0`` one category): a discrete column becomes its category's label,
    a binned column its value on the schema's numeric axis (seconds for datetimes).  A
    column whose values do not fit the schema is recorded in `flags` (figure -> why) and
    left missing, so that no figure is computed from it as if it were comparable."""
    from dpsynth.schema import EncodingError, SchemaError
    from dpsynth.schema.decode import OTHER
    from dpsynth.schema.encode import encode_column

    codes, values = {}, {}
    view = numeric_view(frame, schema)
    for col in schema.columns:
        if col.kind == "boolean" and col.values is not None and all(
                isinstance(v, (bool, int, float)) for v in col.values) and set(col.values) == {0, 1}:
            col = col.replace(values=None)  # 0/1 or false/true: one meaning, read either way
        try:
            c = encode_column(col, frame[col.name].reset_index(drop=True))
        except (EncodingError, SchemaError, ValueError, TypeError):
            if flags is not None:
                flags[f"column {col.name}"] = (f"the {role} table's values of {col.name!r} do not fit the schema: "
                                               "not compared")
            codes[col.name] = np.full(len(frame), -1, dtype=np.int64)
            values[col.name] = pd.Series([None] * len(frame), dtype=object) if col.is_discrete else \
                pd.Series(np.full(len(frame), np.nan))
            continue
        codes[col.name] = c
        if col.is_discrete:
            labels = np.array([str(v) for v in col.categories] + ([OTHER] if col.other_code is not None else [])
                              + ([None] if col.nullable else []), dtype=object)
            values[col.name] = pd.Series(labels[c], dtype=object)
        else:
            values[col.name] = view[col.name].reset_index(drop=True)
    return pd.DataFrame(codes), pd.DataFrame(values)


def evaluate_synthetic(real: pd.DataFrame, synth: pd.DataFrame, schema: Any, *,
                       holdout: pd.DataFrame | None = None, target: str | None = None,
                       ks: Sequence[int] = (1, 2, 3), utility_models: Sequence[str] | None = None,
                       privacy: bool = True, utility_baseline: bool = True, max_rows: int = 2000, seed: int = 0,
                       metadata: Mapping[str, Any] | None = None, sensitive: Sequence[str] = (),
                       positive: Any = None):
    """An `EvaluationReport` of `synth` against `real` (the rows the generator was fitted on).

    Fidelity (mean k-way marginal TVD on the schema's domain, per-column distances,
    association differences) always; with a `holdout` (real rows the generator never
    saw) also utility (train on synthetic / on real, test on the holdout; needs
    `target`; `utility_baseline` adds train-on-real) and the descriptive memorisation
    diagnostics (`privacy`).  With `sensitive` columns (and a holdout and `target`), the
    fairness figures per group (`dpsynth.evaluate.fairness`; `positive` names the target's
    positive class).
    """
    from dpsynth.evaluate import (MODELS, EvaluationReport, column_distances, correlation_difference, mean_tvds,
                                  privacy_diagnostics, utility_scores)

    domain = schema.domain()
    ks = tuple(k for k in ks if 1 <= k <= len(domain))
    flags: dict[str, str] = {}
    real_c, real_v = canonical_view(real, schema, flags, "real")
    synth_c, synth_v = canonical_view(synth, schema, flags, "synthetic")
    broken = [n for n in schema.names if (real_c[n] < 0).any() or (synth_c[n] < 0).any()]
    ok = [n for n in schema.names if n not in broken]
    tvd = {}
    if ks and ok:
        sub = {n: domain[n] for n in ok}
        tvd = mean_tvds(real_c[ok], synth_c[ok], sub, tuple(k for k in ks if k <= len(ok)))
        if broken:
            for k in tvd:
                flags[f"mean {k}-way TVD"] = f"computed without {broken} (their values could not be compared)"
    spec = column_spec(schema, target)
    report: dict[str, Any] = dict(mean_tvd=tvd, metadata=dict(metadata or {}))
    distances = column_distances(real_v, synth_v, spec)
    for name in spec.categorical:
        if name in broken:
            continue
        r, s_ = set(real_v[name].dropna()), set(synth_v[name].dropna())
        if r and s_ and not r & s_:
            flags[f"column {name}"] = (f"the real and synthetic values of {name!r} have nothing in common: the TVD "
                                       "of 1 says the tables write the column differently, not how far apart "
                                       "they are")
    for name in broken:
        distances.loc[name, ["tvd", "wasserstein", "ks", "missing_rate_diff"]] = np.nan
    report["column_distances"] = distances
    report["correlation"] = correlation_difference(real_v, synth_v, spec)
    if holdout is not None and len(holdout) > 0:
        _, hold_v = canonical_view(holdout, schema, flags, "holdout")
        if target is not None:
            from threadpoolctl import threadpool_limits

            models = tuple(utility_models) if utility_models is not None else MODELS
            # One thread: on these small tables OpenMP's thread start-up and, on a busy
            # machine, oversubscription cost 10-30x the work (gradient boosting).
            with threadpool_limits(1):
                report["utility"] = utility_scores(synth_v, hold_v, spec,
                                                   real_train=real_v if utility_baseline else None,
                                                   models=models, seed=seed)
            for u in report["utility"]:
                if not u.auc_defined or not math.isfinite(u.accuracy):
                    flags[f"utility {u.model}/{u.trained_on}"] = u.note or "not computable"
            if sensitive:
                try:
                    report["fairness"] = _fairness(real_c, synth_c, real_v, synth_v, hold_v, schema, spec,
                                                   sensitive, positive, models[-1] if models else
                                                   "gradient_boosting", seed, utility_baseline, broken)
                except ValueError as exc:  # e.g. a test split holding one class: said, not raised
                    flags["fairness"] = str(exc)
        if privacy:
            report["privacy"] = privacy_diagnostics(real_v, synth_v, hold_v, spec, max_rows=max_rows, seed=seed)
    report["flags"] = flags
    from dpsynth.evaluate.pictures import column_distributions

    report["distributions"] = column_distributions(real_c, synth_c, schema, skip=broken)
    return EvaluationReport(**report)


def _fairness(real_c, synth_c, real_v, synth_v, hold_v, schema, spec, sensitive, positive, model, seed,
              baseline, broken):
    """The fairness section: per-group marginal errors on the coded tables, then the rest."""
    from threadpoolctl import threadpool_limits

    from dpsynth.evaluate.fairness import fairness_scores, group_marginal_errors

    domain = schema.domain()
    ok = {n: domain[n] for n in schema.names if n not in broken}
    errors = {}
    for col in sensitive:
        if col not in ok:
            continue
        column = schema.column(col)
        labels = [str(v) for v in column.categories]
        by_code = group_marginal_errors(real_c[list(ok)], synth_c[list(ok)], ok, col, ks=(1, 2))
        errors[col] = {labels[g]: e for g, e in by_code.items() if g < len(labels)}
    with threadpool_limits(1):
        return fairness_scores(synth_v, hold_v, spec, list(sensitive), real_train=real_v if baseline else None,
                               positive=positive, model=model, seed=seed, group_errors=errors)


def headline(report: Any) -> dict[str, float]:
    """The few numbers a summary line or a comparison row needs (NaN when not computed,
    or when the report flags the figure as not computable properly: see `headline_notes`)."""
    flags = getattr(report, "flags", {}) or {}
    out = {f"tvd_{k}way": math.nan if f"mean {k}-way TVD" in flags else float(v)
           for k, v in sorted(report.mean_tvd.items())}
    out["association_diff"] = (math.nan if report.correlation is None
                               else float(report.correlation.mean_abs_difference))
    for s in report.utility:
        bad = f"utility {s.model}/{s.trained_on}" in flags
        out[f"{s.trained_on}_{s.model}_accuracy"] = math.nan if bad else float(s.accuracy)
        out[f"{s.trained_on}_{s.model}_roc_auc"] = math.nan if bad else float(s.roc_auc)
    if report.privacy is not None:
        out["mia_auc"] = float(report.privacy.membership_inference.auc)
    fairness = getattr(report, "fairness", None)
    if fairness is not None:
        for d in fairness.disparities:
            out[f"{d.trained_on}_dp_difference_{d.column}"] = d.demographic_parity_difference
            out[f"{d.trained_on}_eo_difference_{d.column}"] = d.equalized_odds_difference
    return out


def headline_notes(report: Any) -> dict[str, str]:
    """{headline figure: why it is not given} for the figures `headline` leaves out."""
    flags = getattr(report, "flags", {}) or {}
    notes = {}
    for k in report.mean_tvd:
        if f"mean {k}-way TVD" in flags:
            notes[f"tvd_{k}way"] = flags[f"mean {k}-way TVD"]
    for s in report.utility:
        why = flags.get(f"utility {s.model}/{s.trained_on}")
        if why:
            notes[f"{s.trained_on}_{s.model}_accuracy"] = notes[f"{s.trained_on}_{s.model}_roc_auc"] = why
    return notes
