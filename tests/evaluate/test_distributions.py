"""Per-column distances and pairwise association differences on raw tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats.contingency import association

from dpsynth.evaluate import ColumnSpec, association_matrix, column_distances, correlation_difference
from dpsynth.evaluate.correlations import correlation_ratio, cramers_v, pearson
from dpsynth.evaluate.distributions import categorical_tvd
from tests.evaluate.data import adult_raw


def test_categorical_tvd_by_hand_with_missing_as_a_category():
    real = pd.Series(["x", "x", "y", None])
    synth = pd.Series(["x", "y", "y", "y"])
    # real {x: .5, y: .25, missing: .25}, synth {x: .25, y: .75}  ->  ½(.25 + .5 + .25)
    assert categorical_tvd(real, synth) == pytest.approx(0.5)
    assert categorical_tvd(pd.Series([1, 2, 2]), pd.Series([1.0, 2.0, 2.0])) == 0.0


def test_numeric_distances_by_hand():
    spec = ColumnSpec(numeric=["v"], bounds={"v": (0, 20)})
    real = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0]})
    shifted = pd.DataFrame({"v": [3.0, 4.0, 5.0, 6.0]})
    row = column_distances(real, shifted, spec).loc["v"]
    assert row["kind"] == "numeric"
    # a shift by 2 moves every unit of mass 2: W1 = 2, over a range of width 20
    assert row["wasserstein"] == pytest.approx(0.1)
    # empirical CDFs differ most at 2 (0.5 vs 0) and at 4 (1 vs 0.5)
    assert row["ks"] == pytest.approx(0.5)
    assert row["missing_rate_diff"] == 0.0
    with_missing = pd.DataFrame({"v": [3.0, 4.0, 5.0, 6.0, np.nan]})
    assert column_distances(real, with_missing, spec).loc["v", "missing_rate_diff"] == pytest.approx(0.2)


def test_numeric_columns_need_public_bounds():
    spec = ColumnSpec(numeric=["v"])
    table = pd.DataFrame({"v": [1.0, 2.0]})
    with pytest.raises(ValueError, match="numeric column 'v' has no public range"):
        column_distances(table, table, spec)


def test_spec_validation_names_the_column():
    with pytest.raises(ValueError, match="'a' is listed as both"):
        ColumnSpec(categorical=["a"], numeric=["a"])
    with pytest.raises(ValueError, match="bounds of column 'v'"):
        ColumnSpec(numeric=["v"], bounds={"v": (3, 1)})
    with pytest.raises(ValueError, match="target column 'v' must be categorical"):
        ColumnSpec(numeric=["v"], target="v")
    spec = ColumnSpec(categorical=["a"], numeric=["v"], bounds={"v": (0, 1)})
    with pytest.raises(ValueError, match="the synthetic table has no column 'v'"):
        column_distances(pd.DataFrame({"a": [1], "v": [0.5]}), pd.DataFrame({"a": [1]}), spec)


def test_cramers_v_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, 500)
    b = (a + rng.integers(0, 3, 500)) % 5
    table = pd.crosstab(a, b).to_numpy()
    assert cramers_v(a, b) == pytest.approx(association(table, method="cramer", correction=False))
    assert cramers_v(a, a) == pytest.approx(1.0)
    assert cramers_v(a, np.zeros_like(a)) == 0.0  # a constant column carries no association


def test_pearson_and_correlation_ratio():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=200), rng.normal(size=200)
    y = x + y
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert pearson(x, np.ones_like(x)) == 0.0
    # groups {1, 3} and {5, 7}: mean 4, SS_between = 2·4 + 2·4 = 16, SS_total = 20
    assert correlation_ratio(np.array([0, 0, 1, 1]), np.array([1.0, 3.0, 5.0, 7.0])) == pytest.approx(np.sqrt(0.8))
    assert correlation_ratio(np.array([0, 1, 0, 1]), np.array([2.0, 2.0, 2.0, 2.0])) == 0.0


def test_association_matrix_on_adult():
    train, test, spec = adult_raw()
    m = association_matrix(train, spec)
    assert list(m.columns) == list(spec.columns)
    assert np.allclose(m.to_numpy(), m.to_numpy().T)
    assert np.all(np.diag(m.to_numpy()) == 1.0)
    # relationship and sex are strongly associated (husband/wife); education and education-num determine each other
    assert m.loc["relationship", "sex"] > 0.5
    assert m.loc["education", "education-num"] == pytest.approx(1.0)
    assert m.loc["age", "hours-per-week"] == pytest.approx(train["age"].corr(train["hours-per-week"]))

    same_population = correlation_difference(train, test, spec).mean_abs_difference
    rng = np.random.default_rng(0)
    independent = pd.DataFrame({c: rng.choice(train[c].to_numpy(), len(train)) for c in train.columns})
    broken = correlation_difference(train, independent, spec).mean_abs_difference
    assert same_population < 0.02
    assert broken > 5 * same_population


def test_column_distances_on_adult_split():
    train, test, spec = adult_raw()
    frame = column_distances(train, test, spec)
    assert list(frame.index) == list(spec.columns)
    # train and test are two samples of one population: every distance is small
    assert frame["tvd"].max() < 0.03
    assert frame["ks"].max() < 0.03
    assert frame["wasserstein"].max() < 0.01
    # a synthetic table with ages shifted by 10 years is visibly off, on that column only
    shifted = test.assign(age=test["age"] + 10)
    moved = column_distances(train, shifted, spec)
    assert moved.loc["age", "wasserstein"] == pytest.approx(10 / (90 - 17), abs=0.01)
    assert moved.loc["fnlwgt", "wasserstein"] == frame.loc["fnlwgt", "wasserstein"]
