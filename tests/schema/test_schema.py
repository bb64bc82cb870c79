"""Schema: columns, codes, decoding, files, and the bad-input errors of issue 4."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from dpsynth.schema import OTHER, Column, EncodingError, Schema, SchemaError, diagnose

SECRET = "Zanzibar-4417"  # a private value: must never appear in an error message


def schema() -> Schema:
    return Schema([
        Column("colour", "categorical", categories=["red", "green", "blue"], nullable=True),
        Column("grade", "ordinal", categories=["low", "mid", "high"], out_of_range="other"),
        Column("flag", "boolean"),
        Column("size", "numeric", lower=0.0, upper=10.0, bins=5),
        Column("count", "integer", bins=[0, 2, 5, 10], out_of_range="clip", nullable=True),
        Column("when", "datetime", lower="2020-01-01", upper="2020-01-05", bins=4),
    ])


def frame() -> pd.DataFrame:
    return pd.DataFrame({
        "colour": ["red", None, "blue", "green"],
        "grade": ["low", "high", "weird", "mid"],
        "flag": [True, False, True, False],
        "size": [0.0, 10.0, 4.0, 3.99],
        "count": [0, 10, 42, None],
        "when": pd.to_datetime(["2020-01-01", "2020-01-04 12:00", "2020-01-02", "2020-01-05"], format="mixed"),
    })


def test_codes_follow_declared_order_other_missing_and_bins():
    codes = schema().encode(frame())
    # colour: categories then missing (code 3)
    assert codes[:, 0].tolist() == [0, 3, 2, 1]
    # grade: unknown -> "other" = 3
    assert codes[:, 1].tolist() == [0, 2, 3, 1]
    assert codes[:, 2].tolist() == [1, 0, 1, 0]
    # size: 5 equal bins of width 2 on [0, 10]; 10.0 is in the last bin, 4.0 starts bin 2
    assert codes[:, 3].tolist() == [0, 4, 2, 1]
    # count: edges 0,2,5,10; 42 clipped into the last bin; missing -> code 3
    assert codes[:, 4].tolist() == [0, 2, 2, 3]
    # when: 4 one-day bins
    assert codes[:, 5].tolist() == [0, 3, 1, 3]


def test_domain_counts_other_and_missing_codes():
    assert schema().domain() == {"colour": 4, "grade": 4, "flag": 2, "size": 5, "count": 4, "when": 4}


def test_decode_stays_in_bins_and_restores_kinds():
    s = schema()
    rng = np.random.default_rng(1)
    m = 2000
    codes = np.column_stack([rng.integers(0, n, m) for n in s.domain().values()])
    out = s.decode(codes, np.random.default_rng(2))
    size_edges = np.linspace(0, 10, 6)
    c = codes[:, 3]
    assert np.all(out["size"].to_numpy() >= size_edges[c]) and np.all(out["size"].to_numpy() <= size_edges[c + 1])
    cnt = out["count"]
    assert str(cnt.dtype) == "Int64"
    assert cnt.isna().to_numpy().tolist() == (codes[:, 4] == 3).tolist()
    present = ~cnt.isna().to_numpy()
    vals = cnt.to_numpy(dtype=float, na_value=np.nan)[present]
    lo = np.array([0, 2, 5])[codes[present, 4]]
    hi = np.array([1, 4, 10])[codes[present, 4]]  # whole numbers of [0,2), [2,5), [5,10]
    assert np.all(vals >= lo) and np.all(vals <= hi) and np.all(vals == np.round(vals))
    assert set(np.unique(vals)) == set(range(0, 11))  # every whole number is reachable
    assert out["grade"][codes[:, 1] == 3].eq(OTHER).all()
    assert out["colour"][codes[:, 0] == 3].isna().all()
    assert out["flag"].dtype == bool
    day = (out["when"] - pd.Timestamp("2020-01-01")).dt.days.to_numpy()
    assert np.array_equal(day, codes[:, 5])


def test_encode_decode_encode_roundtrip():
    s = schema()
    codes = s.encode(frame())
    again = s.encode(s.decode(codes, np.random.default_rng(0)).assign(
        grade=lambda f: f["grade"].replace(OTHER, "not-a-grade")))
    assert np.array_equal(codes, again)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_save_load_roundtrip(tmp_path, suffix):
    s = schema()
    path = s.save(tmp_path / f"schema{suffix}")
    loaded = Schema.load(path)
    assert loaded == s
    assert loaded.domain() == s.domain()
    assert np.array_equal(loaded.encode(frame()), s.encode(frame()))


def test_load_rejects_unknown_fields_and_bad_files(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"columns": [{"name": "a", "kind": "categorical", "categories": ["x"], "colour": 1}]}))
    with pytest.raises(SchemaError, match="unknown fields"):
        Schema.load(p)
    p.write_text("{not json")
    with pytest.raises(SchemaError, match="cannot parse"):
        Schema.load(p)
    with pytest.raises(SchemaError, match=".toml or .json"):
        Schema.load(tmp_path / "s.yaml")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="a", kind="text"), "kind"),
    (dict(name="", kind="categorical"), "name"),
    (dict(name="a", kind="categorical", categories=["x", "x"]), "duplicate categories"),
    (dict(name="a", kind="categorical", categories=[]), "empty"),
    (dict(name="a", kind="categorical", categories=["x"], out_of_range="clip"), "clip"),
    (dict(name="a", kind="numeric", lower=1, upper=0, bins=2), "lower must be below upper"),
    (dict(name="a", kind="numeric", bins=[0, 0, 1]), "strictly increasing"),
    (dict(name="a", kind="numeric", lower=0, upper=1, bins=0), "at least 1"),
    (dict(name="a", kind="numeric", lower=0, upper=math.inf, bins=2), "finite"),
    (dict(name="a", kind="numeric", lower="0", upper=1, bins=2), "number"),
    (dict(name="a", kind="numeric", lower=0, upper=1, bins=2, out_of_range="other"), "other"),
    (dict(name="a", kind="boolean", categories=["no", "yes"]), "boolean"),
    (dict(name="a", kind="integer", categories=[1, 2]), "not categories"),
    (dict(name="a", kind="categorical", categories=["x"], nullable="yes"), "nullable"),
])
def test_malformed_columns_are_refused(kwargs, message):
    with pytest.raises(SchemaError, match=message):
        Column(**kwargs)


def test_duplicate_and_empty_schemas_are_refused():
    with pytest.raises(SchemaError, match="duplicate column names"):
        Schema([Column("a", "boolean"), Column("a", "boolean")])
    with pytest.raises(SchemaError, match="no columns"):
        Schema([])


def _one(kind_frame, col):
    return Schema([col]).encode(kind_frame)


def _err(s: Schema, f: pd.DataFrame) -> EncodingError:
    """The error names the column and the problem: never the value, a row number or a count."""
    with pytest.raises(EncodingError) as info:
        s.encode(f)
    text = str(info.value)
    assert SECRET not in text
    assert "row" not in text.lower()
    assert not re.search(r"\d", text.replace(str(info.value.column), "").replace("0/1", ""))  # no position or count
    assert not hasattr(info.value, "row")
    return info.value


def _rows(s: Schema, f: pd.DataFrame) -> dict:
    """The holder's own diagnostic: {column: rows}."""
    return {x.column: list(x.rows) for x in diagnose(f, s)}


def test_unknown_category_names_column_not_row_nor_value():
    s = Schema([Column("city", "categorical", categories=["Paris", "Rome"])])
    frame = pd.DataFrame({"city": ["Rome", "Paris", SECRET, SECRET]})
    e = _err(s, frame)
    assert e.column == "city" and "'city'" in str(e) and "categories" in str(e)
    assert _rows(s, frame) == {"city": [2, 3]}  # only the holder's diagnostic lists rows


def test_missing_where_not_nullable():
    s = Schema([Column("x", "numeric", lower=0, upper=1, bins=2)])
    frame = pd.DataFrame({"x": [0.5, float("nan")]})
    e = _err(s, frame)
    assert e.column == "x" and "missing" in str(e)
    assert _rows(s, frame) == {"x": [1]}
    s = Schema([Column("c", "categorical", categories=["a"])])
    assert _err(s, pd.DataFrame({"c": ["a", None]})).column == "c"


@pytest.mark.parametrize("col, values, row", [
    (Column("x", "numeric", lower=0, upper=1, bins=2), [0.5, SECRET], 1),
    (Column("x", "integer", lower=0, upper=9, bins=3), [1, 2.5], 1),
    (Column("x", "numeric", lower=0, upper=1, bins=2), [True, False], 0),
    (Column("x", "boolean"), [True, SECRET], 1),
    (Column("x", "boolean"), [True, 2], 1),
    (Column("x", "datetime", lower="2020-01-01", upper="2021-01-01", bins=2), ["2020-05-01", SECRET], 1),
    (Column("x", "datetime", lower="2020-01-01", upper="2021-01-01", bins=2), [1, 2], 0),
    (Column("x", "categorical", categories=["a"]), ["a", ["a"]], 1),
])
def test_wrong_types_name_the_column_and_the_holder_gets_the_row(col, values, row):
    frame = pd.DataFrame({"x": pd.Series(values, dtype=object)})
    e = _err(Schema([col]), frame)
    assert e.column == "x"
    assert "wrong type" in str(e) or "whole number" in str(e)
    assert _rows(Schema([col]), frame)["x"][0] == row


def test_out_of_bounds_is_an_error_unless_clipped():
    s = Schema([Column("x", "numeric", lower=0, upper=1, bins=2)])
    frame = pd.DataFrame({"x": [0.5, 1.5, 3.0]})
    e = _err(s, frame)
    assert e.column == "x" and "outside" in str(e)
    assert _rows(s, frame) == {"x": [1, 2]}
    assert _rows(s, pd.DataFrame({"x": [0.5, 0.7]})) == {}
    clipped = Schema([Column("x", "numeric", lower=0, upper=1, bins=2, out_of_range="clip")])
    assert clipped.encode(pd.DataFrame({"x": [-5.0, 0.5, 7.0, math.inf]}))[:, 0].tolist() == [0, 1, 1, 1]


def test_empty_table_duplicate_columns_and_mismatch():
    s = Schema([Column("a", "boolean"), Column("b", "boolean")])
    with pytest.raises(EncodingError, match="empty"):
        s.encode(pd.DataFrame({"a": pd.Series([], dtype=bool), "b": pd.Series([], dtype=bool)}))
    dup = pd.DataFrame([[True, False, True]], columns=["a", "b", "a"])
    with pytest.raises(EncodingError, match="duplicate columns"):
        s.encode(dup)
    with pytest.raises(EncodingError, match=r"missing \['b'\]"):
        s.encode(pd.DataFrame({"a": [True]}))
    with pytest.raises(EncodingError, match=r"not in the schema \['c'\]"):
        s.encode(pd.DataFrame({"a": [True], "b": [True], "c": [1]}))
    with pytest.raises(EncodingError, match="DataFrame"):
        s.encode([[True, False]])


def test_incomplete_columns_validate_but_do_not_encode():
    s = Schema([Column("c", "categorical"), Column("x", "numeric", nullable=True)])
    assert s.incomplete() == ("c", "x")
    s.validate(pd.DataFrame({"c": ["p", "q"], "x": [1.0, None]}))
    with pytest.raises(EncodingError) as info:
        s.validate(pd.DataFrame({"c": ["p", "q"], "x": [1.0, SECRET]}))
    assert info.value.column == "x" and SECRET not in str(info.value) and "row" not in str(info.value)
    with pytest.raises(SchemaError, match="incomplete"):
        s.encode(pd.DataFrame({"c": ["p"], "x": [1.0]}))
    with pytest.raises(SchemaError, match="incomplete"):
        s.domain()


def test_decode_refuses_bad_codes():
    s = schema()
    with pytest.raises(SchemaError, match="shape"):
        s.decode(np.zeros((3, 2), dtype=int), np.random.default_rng(0))
    bad = np.zeros((1, 6), dtype=int)
    bad[0, 0] = 4
    with pytest.raises(SchemaError, match="colour"):
        s.decode(bad, np.random.default_rng(0))
