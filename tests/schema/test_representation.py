"""Issue 17's wrong answers: synthetic rows come back the way the table writes them (0/1
stays 0/1, dtypes, decimals, plain dates), count columns keep their shape, `where=` on a
binned column never silently widens, and evaluation compares like with like."""

from __future__ import annotations

import tomllib

import numpy as np
import pandas as pd
import pytest

from accountant.testing import make_test_gate
from dpsynth.schema import Column, EncodingError, Schema, SchemaError
from tests.generators.marginal_support import seeded_table

N = 2000


def small_frame(seed: int = 0, flag_as=(0, 1)) -> pd.DataFrame:
    """0/1 flag (30 % ones), a count 90 % zeros, a wide count 90 % zeros, a one-decimal
    number, plain dates as ISO text."""
    rng = np.random.default_rng(seed)
    flag = rng.random(N) < 0.3
    count = np.where(rng.random(N) < 0.9, 0, rng.integers(1, 6, N))
    wide = np.where(rng.random(N) < 0.9, 0, rng.integers(30, 400, N))
    days = rng.integers(0, 365, N)
    return pd.DataFrame({
        "flag": np.where(flag, flag_as[1], flag_as[0]),
        "count": count,
        "wide": wide,
        "score": np.round(rng.uniform(0, 10, N), 1),
        "day": (pd.Timestamp("2013-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
    })


def small_schema(wide_bins=(0, 1, 100, 200, 300, 400)) -> Schema:
    return Schema([
        Column("flag", "boolean"),
        Column("count", "integer", lower=0, upper=10),  # no bins: one code per value (<= 64 values)
        Column("wide", "integer", bins=list(wide_bins)),
        Column("score", "numeric", lower=0, upper=10, bins=5, decimals=1),
        Column("day", "datetime", lower="2013-01-01", upper="2014-01-01", bins=4),
    ])


def fit_sample(frame, schema, generator="mst", epsilon=8.0, tmp_path=None, n=N):
    from dpsynth.generators.marginal import MST, Independent

    led = make_test_gate(tmp_path, epsilon=2 * epsilon, frame=schema.validate(frame))
    table = seeded_table(frame, schema, led)
    cls = {"mst": MST, "independent": Independent}[generator]
    model = cls(epsilon=epsilon, device="cpu").fit(table)
    return model, model.sample(n, seed=1)


# -- the table's representation, resolved when the table is made --------------------------------
def test_small_range_integer_gets_one_code_per_value_and_wide_one_needs_bins():
    c = Column("count", "integer", lower=0, upper=10)
    assert c.one_code_per_value and c.n_values == 11 and c.is_complete
    assert Column.from_dict(c.to_dict()) == c
    wide = Column("jail", "integer", lower=0, upper=1000)
    assert not wide.is_complete  # 1,001 values: bins must be declared (or learned)
    with pytest.raises(SchemaError, match="values"):
        Column("x", "numeric", lower=0, upper=3, bins="values")
    with pytest.raises(SchemaError, match="decimals"):
        Column("x", "integer", lower=0, upper=3, decimals=1)
    with pytest.raises(SchemaError, match="format"):
        Column("x", "datetime", lower="2013-01-01", upper="2014-01-01", bins=2, format="day")


def test_boolean_and_date_representation_is_taken_from_the_table_one_way_per_column():
    schema = small_schema()
    resolved = schema.resolve(small_frame())
    assert resolved.column("flag").values == (0, 1)
    assert resolved.column("day").format == "date"
    assert small_schema().resolve(small_frame(flag_as=(False, True))).column("flag").values == (False, True)
    mixed = small_frame().astype({"flag": object})
    mixed.loc[0, "flag"] = True if mixed.loc[0, "flag"] == 1 else False
    with pytest.raises(EncodingError, match="'flag'.*declare"):
        schema.resolve(mixed)
    stamps = small_frame()
    stamps.loc[3, "day"] = "2013-05-01 12:30"
    with pytest.raises(EncodingError, match="'day'.*plain dates"):
        schema.resolve(stamps)
    # One present value cannot say it: its neighbour (that value written the other way)
    # would be accepted with the other representation.
    one = Schema([Column("flag", "boolean", nullable=True)])
    with pytest.raises(EncodingError, match="fewer than two"):
        one.resolve(pd.DataFrame({"flag": [1, None, None]}))
    declared = Schema([Column("flag", "boolean", nullable=True, values=[0, 1])])
    assert declared.resolve(pd.DataFrame({"flag": [1, None, None]})).column("flag").values == (0, 1)


def test_declared_values_are_how_the_column_is_read_and_written():
    col = Column("ans", "boolean", values=["no", "yes"])
    s = Schema([col])
    assert s.encode(pd.DataFrame({"ans": ["yes", "no", "yes"]}))[:, 0].tolist() == [1, 0, 1]
    with pytest.raises(EncodingError):
        s.encode(pd.DataFrame({"ans": [True, False, True]}))
    out = s.decode(np.array([[0], [1], [1]]), np.random.default_rng(0))
    assert out["ans"].tolist() == ["no", "yes", "yes"]


def test_mst_output_is_written_the_way_the_table_writes_it(tmp_path):
    frame = small_frame()
    _, synth = fit_sample(frame, small_schema(), tmp_path=tmp_path)
    assert set(synth["flag"].unique()) <= {0, 1} and synth["flag"].dtype == np.int64
    assert not synth["flag"].map(lambda v: isinstance(v, (bool, np.bool_))).any()
    assert synth["count"].dtype == np.int64
    assert (synth["score"] * 10 - np.round(synth["score"] * 10)).abs().max() < 1e-9  # one decimal
    assert (synth["day"] == synth["day"].dt.normalize()).all()  # plain dates: whole days
    assert synth.to_csv(index=False).splitlines()[1].split(",")[-1].count(":") == 0  # written YYYY-MM-DD
    # The same table written True/False comes back True/False.
    _, synth2 = fit_sample(small_frame(flag_as=(False, True)), small_schema(), tmp_path=tmp_path / "b")
    assert synth2["flag"].dtype == bool


def test_count_columns_keep_their_zeros(tmp_path):
    frame = small_frame()
    _, synth = fit_sample(frame, small_schema(), tmp_path=tmp_path)
    real_zero = (frame["count"] == 0).mean()
    assert real_zero > 0.85
    # One code per value: the share of zeros is measured, not spread over a bin (ε = 8: noise
    # on 2,000 rows moves it by well under 0.05).
    assert abs((synth["count"] == 0).mean() - real_zero) < 0.05
    # A wide count with an edge at 1 (bins [0, 1, 100, ...]: the docs' advice) keeps its zeros too.
    assert abs((synth["wide"] == 0).mean() - (frame["wide"] == 0).mean()) < 0.05


def test_where_on_a_binned_column_refuses_the_value_and_names_the_bin(tmp_path):
    frame = small_frame()
    model, _ = fit_sample(frame, small_schema(), generator="independent", tmp_path=tmp_path)
    with pytest.raises(ValueError, match=r"'score' is binned.*lies in the bin \[4, 6\)"):
        model.sample(10, where={"score": 5.0}, seed=0)
    rows = model.sample(200, where={"score": pd.Interval(4.0, 6.0, closed="left")}, seed=0)
    assert rows["score"].between(4.0, 6.0).all()
    with pytest.raises(ValueError, match="not a bin"):
        model.sample(10, where={"score": pd.Interval(4.0, 5.0)}, seed=0)
    with pytest.raises(ValueError, match=r"'day' is binned.*2013-04-02"):
        model.sample(10, where={"day": "2013-05-01"}, seed=0)
    # One code per value: exact.
    rows = model.sample(100, where={"count": 3}, seed=0)
    assert (rows["count"] == 3).all()


def test_evaluation_compares_like_with_like_and_flags_what_it_cannot_compare():
    from dpsynth.jobs.quality import evaluate_synthetic, headline, headline_notes

    real = small_frame()
    schema = small_schema().resolve(real)
    as_bool = real.assign(flag=real["flag"].astype(bool))  # the same values, written True/False
    report = evaluate_synthetic(real, as_bool, schema, ks=(1,), target="flag", holdout=real,
                                utility_models=["logistic_regression"])
    assert report.column_distances.loc["flag", "tvd"] == pytest.approx(0.0)
    assert report.mean_tvd[1] == pytest.approx(0.0)
    assert not report.flags
    util = headline(report)
    assert util["synthetic_logistic_regression_accuracy"] > 0.6  # not the 0.0 of comparing 1 with True
    # Values that do not fit the schema: flagged, and no number printed for them.
    odd = real.assign(flag=np.where(real["flag"] == 1, "yes", "no"))
    report = evaluate_synthetic(real, odd, schema, ks=(1,), target="flag", holdout=real,
                                utility_models=["logistic_regression"])
    assert "column flag" in report.flags and "mean 1-way TVD" in report.flags
    assert np.isnan(headline(report)["tvd_1way"]) and "tvd_1way" in headline_notes(report)
    assert "not computed" in report.to_html()
    assert "flag" not in set(report.to_frame().query("section == 'column'")["key"])


def test_compas_like_walkthrough_answers_are_right(tmp_path):
    """The issue's table: 0/1 columns declared boolean, counts, one-decimal numbers, dates."""
    from tests.compas_like import compas_like, compas_schema_toml

    frame = compas_like()
    schema = Schema.from_dict(tomllib.loads(compas_schema_toml()))
    model, synth = fit_sample(frame, schema, epsilon=1.0, tmp_path=tmp_path, n=len(frame))
    assert set(synth["two_year_recid"].unique()) <= {0, 1}
    for col in ("juv_fel_count", "juv_misd_count"):  # 0-20, no bins: one code per value
        assert abs((synth[col] == 0).mean() - (frame[col] == 0).mean()) < 0.05
    assert (synth["screening_date"] == synth["screening_date"].dt.normalize()).all()
    from dpsynth.jobs.quality import evaluate_synthetic

    report = evaluate_synthetic(frame, synth, model.schema, ks=(1,), target="two_year_recid", holdout=frame,
                                utility_models=["logistic_regression"])
    assert not report.flags
    assert report.column_distances.loc["two_year_recid", "tvd"] < 0.1


def test_dpctgan_output_is_written_the_way_the_table_writes_it_and_a_saved_model_keeps_it(tmp_path):
    from dpsynth.generators.dpctgan import DPCTGAN
    from tests.generators.dpctgan_support import TINY, ledger, private_table

    frame = small_frame().head(150)
    schema = small_schema()
    tl = ledger(tmp_path, frame, schema, epsilon=5.0, max_records=200)
    model = DPCTGAN(epsilon=2.0, **TINY).fit(private_table(tl, frame, schema))
    model.save(tmp_path / "m.pt")
    for synth in (model.sample(50, seed=0),
                  DPCTGAN.load(tmp_path / "m.pt", trust=tl.ledger_pub, device="cpu").sample(50, seed=0)):
        assert set(synth["flag"].unique()) <= {0, 1} and synth["flag"].dtype == np.int64
        assert (synth["day"] == synth["day"].dt.normalize()).all()
        assert (synth["score"] * 10 - np.round(synth["score"] * 10)).abs().max() < 1e-9


def test_the_run_report_shows_quality_first_with_pictures_and_the_budget_bar(tmp_path):
    """Issue 17: a run report with pictures (per-column distributions, association heatmaps
    side by side, the budget bar); quality first, receipts after."""
    from types import SimpleNamespace

    from accountant.filter import RenyiFilter
    from accountant.words import budget_words
    from dpsynth.jobs.quality import evaluate_synthetic
    from dpsynth.jobs.report import render_run_report

    real = small_frame()
    schema = small_schema().resolve(real)
    synth = real.sample(frac=1.0, random_state=0).reset_index(drop=True)
    report = evaluate_synthetic(real, synth, schema, ks=(1,))
    labels, r, s = report.distributions["count"]
    assert labels[:3] == ["0", "1", "2"] and r[0] == pytest.approx((real["count"] == 0).mean())
    assert s == pytest.approx(r)  # the same rows: the same shares
    f = RenyiFilter(3.0, 1e-6)
    spec = SimpleNamespace(generator="mst", epsilon=1.0, source=None, ledger="ledger.db", seed=None,
                           synthetic="s.csv", model="m.pt", report="r.html")
    result = SimpleNamespace(spec=spec, epsilon_run=1.0, epsilon_ledger=1.5, epsilon_budget=3.0, delta=1e-6,
                             receipts=[], seconds={"fit": 1.0}, evaluation=report,
                             budget=budget_words(f, [f.budget * 0.25]))
    page = render_run_report(result)
    assert page.index("25.0 % of the budget used") < page.index("<h2>Quality</h2>") < page.index("<h2>Privacy spend")
    assert page.count("<svg") >= len(schema.columns) + 2 + 1  # columns, two heatmaps, the budget bar
    assert "<script" not in page
