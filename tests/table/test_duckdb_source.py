"""The DuckDB measurement backend: the same exact counts as numpy, the same errors, nothing
charged for what fails first, hostile names and paths harmless."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pandas as pd
import pytest

from accountant.fingerprint import generate_dataset_key
from accountant.testing import make_test_gate
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, EncodingError, Schema
from dpsynth.table import DuckDBSource, NeedsTableInMemory, PrivateTable, SourceChanged

pytest.importorskip("duckdb")

_OPEN = type("Charged", (), {"entry_hash": "test"})()  # opens the rows for a direct check of exact answers


def random_case(seed: int, n: int = 400) -> tuple[pd.DataFrame, Schema]:
    """A random schema (nullable columns, "other" codes, clipped and binned numerics, datetimes)
    and a frame for it in which some declared cells stay empty."""
    rng = np.random.default_rng(seed)
    cats = [f"c{i}" for i in range(int(rng.integers(2, 6)))]
    k = int(rng.integers(3, 8))
    bins = int(rng.integers(2, 9))
    t0 = pd.Timestamp("2021-01-01")
    cols = [
        Column("cat", "categorical", categories=cats + ["never"], nullable=True, out_of_range="other"),
        Column("ord", "ordinal", categories=list(range(k)) if seed % 2 == 0 else list(range(k))[::-1]),
        Column("flag", "boolean", nullable=bool(seed % 2)),
        Column("x", "numeric", lower=-1.0, upper=3.0, bins=bins, out_of_range="clip", nullable=True),
        Column("age", "integer", bins=[0, 18, 30.5, 65, 120]),
        Column("when", "datetime", lower=t0, upper=t0 + pd.Timedelta(days=30), bins=int(rng.integers(2, 7)),
               nullable=True),
    ]
    cat = rng.choice(cats + ["zzz", "other value"], n).astype(object)  # unknown values go to "other"
    cat[rng.random(n) < 0.1] = None
    flag = rng.random(n) < 0.3
    x = rng.normal(1.0, 1.5, n)  # beyond the bounds: clipped
    x[rng.random(n) < 0.05] = np.nan
    x[:3] = [-1.0, 3.0, 1.0]  # on the edges exactly
    when = pd.Series(t0 + pd.to_timedelta(rng.uniform(0, 30 * 86400, n).astype("int64"), unit="s"))
    when[rng.random(n) < 0.1] = pd.NaT
    frame = pd.DataFrame({"cat": cat, "ord": rng.integers(0, k - 1, n),  # the last ordinal code stays empty
                          "flag": flag, "x": x, "age": rng.choice([0, 17, 18, 30, 31, 64, 65, 119, 120], n),
                          "when": when})
    if seed % 2:
        frame["flag"] = frame["flag"].astype(object)
        frame.loc[rng.random(n) < 0.1, "flag"] = None
    return frame, Schema(cols)


def engine_table(tmp_path, frame, schema, name="t.parquet", seed=1, **kwargs):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    source = DuckDBSource(path, memory_limit="256MB", threads=1)
    key = generate_dataset_key()
    tl = make_test_gate(tmp_path / f"ledger-{name}", epsilon=50.0, dataset_fingerprint=source.fingerprint(key),
                        **kwargs)
    return PrivateTable(source, schema, tl.gate, dataset_key=key, random_source=SeededRandomSource(seed))


def memory_table(tmp_path, frame, schema, seed=1, name="memory"):
    tl = make_test_gate(tmp_path / name, epsilon=50.0, frame=frame)
    return PrivateTable(frame, schema, tl.gate, dataset_key=tl.dataset_key, random_source=SeededRandomSource(seed))


def assert_same_releases(g1, g2) -> None:
    """Two fitted marginal models released the same things, in the same order."""
    assert len(g1.releases) == len(g2.releases) > 0
    for (_, k1, o1), (_, k2, o2) in zip(g1.releases, g2.releases):
        assert k1 == k2
        if k1 == "marginals":
            for a, b in zip(o1, o2):
                np.testing.assert_array_equal(a.values, b.values)
        else:
            assert o1 == o2


def exact(table, cliques):
    idx = [table._indices(c) for c in cliques]
    shapes = [table._shape(c) for c in cliques]
    with table._open_rows(_OPEN) as rows:
        return table._exact_marginals(rows, idx, shapes, {})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_equal_numpy_cell_for_cell(tmp_path, seed):
    frame, schema = random_case(seed)
    codes = schema.encode(frame)  # the in-memory encoder; counted by numpy below
    names = list(schema.names)
    cliques = [(a,) for a in names] + list(itertools.combinations(names, 2)) + [("when", "cat", "x"),
                                                                               ("flag", "age", "ord")]
    table = engine_table(tmp_path, frame, schema)
    got, n = exact(table, cliques)
    assert n == len(frame)
    empty = 0
    for cl, g in zip(cliques, got):
        j = [names.index(c) for c in cl]
        sizes = [schema.column(c).size for c in cl]
        want, _ = np.histogramdd(codes[:, j], bins=[np.arange(s + 1) - 0.5 for s in sizes])
        assert g.dtype == np.int64 and g.shape == tuple(sizes)
        np.testing.assert_array_equal(g, want.astype(np.int64), err_msg=str(cl))
        empty += int((g == 0).sum())
    assert empty > 0  # empty cells are part of the answer, zeros filled
    # Asked again (from the driver's cache), in another axis order: the transposed table.
    (again,), _ = exact(table, [("x", "cat")])
    np.testing.assert_array_equal(again, got[cliques.index(("cat", "x"))].T)


def test_csv_source_and_recoded_measurements_release_what_memory_releases(tmp_path):
    frame, schema = random_case(3, n=300)
    frame = frame.drop(columns=["when"])
    schema = Schema([c for c in schema.columns if c.name != "when"])
    eng = engine_table(tmp_path, frame, schema, name="t.csv", seed=7)
    mem = memory_table(tmp_path, frame, schema, seed=7)
    recode = {"ord": np.array([0, 0] + [1] * (schema.column("ord").size - 2))}
    for t in (eng, mem):
        t.out = t.measure_marginals([("cat", "ord"), ("x",)], [2.0, 3.0], purpose="p", generator="mst",
                                    run_id="r", recode=recode)
        estimates = [np.zeros((t.domain["flag"], 2)), np.zeros((t.domain["age"], t.domain["x"]))]
        t.pick = t.select_marginal([("flag", "ord"), ("age", "x")], estimates, 0.5, purpose="p", generator="mst",
                                   run_id="r", recode=recode)
        t.n = t.noisy_count(1.0, purpose="p", generator="mst", run_id="r")
    # Same seeded noise, same exact answers: the same releases.
    for a, b in zip(eng.out, mem.out):
        np.testing.assert_array_equal(a.values, b.values)
    assert eng.pick == mem.pick and eng.n == mem.n


@pytest.mark.parametrize("name", ["mst", "aim", "independent"])
def test_marginal_generators_fit_the_same_model_on_the_engine(tmp_path, name):
    from dpsynth.generators.marginal.aim import AIM
    from dpsynth.generators.marginal.independent import Independent
    from dpsynth.generators.marginal.mst import MST

    frame, schema = random_case(4, n=500)
    make = {"mst": lambda: MST(epsilon=2.0, iters=50, device="cpu"),
            "aim": lambda: AIM(epsilon=2.0, degree=2, rounds=8, iters=20, final_iters=50, device="cpu"),
            "independent": lambda: Independent(epsilon=2.0, iters=50, device="cpu")}[name]
    eng = engine_table(tmp_path, frame, schema, seed=3)
    mem = memory_table(tmp_path, frame, schema, seed=3)
    g_eng, g_mem = make().fit(eng), make().fit(mem)
    assert_same_releases(g_eng, g_mem)
    assert len(g_eng.sample(50, seed=0)) == 50


@pytest.mark.parametrize("edit,problem", [
    (lambda f: f.assign(ord=f["ord"].where(f.index != 7, 99)), "ord"),                  # not a category
    (lambda f: f.assign(age=f["age"].astype(float).where(f.index != 3, 17.5)), "age"),   # not whole
    (lambda f: f.assign(age=f["age"].where(f.index != 5, 500)), "age"),                  # out of bounds
    (lambda f: f.assign(ord=f["ord"].astype(float).where(f.index != 2, np.nan)), "ord"),  # missing
    (lambda f: f.assign(x=f["x"].astype(str)), "x"),                                     # text numbers: fine
    (lambda f: f.assign(x=np.where(f.index == 9, "abc", f["x"].astype(str))), "x"),     # not a number
])
def test_a_bad_value_gives_the_in_memory_error_and_charges_nothing(tmp_path, edit, problem):
    frame, schema = random_case(5, n=60)
    frame = edit(frame)
    try:
        memory_table(tmp_path, frame, schema)
        expected = None
    except EncodingError as exc:
        expected = str(exc)
    if expected is None:
        engine_table(tmp_path, frame, schema)
        return
    with pytest.raises(EncodingError) as got:
        engine_table(tmp_path, frame, schema)
    assert str(got.value) == expected and got.value.column == problem
    assert "row" not in str(got.value) and "99" not in str(got.value) and "abc" not in str(got.value)


def test_row_by_row_measurements_and_changed_files_are_refused_before_any_charge(tmp_path):
    frame, schema = random_case(6, n=80)
    table = engine_table(tmp_path, frame, schema)
    with pytest.raises(NeedsTableInMemory):
        table.quantiles("x", [0.5], 1.0, purpose="p")
    with pytest.raises(NeedsTableInMemory):
        table.noisy_category_counts(["cat"], 1.0, purpose="p")
    with pytest.raises(NeedsTableInMemory):
        PrivateTable.split(table._PrivateTable__rows._source, schema, table.gate, holdout=0.2)
    assert table.receipts == () and table.gate.spent_costs() == []
    spent = table.gate.spent_costs()
    # An edited file after binding: refused before the charge.
    path = tmp_path / "t.parquet"
    frame.iloc[:-1].to_parquet(path, index=False)
    with pytest.raises(SourceChanged):
        table.measure_marginals([("cat",)], 1.0, purpose="p", generator="mst", run_id="r")
    assert table.receipts == () and table.gate.spent_costs() == spent


def test_the_fingerprint_binds_the_files_bytes(tmp_path):
    from accountant.gate import DatasetMismatch

    frame, schema = random_case(7, n=50)
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.iloc[:20].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[20:].to_parquet(folder / "part-1.parquet", index=False)
    source = DuckDBSource(str(folder / "*.parquet"))
    key = generate_dataset_key()
    fp = source.fingerprint(key)
    assert fp.startswith("hmac-sha256:") and fp != source.fingerprint(generate_dataset_key())
    tl = make_test_gate(tmp_path / "l", epsilon=5.0, dataset_fingerprint=fp)
    table = PrivateTable(source, schema, tl.gate, dataset_key=key, random_source=SeededRandomSource(0))
    (one,), n = exact(table, [("ord",)])
    assert n == 50 and one.sum() == 50
    moved = tmp_path / "moved"
    os.rename(folder, moved)  # moving the folder keeps the fingerprint
    assert DuckDBSource(str(moved / "*.parquet")).fingerprint(key) == fp
    frame.iloc[20:].assign(ord=0).to_parquet(moved / "part-1.parquet", index=False)  # an edited file
    with pytest.raises(DatasetMismatch):
        PrivateTable(DuckDBSource(str(moved / "*.parquet")), schema, tl.gate, dataset_key=key)
    (moved / "part-1.parquet").unlink()  # a file fewer
    with pytest.raises(DatasetMismatch):
        PrivateTable(DuckDBSource(str(moved / "*.parquet")), schema, tl.gate, dataset_key=key)


def test_hostile_column_names_and_paths_are_harmless(tmp_path):
    hostile = 'a"); DROP TABLE x; SELECT ("'
    frame = pd.DataFrame({hostile: ["u", "v", "u"], "b": [1, 2, 3]})
    schema = Schema([Column(hostile, "categorical", categories=["u", "v"]),
                     Column("b", "integer", lower=0, upper=4, bins=2)])
    table = engine_table(tmp_path, frame, schema)
    (counts,), _ = exact(table, [(hostile,)])
    np.testing.assert_array_equal(counts, [2, 1])  # a quoted identifier: just a column name
    bad = Schema([Column("a\x00b", "categorical", categories=["u"]), Column("b", "integer", lower=0, upper=4,
                                                                            bins=2)])
    with pytest.raises(EncodingError, match="control character"):
        engine_table(tmp_path, frame.rename(columns={hostile: "a\x00b"}), bad, name="n.parquet")
    with pytest.raises(ValueError, match="URL"):
        DuckDBSource("https://example.com/t.parquet")
    with pytest.raises(FileNotFoundError):
        DuckDBSource(str(tmp_path / "x'); SELECT * FROM read_csv('/etc/passwd'); --.parquet"))
    # A file whose name is SQL is read as a file (the path is a bound parameter, never SQL text).
    odd = tmp_path / "t'); SELECT 1; --.parquet"
    frame.to_parquet(odd, index=False)
    assert len(DuckDBSource(odd).files) == 1
    # The table's engine reads its own files only.
    con = table._PrivateTable__rows._con
    with pytest.raises(Exception, match="(?i)permission|disabled"):
        con.execute("SELECT * FROM read_csv('/etc/hostname')").fetchall()
    with pytest.raises(Exception):
        con.execute("SET enable_external_access=true")


@pytest.mark.parametrize("name", ["dpctgan", "pategan"])
def test_the_gans_say_they_need_the_table_in_memory_and_charge_nothing(tmp_path, name):
    from dpsynth.generators import GENERATORS

    frame, schema = random_case(8, n=60)
    table = engine_table(tmp_path, frame, schema)
    with pytest.raises(NeedsTableInMemory, match="needs the table in memory"):
        GENERATORS[name](epsilon=1.0).fit(table)
    assert table.receipts == () and table.gate.spent_costs() == []


def test_sample_to_parquet_writes_the_rows_in_chunks(tmp_path):
    from dpsynth.generators.marginal.independent import Independent

    frame, schema = random_case(9, n=200)
    model = Independent(epsilon=1.0, iters=20, device="cpu").fit(engine_table(tmp_path, frame, schema))
    one = model.sample_to_parquet(tmp_path / "one.parquet", 120, seed=5)
    written, drawn = pd.read_parquet(one), model.sample(120, seed=5)  # one chunk: what sample draws
    np.testing.assert_array_equal(schema.encode(written), schema.encode(drawn))
    np.testing.assert_array_equal(written["x"].to_numpy(float), drawn["x"].to_numpy(float))
    chunked = pd.read_parquet(model.sample_to_parquet(tmp_path / "out" / "chunked.parquet", 1001, seed=5,
                                                      chunk_rows=100))
    assert len(chunked) == 1001 and list(chunked.columns) == list(schema.names)
    assert schema.encode(chunked).shape == (1001, len(schema.names))  # every row decodes into the schema
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_record_and_replay_passes_on_the_engine(tmp_path):
    from dpsynth.generators.marginal.mst import MST
    from dpsynth.testing.replay import record_and_replay

    frame, schema = random_case(10, n=150)
    report = record_and_replay(lambda: MST(epsilon=1.0, iters=50, device="cpu"), frame, schema, n_samples=100,
                               directory=tmp_path, backend="duckdb")
    assert report.ok, report
    assert report.max_ratio["add_or_remove_one/remove"] == pytest.approx(1.0)
