"""Train on synthetic / test on real, beside train on real / test on real."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from dpsynth.evaluate import ColumnSpec, evaluate_classifier, scores_frame, utility_scores
from dpsynth.evaluate.utility import _macro_ovr_auc
from tests.evaluate.data import adult_raw


def test_train_on_real_adult_reaches_published_auc():
    train, test, spec = adult_raw()
    score = evaluate_classifier(train, test, spec, "gradient_boosting", trained_on="real", seed=0)
    # Gradient boosting on UCI Adult is usually reported at ROC-AUC 0.92-0.93.
    assert score.auc_defined and score.roc_auc > 0.9
    assert score.accuracy > 0.85
    assert (score.n_train, score.n_test) == (len(train), len(test))


def test_label_shuffled_synthetic_table_has_chance_auc():
    train, test, spec = adult_raw()
    test = test.sample(4000, random_state=0)
    aucs = []
    for seed in range(8):
        synth = train.sample(3000, random_state=seed).copy()
        synth["income"] = np.random.default_rng(seed).permutation(synth["income"].to_numpy())
        aucs.append(evaluate_classifier(synth, test, spec, "logistic_regression", seed=seed).roc_auc)
    # A model fitted to noise is a random function of informative features, so single AUCs
    # scatter widely around 0.5 (sd ~0.07 here); their mean must sit near chance and
    # every one must stay far below what real labels give (> 0.9).
    assert abs(np.mean(aucs) - 0.5) < 0.08
    assert max(aucs) < 0.75


def test_single_class_synthetic_target_gives_nan_auc_with_a_flag():
    train, test, spec = adult_raw()
    synth = train.head(500).assign(income="<=50K")
    for model in ("logistic_regression", "gradient_boosting"):
        score = evaluate_classifier(synth, test, spec, model)
        assert math.isnan(score.roc_auc) and not score.auc_defined
        assert "single class of 'income'" in score.note
        # predicting the majority class everywhere: accuracy = its share of the test table
        assert score.accuracy == pytest.approx(float((test["income"] == "<=50K").mean()))


def test_deterministic_given_a_seed_and_both_settings_reported():
    train, test, spec = adult_raw()
    synth, real_train, test = train.iloc[:2000], train.iloc[2000:4000], test.iloc[:2000]
    first = utility_scores(synth, test, spec, real_train=real_train, seed=3)
    second = utility_scores(synth, test, spec, real_train=real_train, seed=3)
    assert first == second
    frame = scores_frame(first)
    assert list(zip(frame["model"], frame["trained_on"])) == [
        ("logistic_regression", "synthetic"), ("gradient_boosting", "synthetic"),
        ("logistic_regression", "real"), ("gradient_boosting", "real"),
    ]


def _three_class_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green"], n)
    label = np.where(x + (colour == "red") + rng.normal(scale=0.7, size=n) > 1.0, "high",
                     np.where(x < -0.5, "low", "mid"))
    return pd.DataFrame({"x": x, "colour": colour, "label": label})


def test_multiclass_auc_is_sklearn_macro_one_vs_rest():
    spec = ColumnSpec(categorical=["colour", "label"], numeric=["x"], target="label")
    train, test = _three_class_table(600, 0), _three_class_table(400, 1)
    score = evaluate_classifier(train, test, spec, "logistic_regression")
    assert 0.6 < score.roc_auc <= 1.0
    # independent check of the averaging against sklearn on the same probabilities
    rng = np.random.default_rng(2)
    proba = rng.dirichlet(np.ones(3), size=len(test))
    classes = np.array(["high", "low", "mid"], dtype=object)
    y = test["label"].to_numpy(dtype=object)
    expected = roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes)
    assert _macro_ovr_auc(y, proba, classes, np.unique(y)) == pytest.approx(expected)


def test_test_class_missing_from_synthetic_table_is_flagged_not_fatal():
    spec = ColumnSpec(categorical=["colour", "label"], numeric=["x"], target="label")
    train, test = _three_class_table(600, 0), _three_class_table(400, 1)
    synth = train[train["label"] != "low"]
    score = evaluate_classifier(synth, test, spec, "gradient_boosting")
    assert score.auc_defined and 0.0 <= score.roc_auc <= 1.0
    assert "absent from the synthetic training table" in score.note


def test_bad_arguments():
    spec_no_target = ColumnSpec(categorical=["colour"], numeric=["x"])
    table = _three_class_table(50, 0)
    with pytest.raises(ValueError, match="names no target"):
        evaluate_classifier(table, table, spec_no_target)
    spec = ColumnSpec(categorical=["colour", "label"], numeric=["x"], target="label")
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        evaluate_classifier(table, table, spec, "svm")
    with pytest.raises(ValueError, match="the synthetic training table has no column 'x'"):
        evaluate_classifier(table.drop(columns="x"), table, spec)
