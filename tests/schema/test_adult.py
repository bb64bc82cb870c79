"""A real table (UCI Adult, raw) with a schema declared from its public documentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dpsynth.schema import Schema
from tests.conftest import shared_path

COLUMNS = ["age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
           "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country",
           "income"]
SCHEMA = Path(__file__).with_name("adult.toml")


def load_adult() -> pd.DataFrame:
    path = shared_path("data", "adult", "raw", "adult.data")
    return pd.read_csv(path, names=COLUMNS, skipinitialspace=True, na_values="?")


def test_adult_encodes_against_declared_schema_and_decodes_back():
    frame = load_adult()
    schema = Schema.load(SCHEMA)
    codes = schema.encode(frame)
    assert codes.shape == (32561, 15)
    dom = schema.domain()
    assert np.all(codes >= 0) and np.all(codes < np.array(list(dom.values())))
    # Independent checks against the documented counts (adult NOTES.md: 7,841 positives in adult.data)
    assert int((codes[:, COLUMNS.index("income")] == 1).sum()) == 7841
    # "?" is missing: workclass has its missing code exactly where pandas saw NaN
    wc = schema.column("workclass")
    assert np.array_equal(codes[:, 1] == wc.missing_code, frame["workclass"].isna().to_numpy())
    out = schema.decode(codes, np.random.default_rng(0))
    for name in ("workclass", "education", "occupation", "sex", "income"):
        assert out[name].fillna("NA").equals(frame[name].fillna("NA").astype(object)), name
    # Integers come back whole and inside the same bin; education-num's unit bins give the exact value.
    assert out["education-num"].astype(int).equals(frame["education-num"].astype(int))
    assert np.array_equal(schema.encode(out.assign(**{"native-country": frame["native-country"]})), codes)
