"""Fairness of a synthetic table, measured per group of declared sensitive columns.

For each sensitive column and each of its groups (docs/fairness.md says what each means):

- **group sizes**: the group's share of the real (training) rows and of the synthetic rows;
- **per-group marginal error**: mean k-way marginal TVD of the other columns, real rows of
  the group against synthetic rows of the group (coded tables, `group_marginal_errors`);
- **per-group TSTR**: accuracy, ROC-AUC and recall of the positive class, on the real test
  rows of the group, of a classifier trained on the synthetic table, beside the same
  classifier trained on the real table (TRTR);
- **disparities of the classifier** on the real test table: demographic-parity difference
  (largest gap in positive-prediction rate between groups) and equalized-odds difference
  (largest gap in true- or false-positive rate), computed by fairlearn, TSTR beside TRTR.

Post-processing of tables the data holder already has: nothing here is charged, and every
figure is computed from private rows, so it stays with the data holder unless released.
"""

from __future__ import annotations

import html
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .columns import ColumnSpec, category_labels
from .fidelity import mean_tvds

__all__ = ["FairnessReport", "GroupScore", "Disparity", "fairness_scores", "group_marginal_errors"]


@dataclass(frozen=True)
class GroupScore:
    """One group of one sensitive column.  NaN where a figure is undefined (a group with no
    test row, or a single class among its test rows for ROC-AUC, or no positive for recall)."""

    column: str
    group: str
    share_real: float
    share_synthetic: float
    n_test: int
    marginal_error: Mapping[int, float]  # {k: mean k-way TVD within the group}; empty when not computed
    tstr: Mapping[str, float]            # accuracy, roc_auc, recall
    trtr: Mapping[str, float]            # the same, trained on real (empty without real_train)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["marginal_error"] = {str(k): v for k, v in self.marginal_error.items()}
        return d


@dataclass(frozen=True)
class Disparity:
    """Demographic-parity and equalized-odds differences of one classifier over one column's groups."""

    column: str
    trained_on: str  # "synthetic" or "real"
    demographic_parity_difference: float
    equalized_odds_difference: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FairnessReport:
    target: str
    positive: str
    model: str
    groups: Sequence[GroupScore] = ()
    disparities: Sequence[Disparity] = ()
    notes: Sequence[str] = field(default_factory=list)
    # {"synthetic" / "real": accuracy, roc_auc, recall on the whole real test table}
    overall: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def disparity(self, column: str, trained_on: str = "synthetic") -> Disparity:
        for d in self.disparities:
            if d.column == column and d.trained_on == trained_on:
                return d
        raise KeyError(f"no disparity for column {column!r} trained on {trained_on!r}")

    def group(self, column: str, group: str) -> GroupScore:
        for g in self.groups:
            if g.column == column and g.group == str(group):
                return g
        raise KeyError(f"no group {group!r} of column {column!r}")

    def to_dict(self) -> dict:
        return {"target": self.target, "positive": self.positive, "model": self.model,
                "groups": [g.to_dict() for g in self.groups], "disparities": [d.to_dict() for d in self.disparities],
                "overall": {k: dict(v) for k, v in self.overall.items()}, "notes": list(self.notes)}

    def to_html(self) -> str:
        esc = html.escape
        f = lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"  # noqa: E731
        parts = [f"<h3>Fairness (target {esc(self.target)!s}, positive class {esc(self.positive)}, "
                 f"{esc(self.model)})</h3>"]
        rows = "".join(f"<tr><td>{esc(d.column)}</td><td>{esc(d.trained_on)}</td>"
                       f"<td>{f(d.demographic_parity_difference)}</td><td>{f(d.equalized_odds_difference)}</td></tr>"
                       for d in self.disparities)
        parts.append("<table><thead><tr><th>sensitive column</th><th>trained on</th><th>demographic-parity "
                     "difference</th><th>equalized-odds difference</th></tr></thead><tbody>" + rows + "</tbody></table>")
        ks = sorted({k for g in self.groups for k in g.marginal_error})
        head = ("<tr><th>column</th><th>group</th><th>share real</th><th>share synthetic</th><th>test rows</th>"
                + "".join(f"<th>{k}-way TVD in group</th>" for k in ks)
                + "<th>TSTR accuracy</th><th>TSTR ROC-AUC</th><th>TSTR recall</th>"
                + "<th>TRTR accuracy</th><th>TRTR ROC-AUC</th><th>TRTR recall</th></tr>")
        body = "".join(
            f"<tr><td>{esc(g.column)}</td><td>{esc(g.group)}</td><td>{f(g.share_real)}</td>"
            f"<td>{f(g.share_synthetic)}</td><td>{g.n_test}</td>"
            + "".join(f"<td>{f(g.marginal_error.get(k))}</td>" for k in ks)
            + "".join(f"<td>{f(s.get(m))}</td>" for s in (g.tstr, g.trtr) for m in ("accuracy", "roc_auc", "recall"))
            + "</tr>" for g in self.groups)
        parts.append(f"<table><thead>{head}</thead><tbody>{body}</tbody></table>")
        for note in self.notes:
            parts.append(f"<p>{esc(note)}</p>")
        return "".join(parts)


def group_marginal_errors(real_codes: pd.DataFrame, synth_codes: pd.DataFrame, domain: Mapping[str, int],
                          column: str, ks: Sequence[int] = (1, 2)) -> dict[int, dict[int, float]]:
    """{group code: {k: mean k-way TVD of the other columns within the group}} on coded tables.

    A group with no real row or no synthetic row gets NaN (a TVD of rows that do not exist
    would be a number about nothing)."""
    if column not in domain:
        raise KeyError(f"sensitive column {column!r} is not in the domain")
    others = {c: n for c, n in domain.items() if c != column}
    ks = tuple(k for k in ks if 1 <= k <= len(others))
    out: dict[int, dict[int, float]] = {}
    for g in range(int(domain[column])):
        r = real_codes[real_codes[column] == g][list(others)]
        s = synth_codes[synth_codes[column] == g][list(others)]
        if not ks:
            out[g] = {}
        elif len(r) == 0 or len(s) == 0:
            out[g] = {k: math.nan for k in ks}
        else:
            out[g] = mean_tvds(r.reset_index(drop=True), s.reset_index(drop=True), others, ks)
    return out


def _fit_scores(train: pd.DataFrame, test: pd.DataFrame, spec: ColumnSpec, model: str, positive: str,
                seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(predicted is positive, score of the positive class) on the test rows; None when the
    training table holds a single class (no classifier can be fitted)."""
    from .utility import _features, _labels, _pipeline

    y = _labels(train[spec.target])
    if len(np.unique(y)) < 2:
        only = np.unique(y)
        flag = np.full(len(test), bool(len(only) and only[0] == positive))
        return flag, flag.astype(np.float64)
    pipeline = _pipeline(spec, model, seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found unknown categories")
        pipeline.fit(_features(train, spec), y)
        proba = pipeline.predict_proba(_features(test, spec))
    classes = list(pipeline.classes_)
    predicted = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    score = proba[:, classes.index(positive)] if positive in classes else np.zeros(len(test))
    return predicted == positive, score


def _group_metrics(truth: np.ndarray, predicted: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    if len(truth) == 0:
        return {"accuracy": math.nan, "roc_auc": math.nan, "recall": math.nan}
    accuracy = float(np.mean(truth == predicted))
    auc = float(roc_auc_score(truth, score)) if 0 < truth.sum() < len(truth) else math.nan
    recall = float(predicted[truth].mean()) if truth.any() else math.nan
    return {"accuracy": accuracy, "roc_auc": auc, "recall": recall}


def fairness_scores(synth: pd.DataFrame, real_test: pd.DataFrame, spec: ColumnSpec, sensitive: Sequence[str], *,
                    real_train: pd.DataFrame | None = None, positive: Any = None,
                    model: str = "gradient_boosting", seed: int = 0,
                    group_errors: Mapping[str, Mapping[str, Mapping[int, float]]] | None = None) -> FairnessReport:
    """Per-group sizes, TSTR (and TRTR with `real_train`) and the classifier's disparities.

    `spec.target` must be binary in the real test table; `positive` names its positive class
    (default: the last of the two labels in sorted order, e.g. ">50K" of "<=50K"/">50K").
    `group_errors`: {column: {group label: {k: TVD}}} from `group_marginal_errors`, shown beside.
    The real-table shares are of `real_train` when given, else of `real_test`."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    from .utility import MODELS, _labels

    if spec.target is None:
        raise ValueError("fairness needs a target column (evaluate.target)")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    if isinstance(sensitive, str) or not sensitive:
        raise ValueError("sensitive must be a non-empty list of column names")
    for col in sensitive:
        if col not in spec.categorical or col == spec.target:
            raise ValueError(f"sensitive column {col!r} must be a categorical column other than the target")
    for role, t in (("synthetic", synth), ("real test", real_test)) + ((("real training", real_train),)
                                                                       if real_train is not None else ()):
        spec.check_table(t, role)
    y_test = _labels(real_test[spec.target])
    labels = sorted(set(y_test.tolist()) | set(_labels(synth[spec.target]).tolist()))
    if positive is None:
        if len(set(y_test.tolist())) != 2:
            raise ValueError(f"fairness needs a binary target: {spec.target!r} has {len(set(y_test.tolist()))} "
                             "classes in the real test table")
        positive = labels[-1] if len(labels) == 2 else sorted(set(y_test.tolist()))[-1]
    positive = str(positive)
    truth = y_test == positive
    if not truth.any() or truth.all():
        raise ValueError(f"the real test table must hold both {positive!r} and another class of {spec.target!r}")
    fits = {"synthetic": _fit_scores(synth, real_test, spec, model, positive, seed)}
    if real_train is not None:
        fits["real"] = _fit_scores(real_train, real_test, spec, model, positive, seed)
    reference = real_train if real_train is not None else real_test
    groups, disparities = [], []
    for col in sensitive:
        test_groups = category_labels(real_test[col]).to_numpy(dtype=object)
        real_groups = category_labels(reference[col])
        synth_groups = category_labels(synth[col])
        names = sorted(set(real_groups.dropna()) | set(synth_groups.dropna()) | {g for g in test_groups if g is not None})
        real_share = real_groups.value_counts(normalize=True)
        synth_share = synth_groups.value_counts(normalize=True)
        errors = (group_errors or {}).get(col, {})
        for g in names:
            mask = test_groups == g
            scores = {who: _group_metrics(truth[mask], fit[0][mask], fit[1][mask]) for who, fit in fits.items()}
            groups.append(GroupScore(column=col, group=str(g), share_real=float(real_share.get(g, 0.0)),
                                     share_synthetic=float(synth_share.get(g, 0.0)), n_test=int(mask.sum()),
                                     marginal_error=dict(errors.get(str(g), {})), tstr=scores["synthetic"],
                                     trtr=scores.get("real", {})))
        for who, (predicted, _) in fits.items():
            sf = pd.Series(test_groups, dtype=object).fillna("(missing)")
            disparities.append(Disparity(
                column=col, trained_on=who,
                demographic_parity_difference=float(demographic_parity_difference(truth, predicted,
                                                                                  sensitive_features=sf)),
                equalized_odds_difference=float(equalized_odds_difference(truth, predicted, sensitive_features=sf))))
    notes = []
    if len(set(_labels(synth[spec.target]).tolist())) < 2:
        notes.append(f"the synthetic table holds a single class of {spec.target!r}: every test row gets that class")
    overall = {who: _group_metrics(truth, fit[0], fit[1]) for who, fit in fits.items()}
    return FairnessReport(target=spec.target, positive=positive, model=model, groups=groups,
                          disparities=disparities, notes=notes, overall=overall)
