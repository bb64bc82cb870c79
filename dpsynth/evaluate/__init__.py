"""Evaluation of synthetic tables: fidelity, utility and descriptive memorisation diagnostics.

Modules, one job each:

- ``fidelity``: marginal TVD on integer-coded tables (k-way means, AIM workload error);
- ``columns``: ``ColumnSpec``, the column kinds and public ranges of a raw table;
- ``distributions``: per-column distances on raw tables (TVD, range-normalised
  Wasserstein-1, Kolmogorov–Smirnov);
- ``correlations``: pairwise association matrices (Pearson, Cramér's V, correlation
  ratio) and their mean absolute difference;
- ``utility``: train on synthetic / test on real beside train on real / test on real;
- ``privacy_descriptive``: distance to closest record and a DCR membership-inference
  score, labelled descriptive only;
- ``report``: ``EvaluationReport``, which collects the above.

Every figure here is computed from the real (private) table as well as the synthetic
one, so it stays with the data holder unless released through the gate; the privacy
guarantee of a synthetic table is its ledger entry, never these numbers.
"""

from .columns import ColumnSpec
from .correlations import CorrelationDifference, association_matrix, correlation_difference
from .distributions import column_distances
from .fidelity import all_k_way_cliques, k_way_tvds, marginal_tvd, mean_k_way_tvd, mean_tvds, workload_error
from .privacy_descriptive import (
    DESCRIPTIVE_LABEL,
    DcrResult,
    MembershipInferenceResult,
    PrivacyDiagnostics,
    distance_to_closest_record,
    membership_inference_score,
    privacy_diagnostics,
)
from .report import EvaluationReport
from .utility import MODELS, UtilityScore, evaluate_classifier, scores_frame, utility_scores

__all__ = [
    "ColumnSpec",
    "CorrelationDifference",
    "DESCRIPTIVE_LABEL",
    "DcrResult",
    "EvaluationReport",
    "MODELS",
    "MembershipInferenceResult",
    "PrivacyDiagnostics",
    "UtilityScore",
    "all_k_way_cliques",
    "association_matrix",
    "column_distances",
    "correlation_difference",
    "distance_to_closest_record",
    "evaluate_classifier",
    "k_way_tvds",
    "marginal_tvd",
    "mean_k_way_tvd",
    "mean_tvds",
    "membership_inference_score",
    "privacy_diagnostics",
    "scores_frame",
    "utility_scores",
    "workload_error",
]

# The schema-aware entry point (what `dpsynth run` and `dpsynth compare` use), here so that
# users find it beside its building blocks.  It lives in dpsynth.jobs.quality, which imports
# this package lazily, so there is no import cycle.
from dpsynth.jobs.quality import evaluate_synthetic  # noqa: E402

__all__.append("evaluate_synthetic")
