"""Issue 17: public facts a schema can name instead of typing them — country code lists
(checked against pycountry, an independent copy of ISO 3166-1) and calendar bins for dates
(checked against the calendar, not against our own edges)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pycountry
import pytest

from dpsynth.schema import Column, Schema, SchemaError
from dpsynth.schema.codelists import codelist


def test_country_lists_are_iso_3166_1_as_pycountry_has_it():
    alpha2 = codelist("codelist:countries")
    alpha3 = codelist("codelist:countries-alpha3")
    assert set(alpha2) == {c.alpha_2 for c in pycountry.countries}
    assert set(alpha3) == {c.alpha_3 for c in pycountry.countries}
    assert len(alpha2) == len(set(alpha2)) == len(alpha3) == 249
    assert list(alpha2) == sorted(alpha2)  # code order: a saved schema is stable
    col = Column("country", "categorical", categories="codelist:countries")
    assert {"DE", "FR", "US", "NZ"} <= set(col.categories)


@pytest.mark.parametrize("unit,lower,upper,expected", [
    # Month starts strictly inside the bounds, plus the bounds themselves.
    ("months", "2013-01-15", "2013-04-01", ["2013-01-15", "2013-02-01", "2013-03-01", "2013-04-01"]),
    # ISO weeks start on Monday: 7, 14, 21 and 28 December 2026 are Mondays.
    ("weeks", "2026-12-01", "2026-12-31", ["2026-12-01", "2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28",
                                           "2026-12-31"]),
    ("years", "2019-06-01", "2022-01-01", ["2019-06-01", "2020-01-01", "2021-01-01", "2022-01-01"]),
    ("days", "2024-02-27", "2024-03-02", ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]),
])
def test_calendar_bins_follow_the_calendar(unit, lower, upper, expected):
    col = Column("when", "datetime", lower=lower, upper=upper, bins=unit)
    assert [str(b.date()) for b in col.bins] == expected
    assert col.n_values == len(expected) - 1


def test_dates_encode_into_their_month_and_a_saved_schema_lists_the_edges():
    schema = Schema([Column("when", "datetime", lower="2020-01-01", upper="2021-01-01", bins="months",
                            format="date")])
    days = pd.date_range("2020-01-01", "2020-12-31", freq="D")
    codes = schema.encode(pd.DataFrame({"when": days}))[:, 0]
    assert np.array_equal(codes, days.month.to_numpy() - 1)  # January is code 0, December 11
    again = Schema.from_dict(schema.to_dict())
    assert again == schema and len(again.column("when").bins) == 13


@pytest.mark.parametrize("kwargs,match", [
    (dict(kind="integer", lower=0, upper=10, bins="months"), "calendar bins\\) is for datetime columns"),
    (dict(kind="datetime", lower="2020-01-01", bins="months"), "needs lower and upper"),
    (dict(kind="datetime", lower="1700-01-01", upper="2200-01-01", bins="days"), "choose a longer unit"),
    (dict(kind="datetime", lower="2020-01-01", upper="2021-01-01", bins="fortnights"), "or one of \\['days'"),
])
def test_calendar_bins_refuse_what_they_cannot_be(kwargs, match):
    with pytest.raises(SchemaError, match=match):
        Column("when", **kwargs)


def test_count_bins_keep_a_mostly_zero_column_mostly_zero():
    """Issue 17: an integer column that is 96 % zeros over 0–1000 came back 50 % zeros with
    equal-width bins (uniform inside the bin holding 0); bins = "counts" gives 0, 1, 2 and 3 a
    code each, then widths 4, 8, 16, …, so decoding puts the zeros back on 0."""
    col = Column("jail_days", "integer", lower=0, upper=1000, bins="counts")
    assert col.edges[:6] == (-0.5, 0.5, 1.5, 2.5, 3.5, 7.5)
    widths = np.diff(col.edges)
    assert list(widths[:4]) == [1, 1, 1, 1] and all(b >= a for a, b in zip(widths[4:], widths[5:-1]))
    assert col.edges[-1] == 1000.5 and col.n_values <= 12
    schema = Schema([col])
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"jail_days": np.where(rng.random(5000) < 0.96, 0, rng.integers(1, 1001, 5000))})
    back = schema.decode(schema.encode(real), np.random.default_rng(1))
    # Exact on the singletons: every real zero decodes to 0 and nothing else does.
    assert ((back["jail_days"] == 0) == (real["jail_days"] == 0)).all()
    assert back["jail_days"].between(0, 1000).all()
    assert Schema.from_dict(schema.to_dict()) == schema
    with pytest.raises(SchemaError, match='"counts" is for integer columns'):
        Column("x", "numeric", lower=0, upper=10, bins="counts")
    with pytest.raises(SchemaError, match='"counts" needs lower and upper'):
        Column("x", "integer", lower=0, bins="counts")


def test_a_wide_integer_column_without_bins_has_its_bounds_for_the_gans():
    """A GAN scales an integer column by its public bounds and never bins it: a column with
    bounds over more than 64 values and no bins is incomplete for the marginal generators, but
    its bounds are known (a regression broke the GAN benchmarks' Adult schema this way)."""
    from dpsynth.nn.layout import TableTransformer

    col = Column("fnlwgt", "integer", lower=0, upper=1_500_000)
    assert not col.is_complete and col.bounds == (0.0, 1_500_000.0)
    when = Column("when", "datetime", lower="2020-01-01", upper="2021-01-01")
    assert when.bounds == (pd.Timestamp("2020-01-01").value / 1e9, pd.Timestamp("2021-01-01").value / 1e9)
    TableTransformer.from_schema(Schema([col, Column("c", "categorical", categories=["a", "b"])]))
