"""The Spark measurement backend (local mode, one session for the module): the same exact
counts as numpy, the same releases as a table in memory, the in-memory path's errors, and
nothing charged for what fails first.  Issue 16: Spark tests run in the default suite."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from accountant.fingerprint import generate_dataset_key
from accountant.testing import make_test_gate
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import EncodingError, Schema
from dpsynth.table import NeedsTableInMemory, PrivateTable, SourceChanged, SparkSource

from .test_duckdb_source import assert_same_releases, exact, memory_table, random_case

pytestmark = pytest.mark.xdist_group("spark")  # one worker, one JVM for the module


@pytest.fixture(scope="module")
def spark():
    session = SparkSource.__new__(SparkSource)
    session.session, session.master = None, "local[2]"
    s = session.spark()
    yield s
    s.stop()


def spark_table(tmp_path, spark, frame, schema, seed=1, parts=1, encode_in_sql=True):
    folder = tmp_path / "parts"
    folder.mkdir(exist_ok=True)
    bounds = np.linspace(0, len(frame), parts + 1).astype(int)
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        frame.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False)
    source = SparkSource(str(folder / "*.parquet"), session=spark, encode_in_sql=encode_in_sql)
    key = generate_dataset_key()
    tl = make_test_gate(tmp_path / "ledger-spark", epsilon=50.0, dataset_fingerprint=source.fingerprint(key))
    return PrivateTable(source, schema, tl.gate, dataset_key=key, random_source=SeededRandomSource(seed))


@pytest.mark.parametrize("seed,in_sql", [(0, True), (1, True), (0, False)])
def test_counts_equal_numpy_cell_for_cell_over_many_files(tmp_path, spark, seed, in_sql):
    frame, schema = random_case(seed)
    codes = schema.encode(frame)  # the in-memory encoder; counted by numpy below
    names = list(schema.names)
    cliques = [(a,) for a in names] + list(itertools.combinations(names, 2)) + [("when", "cat", "x")]
    table = spark_table(tmp_path, spark, frame, schema, parts=3, encode_in_sql=in_sql)
    got, n = exact(table, cliques)
    assert n == len(frame)
    for cl, g in zip(cliques, got):
        j = [names.index(c) for c in cl]
        sizes = [schema.column(c).size for c in cl]
        want, _ = np.histogramdd(codes[:, j], bins=[np.arange(s + 1) - 0.5 for s in sizes])
        assert g.dtype == np.int64 and g.shape == tuple(sizes)
        np.testing.assert_array_equal(g, want.astype(np.int64), err_msg=str(cl))


def test_mst_fits_the_same_model_as_in_memory(tmp_path, spark):
    from dpsynth.generators.marginal.mst import MST

    frame, schema = random_case(4, n=300)
    eng = spark_table(tmp_path, spark, frame, schema, seed=3)
    mem = memory_table(tmp_path, frame, schema, seed=3)
    g_eng, g_mem = MST(epsilon=2.0, iters=30, device="cpu").fit(eng), MST(epsilon=2.0, iters=30, device="cpu").fit(mem)
    assert_same_releases(g_eng, g_mem)


@pytest.mark.parametrize("edit,problem", [
    (lambda f: f.assign(ord=f["ord"].where(f.index != 7, 99)), "ord"),                  # not a category
    (lambda f: f.assign(age=f["age"].astype(float).where(f.index != 3, 17.5)), "age"),   # not whole
    (lambda f: f.assign(age=f["age"].where(f.index != 5, 500)), "age"),                  # out of bounds
    (lambda f: f.assign(ord=f["ord"].astype(float).where(f.index != 2, np.nan)), "ord"),  # missing
    (lambda f: f.assign(x=np.where(f.index == 9, "abc", f["x"].astype(str))), "x"),     # text: Python workers
])
def test_a_bad_value_gives_the_in_memory_error_and_charges_nothing(tmp_path, spark, edit, problem):
    frame, schema = random_case(5, n=60)
    frame = edit(frame)
    with pytest.raises(EncodingError) as mem:
        memory_table(tmp_path, frame, schema)
    with pytest.raises(EncodingError) as got:
        spark_table(tmp_path, spark, frame, schema)
    assert str(got.value) == str(mem.value) and got.value.column == problem
    assert "99" not in str(got.value) and "row" not in str(got.value) and "abc" not in str(got.value)


def test_what_spark_cannot_answer_and_changed_files_are_refused_before_any_charge(tmp_path, spark):
    frame, schema = random_case(6, n=80)
    table = spark_table(tmp_path, spark, frame, schema)
    with pytest.raises(NeedsTableInMemory):
        table.quantiles("x", [0.5], 1.0, purpose="p")
    assert table.receipts == () and table.gate.spent_costs() == []
    frame.iloc[:-1].to_parquet(tmp_path / "parts" / "part-0.parquet", index=False)  # edited after binding
    with pytest.raises(SourceChanged):
        table.measure_marginals([("cat",)], 1.0, purpose="p", generator="mst", run_id="r")
    assert table.receipts == () and table.gate.spent_costs() == []


def test_hostile_sources_are_refused(tmp_path):
    frame, _ = random_case(7, n=20)
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(ValueError, match="format must be one of \\('parquet',\\) for a Spark source"):
        SparkSource(tmp_path / "t.csv")
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    for master in ("local[2]; rm -rf /", "mesos://x", "", "spark://h:1 --conf x=y"):
        with pytest.raises(ValueError, match="master must be"):
            SparkSource(tmp_path / "t.parquet", master=master)
    with pytest.raises(ValueError, match="URL"):
        SparkSource("hdfs://namenode/t.parquet")
    assert SparkSource(tmp_path / "t.parquet", master="local[*]").files


def test_record_and_replay_passes_on_spark(tmp_path, spark):
    """Every neighbour (add, remove, replace) bound through Spark: each exact answer within its
    sensitivity, releases byte-identical with the noise frozen."""
    from dpsynth.generators.marginal.mst import MST
    from dpsynth.testing.replay import record_and_replay

    frame, schema = random_case(10, n=120)
    report = record_and_replay(lambda: MST(epsilon=1.0, iters=30, device="cpu"), frame, schema, n_samples=50,
                               directory=tmp_path, backend="spark")
    assert report.ok, report
    assert report.max_ratio["add_or_remove_one/remove"] == pytest.approx(1.0)


JOB = """actor = "alice"
[data]
path = "parts/*.parquet"
engine = "spark"
spark = "local[2]"
schema = "schema.toml"
dataset_key = "dataset.key"
[policy]
path = "{policy}"
officer_key = "{officer}"
[ledger]
path = "{ledger}"
key = "{key}"
[generator]
name = "{generator}"
epsilon = 1.0
parameters = {{ iters = 20 }}
[output]
synthetic = "out/s.parquet"
model = "out/m.pt"
report = "out/r.html"
n_samples = 50
"""


@pytest.mark.parametrize("generator,code", [("mst", 0), ("dpctgan", 1)])
def test_a_spark_job_runs_mst_and_refuses_a_gan_uncharged(tmp_path, spark, generator, code):
    from typer.testing import CliRunner

    from accountant.fingerprint import write_dataset_key
    from accountant.ledger.sqlite import SQLiteLedgerStore
    from dpsynth.cli import app

    frame, schema = random_case(9, n=120)
    (tmp_path / "parts").mkdir()
    frame.iloc[:60].to_parquet(tmp_path / "parts" / "a.parquet", index=False)
    frame.iloc[60:].to_parquet(tmp_path / "parts" / "b.parquet", index=False)
    schema.save(tmp_path / "schema.toml")
    key = generate_dataset_key()
    fp = SparkSource(str(tmp_path / "parts" / "*.parquet"), session=spark).fingerprint(key)
    tl = make_test_gate(tmp_path / "l", epsilon=5.0, dataset_fingerprint=fp)
    write_dataset_key(tmp_path / "dataset.key", key)
    params = "{ iters = 20 }" if generator == "mst" else "{ epochs = 1 }"
    (tmp_path / "job.toml").write_text(JOB.format(policy=tl.policy_path, officer=tl.officer_pub,
                                                  ledger=tl.ledger_path, key=tl.ledger_key, generator=generator)
                                       .replace("{ iters = 20 }", params))
    out = CliRunner().invoke(app, ["run", str(tmp_path / "job.toml"), "--no-evaluate"])
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        entries = store.snapshot().entries
    finally:
        store.close()
    if code == 0:
        assert out.exit_code == 0, out.output
        assert any(e.generator == "mst" for e in entries)
        assert (tmp_path / "out" / "s.parquet").exists()
    else:
        assert out.exit_code != 0 and "needs the table in memory" in out.output
        assert not entries


@pytest.mark.parametrize("data,field,match", [
    ('engine = "duckdb"\nspark = "local[2]"', "data.spark", "needs engine"),
    ('spark = "local[2]; rm -rf /"', "data.spark", "must be local"),
    ('engine = "spark"\nspark = 3', "data.spark", "must be local"),
    ('engine = "hadoop"', "data.engine", "must be"),
])
def test_hostile_spark_job_fields_are_refused_naming_the_field(tmp_path, data, field, match):
    from dpsynth.jobs import JobError, parse_job

    frame, _ = random_case(10, n=10)
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    for name in ("schema.toml", "p.toml", "l.db", "k.key", "d.key"):
        (tmp_path / name).write_text("")
    import tomllib

    job = tomllib.loads(f'[data]\npath = "t.parquet"\nschema = "schema.toml"\ndataset_key = "d.key"\n{data}\n'
                        '[policy]\npath = "p.toml"\n[ledger]\npath = "l.db"\nkey = "k.key"\n'
                        '[generator]\nname = "mst"\nepsilon = 1.0\n'
                        '[output]\nsynthetic = "s.csv"\nmodel = "m.pt"\nreport = "r.html"\nn_samples = 5\n')
    with pytest.raises(JobError, match=match) as info:
        parse_job(job, base=tmp_path)
    assert info.value.field == field
