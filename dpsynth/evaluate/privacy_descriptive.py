"""Memorisation diagnostics: distance to closest record (DCR) and a DCR-threshold membership-inference score.

Design note — read before using.  These figures read the private table (the training
rows, and a holdout of real rows), so they are measurements of private data that no
mechanism protects.  They are only for the data holder's internal report: not for
release (publishing them can itself leak records, see Ganev & De Cristofaro,
arXiv:2312.05114, whose ReconSyn attack reconstructs outliers from such metrics even
when the model is DP), and they are not a privacy guarantee (passing a DCR test says
nothing about worst-case leakage, "The DCR Delusion", arXiv:2505.01524).  The privacy
guarantee of a synthetic table is the (ε, δ) recorded in the ledger.  Therefore every
result here carries :data:`DESCRIPTIVE_LABEL`, and its text and HTML renderings show
it; no function returns a pass/fail verdict.

Encoding.  Rows are compared in a normalised space where every column contributes at
most about 1 to the squared Euclidean distance: a numeric value is scaled by its
column's public range to [0, 1] (values outside the range are clipped); a categorical
column is one-hot encoded and scaled by 1/√2, so two different categories are at
distance 1 and equal ones at 0.  A missing numeric value is encoded as 0 plus an
indicator coordinate, so it is at distance ≥ 1 from any present value; a missing
categorical value is a category of its own.  Categories are taken from the union of
the tables compared.  Nearest neighbours: scikit-learn ``NearestNeighbors`` (exact).

- DCR: for each synthetic row, the distance to its nearest training row, beside the
  same distance for each holdout row (real rows not used for training): the baseline
  of how close genuinely new records from the same population come.
- Membership inference (DCR-threshold attack): the score of a candidate record is
  minus its distance to the closest *synthetic* row; the AUC of that score for
  telling training members from holdout non-members.  0.5 = no signal.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

from .columns import ColumnSpec, category_labels

__all__ = [
    "DESCRIPTIVE_LABEL",
    "DcrResult",
    "MembershipInferenceResult",
    "PrivacyDiagnostics",
    "distance_to_closest_record",
    "membership_inference_score",
    "privacy_diagnostics",
    "encode_rows",
]

DESCRIPTIVE_LABEL = (
    "descriptive only, computed on the private table: not for release, "
    "not a privacy guarantee — the guarantee is the ledger"
)

_QUANTILES = (0.05, 0.5)


@dataclass(frozen=True)
class DcrResult:
    """Distances to the closest training record, synthetic rows beside holdout rows."""

    synth_quantiles: dict[float, float]    # quantile -> synthetic-to-train distance
    holdout_quantiles: dict[float, float]  # quantile -> holdout-to-train distance (baseline)
    synth_exact_match_share: float         # share of synthetic rows at distance 0 from a training row
    holdout_exact_match_share: float       # the same for holdout rows
    n_synth: int
    n_holdout: int
    n_train: int
    label: str = field(default=DESCRIPTIVE_LABEL, init=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["synth_quantiles"] = {str(q): v for q, v in self.synth_quantiles.items()}
        d["holdout_quantiles"] = {str(q): v for q, v in self.holdout_quantiles.items()}
        return d

    def to_text(self) -> str:
        lines = [f"Distance to closest record ({self.label})"]
        for q in self.synth_quantiles:
            lines.append(f"  {int(q * 100)}th percentile: synthetic→train {self.synth_quantiles[q]:.4f}, "
                         f"holdout→train {self.holdout_quantiles[q]:.4f}")
        lines.append(f"  exact matches: synthetic {self.synth_exact_match_share:.2%}, "
                     f"holdout {self.holdout_exact_match_share:.2%}")
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = [(f"{int(q * 100)}th percentile distance", f"{self.synth_quantiles[q]:.4f}",
                 f"{self.holdout_quantiles[q]:.4f}") for q in self.synth_quantiles]
        rows.append(("exact-match share", f"{self.synth_exact_match_share:.2%}",
                     f"{self.holdout_exact_match_share:.2%}"))
        return _labelled_table("Distance to closest record", ("", "synthetic → train", "holdout → train"), rows)


@dataclass(frozen=True)
class MembershipInferenceResult:
    """AUC of the DCR-threshold attack telling training members from holdout non-members."""

    auc: float
    n_members: int
    n_non_members: int
    n_synth: int
    label: str = field(default=DESCRIPTIVE_LABEL, init=False)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        return (f"Membership inference, DCR-threshold attack ({self.label})\n"
                f"  AUC {self.auc:.3f} (0.5 = no signal; {self.n_members} members, "
                f"{self.n_non_members} non-members)")

    def to_html(self) -> str:
        rows = [("attack AUC (0.5 = no signal)", f"{self.auc:.3f}"),
                ("members / non-members", f"{self.n_members} / {self.n_non_members}")]
        return _labelled_table("Membership inference (DCR-threshold attack)", ("", "value"), rows)


@dataclass(frozen=True)
class PrivacyDiagnostics:
    """Both diagnostics together, under the one label."""

    dcr: DcrResult
    membership_inference: MembershipInferenceResult
    label: str = field(default=DESCRIPTIVE_LABEL, init=False)

    def to_dict(self) -> dict:
        return {"label": self.label, "dcr": self.dcr.to_dict(),
                "membership_inference": self.membership_inference.to_dict()}

    def to_text(self) -> str:
        return f"{self.dcr.to_text()}\n{self.membership_inference.to_text()}"

    def to_html(self) -> str:
        return self.dcr.to_html() + self.membership_inference.to_html()


def encode_rows(tables: list[pd.DataFrame], spec: ColumnSpec) -> list[np.ndarray]:
    """Encode several tables into one shared normalised space (see the module docstring)."""
    parts: list[list[np.ndarray]] = [[] for _ in tables]
    for col in spec.columns:
        if spec.is_categorical(col):
            series = [category_labels(t[col]) for t in tables]
            categories = pd.Index(pd.unique(pd.concat(series, ignore_index=True)))
            for i, s in enumerate(series):
                codes = categories.get_indexer(s)
                onehot = np.zeros((len(s), len(categories)))
                onehot[np.arange(len(s)), codes] = 1.0 / np.sqrt(2.0)
                parts[i].append(onehot)
        else:
            low, high = spec.bound(col)
            for i, t in enumerate(tables):
                x = t[col].to_numpy(dtype=np.float64)
                missing = np.isnan(x)
                scaled = np.clip((np.where(missing, low, x) - low) / (high - low), 0.0, 1.0)
                scaled[missing] = 0.0
                parts[i].append(scaled[:, None])
                parts[i].append(missing.astype(np.float64)[:, None])
    return [np.hstack(p) if p else np.zeros((len(t), 0)) for p, t in zip(parts, tables)]


def distance_to_closest_record(
    train: pd.DataFrame,
    synth: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: ColumnSpec,
    *,
    max_rows: int | None = 5000,
    seed: int = 0,
) -> DcrResult:
    """DCR of synthetic rows to the training table, beside holdout rows' DCR (the baseline).

    At most ``max_rows`` synthetic and holdout rows are queried (a seeded uniform
    subsample); every training row is searched.  ``None`` queries all rows.
    """
    _check(spec, train=train, synth=synth, holdout=holdout)
    rng = np.random.default_rng(seed)
    synth_q, holdout_q = _subsample(synth, max_rows, rng), _subsample(holdout, max_rows, rng)
    enc_train, enc_synth, enc_holdout = encode_rows([train, synth_q, holdout_q], spec)
    d_synth, d_holdout = _nearest_distances(enc_train, [enc_synth, enc_holdout])
    return DcrResult(
        synth_quantiles={q: float(np.quantile(d_synth, q)) for q in _QUANTILES},
        holdout_quantiles={q: float(np.quantile(d_holdout, q)) for q in _QUANTILES},
        synth_exact_match_share=float(np.mean(d_synth == 0.0)),
        holdout_exact_match_share=float(np.mean(d_holdout == 0.0)),
        n_synth=len(synth_q), n_holdout=len(holdout_q), n_train=len(train),
    )


def membership_inference_score(
    train: pd.DataFrame,
    synth: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: ColumnSpec,
    *,
    max_rows: int | None = 5000,
    seed: int = 0,
) -> MembershipInferenceResult:
    """AUC of the DCR-threshold attack: members = training rows, non-members = holdout rows.

    Members and non-members are balanced: ``min(len(train), len(holdout), max_rows)``
    of each, drawn uniformly with ``seed``.
    """
    _check(spec, train=train, synth=synth, holdout=holdout)
    rng = np.random.default_rng(seed)
    n = min(len(train), len(holdout)) if max_rows is None else min(len(train), len(holdout), max_rows)
    members, non_members = _subsample(train, n, rng), _subsample(holdout, n, rng)
    enc_synth, enc_members, enc_non = encode_rows([synth, members, non_members], spec)
    d_members, d_non = _nearest_distances(enc_synth, [enc_members, enc_non])
    score = -np.concatenate([d_members, d_non])
    is_member = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    auc = float(roc_auc_score(is_member, score))
    return MembershipInferenceResult(auc=auc, n_members=len(members), n_non_members=len(non_members),
                                     n_synth=len(synth))


def privacy_diagnostics(
    train: pd.DataFrame,
    synth: pd.DataFrame,
    holdout: pd.DataFrame,
    spec: ColumnSpec,
    *,
    max_rows: int | None = 5000,
    seed: int = 0,
) -> PrivacyDiagnostics:
    """DCR and the membership-inference score in one object (both labelled descriptive)."""
    return PrivacyDiagnostics(
        dcr=distance_to_closest_record(train, synth, holdout, spec, max_rows=max_rows, seed=seed),
        membership_inference=membership_inference_score(train, synth, holdout, spec,
                                                        max_rows=max_rows, seed=seed),
    )


# --------------------------------------------------------------------------- internals

def _nearest_distances(reference: np.ndarray, queries: list[np.ndarray]) -> list[np.ndarray]:
    """Euclidean distance from each query row to its nearest reference row.

    A query row identical to a reference row gets exactly 0: the brute-force search
    expands |x - y|² = |x|² + |y|² - 2x·y, whose rounding can leave ~1e-8 for equal
    rows, so exact copies are found by hashing the encoded rows instead.
    """
    index = NearestNeighbors(n_neighbors=1).fit(reference)
    seen = {row.tobytes() for row in np.ascontiguousarray(reference)}
    out = []
    for q in queries:
        d = index.kneighbors(q)[0][:, 0]
        exact = np.fromiter((row.tobytes() in seen for row in np.ascontiguousarray(q)), dtype=bool, count=len(q))
        d[exact] = 0.0
        out.append(d)
    return out


def _check(spec: ColumnSpec, **tables: pd.DataFrame) -> None:
    for role, table in tables.items():
        spec.check_table(table, role)
        if len(table) == 0:
            raise ValueError(f"the {role} table has no rows")


def _subsample(table: pd.DataFrame, max_rows: int | None, rng: np.random.Generator) -> pd.DataFrame:
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"max_rows must be a positive integer or None, got {max_rows!r}")
    if max_rows is None or len(table) <= max_rows:
        return table
    return table.iloc[np.sort(rng.choice(len(table), size=max_rows, replace=False))]


def _labelled_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (f'<div class="dpsynth-descriptive"><h4>{esc(title)}</h4>'
            f'<p class="dpsynth-label"><strong>{esc(DESCRIPTIVE_LABEL)}</strong></p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
