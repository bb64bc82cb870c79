"""Fairness measures against values computed by hand on tiny tables.

The training tables make the target a function of one feature (y = yes exactly when x = p), so
any classifier predicts y = (x == p) on the test rows; every expected figure below is then
counted by hand from the test rows written out here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dpsynth.evaluate import ColumnSpec
from dpsynth.evaluate.fairness import fairness_scores, group_marginal_errors

SPEC = ColumnSpec(categorical=("group", "x", "y"), numeric=(), target="y")


def _train(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.choice(["p", "q"], n)
    return pd.DataFrame({"group": rng.choice(["A", "B"], n), "x": x, "y": np.where(x == "p", "yes", "no")})


# Test rows: (group, x, y).  Predictions are x == p.
TEST = pd.DataFrame([
    ("A", "p", "yes"), ("A", "p", "yes"), ("A", "p", "no"), ("A", "q", "no"),   # A: 3 of 4 predicted yes
    ("B", "p", "yes"), ("B", "q", "yes"), ("B", "q", "no"), ("B", "q", "no"),   # B: 1 of 4 predicted yes
], columns=["group", "x", "y"])


@pytest.mark.parametrize("model", ["logistic_regression", "gradient_boosting"])
def test_disparities_and_group_scores_match_hand_counts(model):
    report = fairness_scores(_train(), TEST, SPEC, ["group"], real_train=_train(seed=1), model=model)
    assert report.positive == "yes"
    d = report.disparity("group", "synthetic")
    # Selection rates 3/4 and 1/4.
    assert d.demographic_parity_difference == pytest.approx(0.5)
    # A: TPR 2/2, FPR 1/2.  B: TPR 1/2, FPR 0/2.  EO difference = max(|1 - 1/2|, |1/2 - 0|) = 0.5.
    assert d.equalized_odds_difference == pytest.approx(0.5)
    a, b = report.group("group", "A"), report.group("group", "B")
    assert a.tstr["accuracy"] == pytest.approx(3 / 4) and b.tstr["accuracy"] == pytest.approx(3 / 4)
    assert a.tstr["recall"] == pytest.approx(1.0) and b.tstr["recall"] == pytest.approx(1 / 2)
    # B's scores rank its positives (p: high, q: low) against its negatives (q, q): AUC by hand
    # = P(score(pos) > score(neg)) + 1/2 P(tie) = (2 + 2·1/2) / 4 = 3/4.
    assert b.tstr["roc_auc"] == pytest.approx(0.75)
    assert a.n_test == 4 and b.n_test == 4
    # Overall: 6 of 8 right; recall 3 of 4 positives.
    assert report.overall["synthetic"]["accuracy"] == pytest.approx(6 / 8)
    assert report.overall["synthetic"]["recall"] == pytest.approx(3 / 4)
    # Trained on real (the same law): the same predictions, the same figures.
    assert report.disparity("group", "real").demographic_parity_difference == pytest.approx(0.5)


def test_disparities_agree_with_a_second_computation_without_fairlearn():
    rng = np.random.default_rng(3)
    test = pd.DataFrame({"group": rng.choice(["A", "B", "C"], 300), "x": rng.choice(["p", "q"], 300)})
    test["y"] = np.where(rng.random(300) < 0.7, np.where(test["x"] == "p", "yes", "no"), "yes")
    report = fairness_scores(_train(), test, SPEC, ["group"])
    pred = (test["x"] == "p").to_numpy()
    truth = (test["y"] == "yes").to_numpy()
    rates = [pred[test["group"] == g].mean() for g in "ABC"]
    tpr = [pred[(test["group"] == g) & truth].mean() for g in "ABC"]
    fpr = [pred[(test["group"] == g) & ~truth].mean() for g in "ABC"]
    d = report.disparity("group")
    assert d.demographic_parity_difference == pytest.approx(max(rates) - min(rates))
    assert d.equalized_odds_difference == pytest.approx(max(max(tpr) - min(tpr), max(fpr) - min(fpr)))


def test_group_shares_and_undefined_figures():
    synth = _train()
    synth.loc[:149, "group"] = "A"
    report = fairness_scores(synth, TEST, SPEC, ["group"], real_train=_train(seed=1))
    a = report.group("group", "A")
    assert a.share_synthetic == pytest.approx((synth["group"] == "A").mean())
    only_neg = TEST[TEST["y"] == "no"].copy()
    only_neg.loc[len(TEST)] = ("C", "p", "yes")  # group C: one test row, a positive
    r = fairness_scores(_train(), only_neg, SPEC, ["group"])
    assert math.isnan(r.group("group", "A").tstr["recall"])  # no positive in A
    assert math.isnan(r.group("group", "C").tstr["roc_auc"])  # a single class in C


def test_group_marginal_errors_by_hand():
    domain = {"g": 2, "a": 2}
    real = pd.DataFrame({"g": [0, 0, 1, 1], "a": [0, 0, 0, 1]})
    synth = pd.DataFrame({"g": [0, 0, 0, 0], "a": [0, 1, 1, 1]})
    errors = group_marginal_errors(real, synth, domain, "g", ks=(1,))
    # Group 0: real a = (1, 0), synthetic a = (1/4, 3/4): TVD 3/4.  Group 1: no synthetic row.
    assert errors[0][1] == pytest.approx(0.75)
    assert math.isnan(errors[1][1])


@pytest.mark.parametrize("sensitive, match", [
    (["nope"], "sensitive column 'nope'"),
    (["y"], "sensitive column 'y'"),
    ("group", "non-empty list"),
    ([], "non-empty list"),
])
def test_bad_sensitive_columns_are_refused_by_name(sensitive, match):
    with pytest.raises(ValueError, match=match):
        fairness_scores(_train(), TEST, SPEC, sensitive)


def test_a_target_that_is_not_binary_is_refused():
    test = TEST.copy()
    test.loc[0, "y"] = "maybe"
    with pytest.raises(ValueError, match="binary target"):
        fairness_scores(_train(), test, SPEC, ["group"])


def test_report_forms_hold_the_fairness_section_and_escape_labels():
    from dpsynth.evaluate import EvaluationReport

    train = _train()
    test = TEST.copy()
    test.loc[0, "group"] = "<b>A</b>"
    train.loc[0, "group"] = "<b>A</b>"
    fair = fairness_scores(train, test, SPEC, ["group"])
    report = EvaluationReport(fairness=fair)
    page = report.to_html()
    assert "demographic-parity difference" in page and "<b>A</b>" not in page and "&lt;b&gt;A&lt;/b&gt;" in page
    frame = report.to_frame()
    dp = frame[(frame["metric"] == "demographic_parity_difference")]
    assert list(dp["key"]) == ["group/synthetic"]
    assert report.to_dict()["fairness"]["target"] == "y"
