"""One object that collects the evaluation of a synthetic table, for the run report and ``dpsynth compare``.

Every section is optional: fill what was computed.  ``to_dict()`` is JSON-ready,
``to_frame()`` is a tidy long table (one number per row), ``to_html()`` is a
self-contained HTML snippet (inline style, no scripts, no external assets) to embed
in a larger page.  The descriptive privacy section keeps its label in every form.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

from .correlations import CorrelationDifference
from .fairness import FairnessReport
from .privacy_descriptive import DESCRIPTIVE_LABEL, PrivacyDiagnostics
from .utility import UtilityScore

__all__ = ["EvaluationReport"]

_STYLE = (
    "<style>.dpsynth-eval{font-family:sans-serif;font-size:14px}"
    ".dpsynth-eval table{border-collapse:collapse;margin:4px 0 12px}"
    ".dpsynth-eval th,.dpsynth-eval td{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    ".dpsynth-eval th:first-child,.dpsynth-eval td:first-child{text-align:left}"
    ".dpsynth-eval .dpsynth-label{color:#8a1c1c}</style>"
)


@dataclass
class EvaluationReport:
    """Evaluation figures of one synthetic table against the real one.

    - ``mean_tvd``: ``{k: mean k-way marginal TVD}`` (from ``mean_tvds``);
    - ``workload_error``: AIM's workload error, when a workload was given;
    - ``column_distances``: the frame from ``column_distances``;
    - ``correlation``: a ``CorrelationDifference``;
    - ``utility``: ``UtilityScore`` objects (TSTR and, optionally, TRTR);
    - ``privacy``: ``PrivacyDiagnostics`` (descriptive only; see its label);
    - ``fairness``: a ``FairnessReport`` (per-group sizes, errors, TSTR; the classifier's
      demographic-parity and equalized-odds differences), when sensitive columns were declared;
    - ``metadata``: free-form context (generator, ε, seed, table name...), shown first;
    - ``flags``: ``{figure: why}`` for every figure that could not be computed properly
      (values that do not fit the schema, labels written differently, an undefined AUC):
      such a figure is shown as "not computed" with the reason, never as a number.
    """

    mean_tvd: Mapping[int, float] = field(default_factory=dict)
    workload_error: float | None = None
    column_distances: pd.DataFrame | None = None
    correlation: CorrelationDifference | None = None
    utility: Sequence[UtilityScore] = ()
    privacy: PrivacyDiagnostics | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    flags: Mapping[str, str] = field(default_factory=dict)
    # {column: (labels, real shares, synthetic shares)}: drawn as pictures in the HTML
    distributions: Mapping[str, tuple] = field(default_factory=dict)
    # per-group figures of the declared sensitive columns (dpsynth.evaluate.fairness)
    fairness: FairnessReport | None = None

    def _flagged(self, figure: str) -> bool:
        return figure in self.flags

    def to_dict(self) -> dict:
        """JSON-ready nested dict (NaN stays NaN; the caller's JSON writer decides)."""
        out: dict[str, Any] = {"metadata": dict(self.metadata)}
        out["fidelity"] = {
            "mean_tvd": {str(k): float(v) for k, v in self.mean_tvd.items()},
            "workload_error": self.workload_error,
            "correlation_mean_abs_difference":
                None if self.correlation is None else self.correlation.mean_abs_difference,
            "column_distances":
                None if self.column_distances is None else _frame_records(self.column_distances),
        }
        out["utility"] = [s.to_dict() for s in self.utility]
        out["privacy_descriptive"] = None if self.privacy is None else self.privacy.to_dict()
        out["fairness"] = None if self.fairness is None else self.fairness.to_dict()
        out["not_computed"] = dict(self.flags)
        return out

    def to_frame(self) -> pd.DataFrame:
        """Tidy table with columns ``section, metric, key, value`` (one number per row)."""
        rows: list[tuple[str, str, str, float]] = []
        for k, v in sorted(self.mean_tvd.items()):
            if not self._flagged(f"mean {k}-way TVD"):
                rows.append(("fidelity", "mean_tvd", f"{k}-way", float(v)))
        if self.workload_error is not None:
            rows.append(("fidelity", "workload_error", "", float(self.workload_error)))
        if self.correlation is not None:
            rows.append(("fidelity", "correlation_mean_abs_difference", "", self.correlation.mean_abs_difference))
        if self.column_distances is not None:
            for col, rec in self.column_distances.iterrows():
                if self._flagged(f"column {col}"):
                    continue
                for metric in ("tvd", "wasserstein", "ks", "missing_rate_diff"):
                    if metric in rec and not _isnan(rec[metric]):
                        rows.append(("column", metric, str(col), float(rec[metric])))
        for s in self.utility:
            key = f"{s.model}/{s.trained_on}"
            if self._flagged(f"utility {key}"):
                continue
            rows.append(("utility", "accuracy", key, s.accuracy))
            rows.append(("utility", "roc_auc", key, s.roc_auc))
        if self.privacy is not None:
            dcr = self.privacy.dcr
            for q, v in dcr.synth_quantiles.items():
                rows.append(("privacy_descriptive", f"dcr_synth_q{q:g}", "", v))
            for q, v in dcr.holdout_quantiles.items():
                rows.append(("privacy_descriptive", f"dcr_holdout_q{q:g}", "", v))
            rows.append(("privacy_descriptive", "dcr_synth_exact_match_share", "", dcr.synth_exact_match_share))
            rows.append(("privacy_descriptive", "mia_auc", "", self.privacy.membership_inference.auc))
        if self.fairness is not None:
            for d in self.fairness.disparities:
                rows.append(("fairness", "demographic_parity_difference", f"{d.column}/{d.trained_on}",
                             d.demographic_parity_difference))
                rows.append(("fairness", "equalized_odds_difference", f"{d.column}/{d.trained_on}",
                             d.equalized_odds_difference))
            for g in self.fairness.groups:
                key = f"{g.column}={g.group}"
                rows.append(("fairness", "share_real", key, g.share_real))
                rows.append(("fairness", "share_synthetic", key, g.share_synthetic))
                for k, v in g.marginal_error.items():
                    rows.append(("fairness", f"group_{k}way_tvd", key, v))
                for who, scores in (("synthetic", g.tstr), ("real", g.trtr)):
                    for metric, v in scores.items():
                        rows.append(("fairness", f"group_{metric}", f"{key}/{who}", v))
        return pd.DataFrame.from_records(rows, columns=["section", "metric", "key", "value"])

    def to_html(self) -> str:
        """A self-contained HTML snippet (a ``<div class="dpsynth-eval">``)."""
        parts = [_STYLE, '<div class="dpsynth-eval">']
        if self.metadata:
            parts.append(_table("Run", ("", ""), [(str(k), str(v)) for k, v in self.metadata.items()]))
        if self.flags:
            parts.append(_table("Figures not computed (shown as such below, never as numbers)", ("figure", "why"),
                                [(k, v) for k, v in self.flags.items()]))
        fidelity = [(f"mean {k}-way marginal TVD",
                     _NOT_COMPUTED if self._flagged(f"mean {k}-way TVD") else _fmt(v))
                    for k, v in sorted(self.mean_tvd.items())]
        if self.workload_error is not None:
            fidelity.append(("workload error (AIM)", _fmt(self.workload_error)))
        if self.correlation is not None:
            fidelity.append(("mean |association difference|", _fmt(self.correlation.mean_abs_difference)))
        if fidelity:
            parts.append(_table("Fidelity (lower is better)", ("metric", "value"), fidelity))
        if self.distributions or self.correlation is not None:
            from .pictures import pictures_html

            parts.append(pictures_html(self.distributions, self.correlation))
        if self.column_distances is not None:
            header = ("column",) + tuple(self.column_distances.columns)
            body = [(str(col),) + tuple(_NOT_COMPUTED if self._flagged(f"column {col}") and not isinstance(v, str)
                                        else _fmt(v) for v in rec)
                    for col, rec in self.column_distances.iterrows()]
            parts.append(_table("Per-column distances", header, body))
        if self.utility:
            body = []
            for s in self.utility:
                bad = self._flagged(f"utility {s.model}/{s.trained_on}")
                body.append((s.model, s.trained_on, _NOT_COMPUTED if bad else _fmt(s.accuracy),
                             _NOT_COMPUTED if bad else _fmt(s.roc_auc), s.note))
            parts.append(_table("Utility (tested on real data)",
                                ("model", "trained on", "accuracy", "ROC-AUC", "note"), body))
        if self.fairness is not None:
            parts.append(self.fairness.to_html())
        if self.privacy is not None:
            parts.append(f"<h3>Memorisation diagnostics</h3>"
                         f'<p class="dpsynth-label"><strong>{html.escape(DESCRIPTIVE_LABEL)}</strong></p>')
            parts.append(self.privacy.to_html())
        parts.append("</div>")
        return "".join(parts)


_NOT_COMPUTED = "not computed (see above)"


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.4f}"
    return str(v)


def _frame_records(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {str(col): {k: (v if not isinstance(v, float) else float(v)) for k, v in rec.items()}
            for col, rec in frame.iterrows()}


def _table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h3>{esc(title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
