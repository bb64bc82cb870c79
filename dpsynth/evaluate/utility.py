"""Machine-learning utility: train on synthetic, test on real (TSTR), beside train on real, test on real (TRTR).

Each model is a scikit-learn pipeline: categorical features are one-hot encoded
(missing = a category of its own; categories unseen in training are ignored at test
time), numeric features have missing values replaced by the training median and are
standardised.  Models: ``"logistic_regression"`` (lbfgs, up to 1000 iterations) and
``"gradient_boosting"`` (``HistGradientBoostingClassifier``).  Scores on the real test
table: accuracy and ROC-AUC (binary: AUC of the positive class's score; more classes:
one-vs-rest AUC averaged over the classes present in the test table, unweighted —
sklearn's ``multi_class="ovr", average="macro"``).

A synthetic table may be degenerate: when its target holds a single class no model
can be fitted, so the score predicts that class for every test row (accuracy stays
meaningful) and AUC is NaN with ``auc_defined=False`` and a note saying why.  When no
training class occurs in the test table at all (labels written differently, say ``1``
and ``True``), both figures are NaN with a note: a number would measure the spelling.

Results are deterministic given ``seed`` (it seeds every model's randomness).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .columns import ColumnSpec, category_labels

__all__ = ["MODELS", "UtilityScore", "evaluate_classifier", "utility_scores", "scores_frame"]

MODELS = ("logistic_regression", "gradient_boosting")


@dataclass(frozen=True)
class UtilityScore:
    """One model trained on one table, scored on the real test table."""

    model: str
    trained_on: str  # "synthetic" (TSTR) or "real" (TRTR)
    accuracy: float
    roc_auc: float  # NaN when undefined; see auc_defined / note
    auc_defined: bool
    n_train: int
    n_test: int
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_classifier(
    train: pd.DataFrame,
    test: pd.DataFrame,
    spec: ColumnSpec,
    model: str = "gradient_boosting",
    *,
    trained_on: str = "synthetic",
    seed: int = 0,
) -> UtilityScore:
    """Fit ``model`` on ``train`` to predict ``spec.target`` and score it on ``test``."""
    if spec.target is None:
        raise ValueError("the column spec names no target column; utility needs one")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {MODELS}")
    if trained_on not in ("synthetic", "real"):
        raise ValueError(f"trained_on must be 'synthetic' or 'real', got {trained_on!r}")
    spec.check_table(train, f"{trained_on} training")
    spec.check_table(test, "real test")
    if len(train) == 0:
        raise ValueError(f"the {trained_on} training table has no rows")
    if len(test) == 0:
        raise ValueError("the real test table has no rows")
    y_train = _labels(train[spec.target])
    y_test = _labels(test[spec.target])
    X_train, X_test = _features(train, spec), _features(test, spec)

    train_classes = np.unique(y_train)
    test_classes = np.unique(y_test)
    base = dict(model=model, trained_on=trained_on, n_train=len(train), n_test=len(test))
    if not np.intersect1d(train_classes, test_classes).size:
        # Accuracy 0 and AUC 0.5 would be printed as if they measured something: they only say
        # that the two tables write the labels differently (1 and True, say).
        return UtilityScore(
            accuracy=math.nan, roc_auc=math.nan, auc_defined=False,
            note=f"no class of {spec.target!r} in the {trained_on} training table occurs in the test table "
                 "(are the labels written differently, e.g. 1 and True?): not computed",
            **base,
        )
    if len(train_classes) < 2:
        accuracy = float(np.mean(y_test == train_classes[0]))
        return UtilityScore(
            accuracy=accuracy, roc_auc=math.nan, auc_defined=False,
            note=f"the {trained_on} training table has a single class of {spec.target!r}: "
                 "no model fitted, every test row predicted as that class; AUC undefined",
            **base,
        )

    pipeline = _pipeline(spec, model, seed)
    with warnings.catch_warnings():
        # one-hot categories unseen at fit time are expected for synthetic tables
        warnings.filterwarnings("ignore", message="Found unknown categories")
        pipeline.fit(X_train, y_train)
        proba = pipeline.predict_proba(X_test)
    fitted_classes = pipeline.classes_
    predicted = fitted_classes[np.argmax(proba, axis=1)]
    accuracy = float(accuracy_score(y_test, predicted))

    if len(test_classes) < 2:
        return UtilityScore(
            accuracy=accuracy, roc_auc=math.nan, auc_defined=False,
            note=f"the real test table has a single class of {spec.target!r}; AUC undefined", **base,
        )
    auc = _macro_ovr_auc(y_test, proba, fitted_classes, test_classes)
    note = ""
    unseen = np.setdiff1d(test_classes, fitted_classes)
    if len(unseen):
        note = (f"{len(unseen)} class(es) of {spec.target!r} present in the test table are absent from "
                f"the {trained_on} training table; scored with probability 0")
    return UtilityScore(accuracy=accuracy, roc_auc=auc, auc_defined=True, note=note, **base)


def utility_scores(
    synth: pd.DataFrame,
    real_test: pd.DataFrame,
    spec: ColumnSpec,
    *,
    real_train: pd.DataFrame | None = None,
    models: Sequence[str] = MODELS,
    seed: int = 0,
) -> list[UtilityScore]:
    """TSTR for each model; with ``real_train`` also TRTR, the reference to read TSTR against."""
    out = [evaluate_classifier(synth, real_test, spec, m, trained_on="synthetic", seed=seed) for m in models]
    if real_train is not None:
        out += [evaluate_classifier(real_train, real_test, spec, m, trained_on="real", seed=seed) for m in models]
    return out


def scores_frame(scores: Sequence[UtilityScore]) -> pd.DataFrame:
    """The scores as a tidy DataFrame, one row per (model, trained_on)."""
    return pd.DataFrame([s.to_dict() for s in scores])


# --------------------------------------------------------------------------- internals


def _labels(series: pd.Series) -> np.ndarray:
    # Compared as strings so that an int-coded synthetic target matches an int-coded
    # real one whatever dtype pandas chose (1 vs 1.0 after a missing value).
    return category_labels(series).to_numpy(dtype=object)


def _features(table: pd.DataFrame, spec: ColumnSpec) -> pd.DataFrame:
    out = {}
    for col in spec.features:
        if spec.is_categorical(col):
            out[col] = category_labels(table[col])
        else:
            out[col] = table[col].astype(np.float64)
    return pd.DataFrame(out, index=table.index)


def _pipeline(spec: ColumnSpec, model: str, seed: int) -> Pipeline:
    categorical = [c for c in spec.features if spec.is_categorical(c)]
    numeric = [c for c in spec.features if not spec.is_categorical(c)]
    transformers = []
    if categorical:
        transformers.append(("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical))
    if numeric:
        transformers.append(
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                                  ("scale", StandardScaler())]), numeric)
        )
    if not transformers:
        raise ValueError("the column spec has no feature columns besides the target")
    prep = ColumnTransformer(transformers, remainder="drop", sparse_threshold=0.0)
    if model == "logistic_regression":
        clf = LogisticRegression(max_iter=1000, random_state=seed)
    else:
        clf = HistGradientBoostingClassifier(random_state=seed)
    return Pipeline([("prepare", prep), ("classify", clf)])


def _macro_ovr_auc(y_test: np.ndarray, proba: np.ndarray, fitted: np.ndarray, present: np.ndarray) -> float:
    """Unweighted mean over the test classes of the one-vs-rest AUC of that class's score."""
    # For two classes both one-vs-rest AUCs equal the usual binary AUC, so this
    # one formula serves both cases.
    aucs = []
    for cls in present:
        score = proba[:, list(fitted).index(cls)] if cls in fitted else np.zeros(len(y_test))
        aucs.append(roc_auc_score(y_test == cls, score))
    return float(np.mean(aucs))
