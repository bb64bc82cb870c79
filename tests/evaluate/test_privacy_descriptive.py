"""Descriptive memorisation diagnostics: DCR and the DCR-threshold membership score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dpsynth.evaluate import (
    DESCRIPTIVE_LABEL,
    ColumnSpec,
    distance_to_closest_record,
    membership_inference_score,
    privacy_diagnostics,
)
from dpsynth.evaluate.privacy_descriptive import encode_rows
from tests.evaluate.data import adult_raw

LABEL = ("descriptive only, computed on the private table: not for release, "
         "not a privacy guarantee — the guarantee is the ledger")


def _adult_split():
    train, test, spec = adult_raw()
    return train.iloc[:3000], test.iloc[:3000], test.iloc[3000:6000], spec


def test_copying_training_rows_is_detected():
    train, holdout, _, spec = _adult_split()
    copy = train.sample(frac=1.0, random_state=0)  # every training row, shuffled
    result = privacy_diagnostics(train, copy, holdout, spec, max_rows=2000)
    assert result.dcr.synth_quantiles[0.5] == 0.0
    assert result.dcr.synth_exact_match_share == 1.0
    assert result.dcr.holdout_quantiles[0.5] > 0.05
    assert result.membership_inference.auc > 0.95


def test_independent_sample_looks_like_holdout():
    train, holdout, fresh, spec = _adult_split()
    dcr = distance_to_closest_record(train, fresh, holdout, spec, max_rows=2000)
    assert dcr.synth_exact_match_share < 0.01
    assert dcr.synth_quantiles[0.5] == pytest.approx(dcr.holdout_quantiles[0.5], rel=0.2)
    mia = membership_inference_score(train, fresh, holdout, spec, max_rows=2000)
    assert abs(mia.auc - 0.5) < 0.05
    assert (mia.n_members, mia.n_non_members) == (2000, 2000)


def test_dcr_matches_brute_force_on_a_small_table():
    spec = ColumnSpec(categorical=["c"], numeric=["v"], bounds={"v": (0, 10)})
    train = pd.DataFrame({"c": ["a", "b", "b"], "v": [0.0, 5.0, 10.0]})
    synth = pd.DataFrame({"c": ["a", "b", "a", "b"], "v": [0.0, 6.0, 10.0, np.nan]})
    # by hand, per column: a category mismatch adds 1 to the squared distance; a numeric gap
    # adds (gap/10)²; a missing value sits at 0 with indicator 1.
    #   (a, 0)   -> train (a, 0): 0
    #   (b, 6)   -> train (b, 5): 0.1
    #   (a, 10)  -> train (b, 10): 1, or (a, 0): 1  -> 1
    #   (b, NaN) -> train (b, 5): sqrt(.25 + 1); (b, 10): sqrt(0 + 0 + 1 + 1); (a, 0): sqrt(1 + 0 + 1)
    expected = np.sort([0.0, 0.1, 1.0, np.sqrt(1.25)])
    dcr = distance_to_closest_record(train, synth, train, spec, max_rows=None)
    assert dcr.synth_quantiles[0.5] == pytest.approx(np.quantile(expected, 0.5))
    assert dcr.synth_quantiles[0.05] == pytest.approx(np.quantile(expected, 0.05))
    assert dcr.synth_exact_match_share == 0.25
    assert dcr.holdout_exact_match_share == 1.0  # the holdout here is the training table itself
    enc_train, enc_synth = encode_rows([train, synth], spec)
    brute = np.sqrt(((enc_synth[:, None, :] - enc_train[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    assert np.allclose(np.sort(brute), expected)


def test_every_rendering_carries_the_label():
    assert DESCRIPTIVE_LABEL == LABEL
    train, holdout, fresh, spec = _adult_split()
    result = privacy_diagnostics(train.iloc[:500], fresh.iloc[:500], holdout.iloc[:500], spec)
    for obj in (result, result.dcr, result.membership_inference):
        assert obj.label == LABEL
        assert LABEL in obj.to_text()
        assert "the guarantee is the ledger" in obj.to_html()
        assert "pass" not in obj.to_text().lower()  # no verdict
    assert result.to_dict()["label"] == LABEL
    assert result.to_dict()["dcr"]["label"] == LABEL
    assert result.to_dict()["membership_inference"]["label"] == LABEL


def test_bad_input():
    spec = ColumnSpec(categorical=["c"])
    table = pd.DataFrame({"c": ["a"]})
    with pytest.raises(ValueError, match="the holdout table has no rows"):
        distance_to_closest_record(table, table, table.iloc[:0], spec)
    with pytest.raises(ValueError, match="max_rows"):
        membership_inference_score(table, table, table, spec, max_rows=0)
