"""Database sources (`data.query`): PostgreSQL as the engine, and a DuckDB database file
attached read-only.  The same exact counts as numpy, the same releases and errors as the
in-memory path, hostile queries refused with nothing charged, the DSN's password never shown,
and a row changed after binding stops the release."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from accountant.errors import DatasetMismatch
from accountant.fingerprint import generate_dataset_key
from accountant.testing import make_test_gate
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.schema import Column, EncodingError, Schema
from dpsynth.table import DuckDBQuerySource, EngineError, PostgresSource, PrivateTable, SourceChanged
from tests.postgres_server import PASSWORD, PASSWORD_DATABASE, PASSWORD_USER, fresh_ledger_name
from tests.table.test_duckdb_source import assert_same_releases, exact, memory_table, random_case

duckdb = pytest.importorskip("duckdb")

def _pg_type(values: pd.Series) -> str:
    kind = values.dtype.kind
    if kind == "O":
        present = values.dropna()
        return "boolean" if len(present) and all(isinstance(v, (bool, np.bool_)) for v in present) else "text"
    return {"i": "bigint", "u": "bigint", "f": "double precision", "b": "boolean", "M": "timestamp"}[kind]


def _cell(v):
    """A frame cell as PostgreSQL takes it (missing: NULL)."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.generic):
        return v.item()
    return v


def pg_load(server, frame: pd.DataFrame, database=None) -> str:
    """The frame as a new PostgreSQL table (its name returned); column types from the dtypes."""
    name = fresh_ledger_name("q")
    cols = ", ".join(f'"{c}" {_pg_type(frame[c])}' for c in frame.columns)
    with (server.connect(database) if database else server.connect()) as conn:
        conn.execute(f"CREATE TABLE {name} ({cols})")
        with conn.cursor() as cur:
            with cur.copy(f"COPY {name} FROM STDIN") as copy:
                for row in frame.itertuples(index=False, name=None):
                    copy.write_row([_cell(v) for v in row])
    return name


def duckdb_file(tmp_path, frame: pd.DataFrame, name="db.duckdb"):
    path = tmp_path / name
    with duckdb.connect(str(path)) as con:
        con.register("frame", frame)
        con.execute("CREATE TABLE t AS SELECT * FROM frame")
    return path


def bound(tmp_path, source, schema, seed=1, ledger="ledger", **kwargs):
    key = generate_dataset_key()
    tl = make_test_gate(tmp_path / ledger, epsilon=50.0, dataset_fingerprint=source.fingerprint(key), **kwargs)
    return PrivateTable(source, schema, tl.gate, dataset_key=key, random_source=SeededRandomSource(seed))


def columns_sql(schema) -> str:
    return ", ".join(f'"{c}"' for c in schema.names)


@pytest.fixture(params=["postgres", "duckdb-file"])
def engine(request, tmp_path):
    """make(frame, schema, query=None) -> a source over the frame in the engine."""
    def make(frame, schema, query=None):
        if request.param == "postgres":
            server = request.getfixturevalue("postgres_server")
            table = pg_load(server, frame)
            return PostgresSource(server.dsn(), query or f"SELECT {columns_sql(schema)} FROM {table}")
        return DuckDBQuerySource(duckdb_file(tmp_path, frame), query or f"SELECT {columns_sql(schema)} FROM t",
                                 memory_limit="256MB", threads=1)
    make.kind = request.param
    return make


@pytest.mark.parametrize("seed", [0, 1])
def test_counts_equal_numpy_cell_for_cell(tmp_path, engine, seed):
    frame, schema = random_case(seed, n=300)
    codes = schema.encode(frame)
    names = list(schema.names)
    cliques = [(a,) for a in names] + list(itertools.combinations(names, 2)) + [("when", "cat", "x")]
    table = bound(tmp_path, engine(frame, schema), schema)
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
    assert empty > 0


def test_mst_releases_what_memory_releases(tmp_path, engine):
    from dpsynth.generators.marginal.mst import MST

    frame, schema = random_case(4, n=300)
    eng = bound(tmp_path, engine(frame, schema), schema, seed=3)
    mem = memory_table(tmp_path, frame, schema, seed=3)
    make = lambda: MST(epsilon=2.0, iters=30, device="cpu")  # noqa: E731
    assert_same_releases(make().fit(eng), make().fit(mem))


@pytest.mark.parametrize("edit,problem", [
    (lambda f: f.assign(ord=f["ord"].where(f.index != 7, 99)), "ord"),                  # not a category
    (lambda f: f.assign(age=f["age"].astype(float).where(f.index != 3, 17.5)), "age"),   # not whole
    (lambda f: f.assign(age=f["age"].where(f.index != 5, 500)), "age"),                  # out of bounds
    (lambda f: f.assign(ord=f["ord"].astype(float).where(f.index != 2, np.nan)), "ord"),  # missing
])
def test_a_bad_value_gives_the_in_memory_error_and_charges_nothing(tmp_path, engine, edit, problem):
    frame, schema = random_case(5, n=60)
    frame = edit(frame)
    with pytest.raises(EncodingError) as want:
        memory_table(tmp_path, frame, schema)
    source = engine(frame, schema)
    key = generate_dataset_key()
    tl = make_test_gate(tmp_path / "l", epsilon=5.0, dataset_fingerprint=source.fingerprint(key))
    with pytest.raises(EncodingError) as got:
        PrivateTable(source, schema, tl.gate, dataset_key=key)
    assert str(got.value) == str(want.value) and got.value.column == problem
    assert "row" not in str(got.value) and "99" not in str(got.value) and "500" not in str(got.value)
    assert tl.gate.spent_costs() == []


def test_a_table_that_is_not_the_governed_one_shows_no_value_problem(tmp_path, engine):
    frame, schema = random_case(5, n=60)
    source = engine(frame.assign(ord=frame["ord"].where(frame.index != 7, 99)), schema)
    tl = make_test_gate(tmp_path / "l", epsilon=5.0, frame=frame)  # governs the unedited frame
    with pytest.raises(DatasetMismatch):
        PrivateTable(source, schema, tl.gate, dataset_key=tl.dataset_key)


def test_the_fingerprint_is_of_the_rows_as_a_multiset(tmp_path, postgres_server):
    frame, schema = random_case(2, n=80)
    table = pg_load(postgres_server, frame)
    cols = columns_sql(schema)
    key = generate_dataset_key()
    fp = PostgresSource(postgres_server.dsn(), f"SELECT {cols} FROM {table}").fingerprint(key)
    # The same rows in another order, by another query: the same dataset.
    assert PostgresSource(postgres_server.dsn(), f"SELECT {cols} FROM {table} ORDER BY random()").fingerprint(key) \
        == fp
    # A row less, a changed cell, another key, another column type: another fingerprint.
    others = [f"SELECT {cols} FROM {table} OFFSET 1",
              f"SELECT {cols.replace(chr(34) + 'x' + chr(34), 'CASE WHEN ord = 0 THEN x + 1 ELSE x END AS x')} "
              f"FROM {table}",
              f"SELECT {cols.replace(chr(34) + 'age' + chr(34), 'CAST(age AS integer) AS age')} FROM {table}"]
    prints = {PostgresSource(postgres_server.dsn(), q).fingerprint(key) for q in others}
    prints.add(PostgresSource(postgres_server.dsn(), f"SELECT {cols} FROM {table}").fingerprint(generate_dataset_key()))
    assert fp not in prints and len(prints) == 4


def test_a_row_changed_after_binding_is_never_released(tmp_path, postgres_server):
    frame, schema = random_case(6, n=80)
    name = pg_load(postgres_server, frame)
    table = bound(tmp_path, PostgresSource(postgres_server.dsn(), f"SELECT {columns_sql(schema)} FROM {name}"),
                  schema)
    first = table.measure_marginals([("cat",)], 1.0, purpose="p", generator="mst", run_id="r")
    with postgres_server.connect() as conn:
        conn.execute(f"UPDATE {name} SET ord = 1 - ord WHERE ctid = (SELECT min(ctid) FROM {name} WHERE ord < 2)")
    before = len(table.receipts)
    with pytest.raises(SourceChanged):
        table.measure_marginals([("ord",)], 1.0, purpose="p", generator="mst", run_id="r")
    # The pass's charge stands (it was spent on a statement that ran); nothing was released.
    (charge,) = table.receipts[before:]
    assert len(first) == 1 and table.gate.release_receipt(charge) is None
    assert table.gate.release_receipt(table.receipts[0]) is not None
    # A column whose type changed: refused before the charge.
    spent = table.gate.spent_costs()
    with postgres_server.connect() as conn:
        conn.execute(f"ALTER TABLE {name} ALTER COLUMN age TYPE integer")
    with pytest.raises(SourceChanged):
        table.measure_marginals([("age",)], 1.0, purpose="p", generator="mst", run_id="r")
    assert table.gate.spent_costs() == spent


HOSTILE = [
    "SELECT 1; DROP TABLE {t}",
    "SELECT * FROM {t}; ",  # fine alone (a trailing ';'): used below as the control
    "DROP TABLE {t}",
    "DELETE FROM {t}",
    "INSERT INTO {t} SELECT * FROM {t}",
    "SELECT * FROM {t} -- a comment",
    "SELECT * FROM {t} /* a comment */",
    "SELECT $1 AS x",
    "SELECT $$x$$ AS x",
    "",
]


@pytest.mark.parametrize("query", [q for q in HOSTILE if q != "SELECT * FROM {t}; "])
def test_hostile_query_text_is_refused_before_the_engine_is_asked(query):
    with pytest.raises(ValueError):
        PostgresSource("postgresql://nobody@/nothing?host=/nonexistent", query.format(t="t"))
    with pytest.raises(ValueError):
        DuckDBQuerySource(__file__, query.format(t="t"))


def test_hostile_queries_that_reach_the_engine_change_nothing_and_charge_nothing(tmp_path, postgres_server):
    frame, schema = random_case(7, n=50)
    name = pg_load(postgres_server, frame)
    cols = columns_sql(schema)
    key = generate_dataset_key()
    plain = PostgresSource(postgres_server.dsn(), f"SELECT {cols} FROM {name};")
    tl = make_test_gate(tmp_path / "l", epsilon=5.0, dataset_fingerprint=plain.fingerprint(key))
    queries = [
        # A data-modifying CTE: the read-only transaction refuses it.
        f"WITH d AS (DELETE FROM {name} RETURNING *) SELECT {cols} FROM d",
        # Turning the transaction read-write from inside the query.
        f"SELECT {cols} FROM {name} WHERE set_config('transaction_read_only', 'off', true) IS NOT NULL",
        # Breaking out of the wrapping parentheses: a second statement cannot be prepared.
        f"SELECT {cols} FROM {name}) AS src; DROP TABLE {name}; SELECT * FROM ({name}",
        # A query that fails at run time (its message may quote a value: not shown).
        f"SELECT cat, ord, flag, x, CAST(cat AS bigint) AS age, \"when\" FROM {name}",
        # An unknown table.
        f"SELECT {cols} FROM no_such_table",
        # A lock the query cannot take.
        f"SELECT {cols} FROM {name} FOR UPDATE",
    ]
    for q in queries:
        try:
            source = PostgresSource(postgres_server.dsn(), q)
        except ValueError:
            continue  # refused by the text check (the ';')
        with pytest.raises((EngineError, SourceChanged, EncodingError)) as err:
            PrivateTable(source, schema, tl.gate, dataset_key=key)
        assert "abc" not in str(err.value)
    # Past the text check (the wrapper's parentheses broken, a second statement): the server
    # refuses to prepare it.
    breakout = PostgresSource(postgres_server.dsn(), f"SELECT {cols} FROM {name}")
    breakout.embedded = f"SELECT {cols} FROM {name}) AS src; DROP TABLE {name}; SELECT * FROM ({name}"
    with pytest.raises(EngineError):
        PrivateTable(breakout, schema, tl.gate, dataset_key=key)
    slow = PostgresSource(postgres_server.dsn(), f"SELECT {cols} FROM {name} WHERE pg_sleep(2) IS NOT NULL",
                          statement_timeout=0.3)
    with pytest.raises(EngineError, match="57014"):
        PrivateTable(slow, schema, tl.gate, dataset_key=key)
    assert tl.gate.spent_costs() == []
    with postgres_server.connect() as conn:
        assert conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == len(frame)
    # The control: the same table through a plain query binds.
    PrivateTable(plain, schema, tl.gate, dataset_key=key)


def test_the_password_is_never_shown(tmp_path, postgres_server):
    frame, schema = random_case(8, n=40)
    name = pg_load(postgres_server, frame, database=PASSWORD_DATABASE)
    with postgres_server.connect(PASSWORD_DATABASE) as conn:
        conn.execute(f"ALTER TABLE {name} OWNER TO {PASSWORD_USER}")
    dsn = postgres_server.dsn(PASSWORD_DATABASE, user=PASSWORD_USER, password=PASSWORD)
    source = PostgresSource(dsn, f"SELECT {columns_sql(schema)} FROM {name}")
    assert PASSWORD not in repr(source) and PASSWORD not in source.location
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(source)
    table = bound(tmp_path, source, schema, ledger="pw")
    table.measure_marginals([("cat", "ord")], 1.0, purpose="p", generator="mst", run_id="r")
    ledger_bytes = b"".join(p.read_bytes() for p in (tmp_path / "pw").rglob("*") if p.is_file())
    assert PASSWORD.encode() not in ledger_bytes
    messages = []
    for bad in (PostgresSource(dsn.replace(PASSWORD, PASSWORD + "x"), "SELECT 1 AS a"),
                PostgresSource(dsn, "SELECT no_such_column FROM nothing_here")):
        with pytest.raises(EngineError) as err:
            bad.fingerprint(generate_dataset_key())
        messages.append(str(err.value))
    assert all(PASSWORD not in m for m in messages), messages
    assert "password" in messages[0] or "authentication" in messages[0]


def test_a_database_file_is_attached_read_only(tmp_path):
    frame, schema = random_case(9, n=40)
    path = duckdb_file(tmp_path, frame)
    for q in ("WITH d AS (SELECT * FROM t) SELECT * FROM read_csv('/etc/passwd')",
              "SELECT * FROM t WHERE (SELECT count(*) FROM read_parquet('/etc/hosts')) > 0"):
        with pytest.raises((EngineError, EncodingError)):
            bound(tmp_path, DuckDBQuerySource(path, q), schema)
    table = bound(tmp_path, DuckDBQuerySource(path, "SELECT * FROM t"), schema, ledger="ok")
    table.measure_marginals([("cat",)], 1.0, purpose="p", generator="mst", run_id="r")
    # A write to the file after binding: refused before the charge.
    spent = table.gate.spent_costs()
    with pytest.raises(duckdb.Error):
        duckdb.connect(str(path)).execute("DELETE FROM t WHERE ord = 0")  # not writable while attached
    table._PrivateTable__rows.close()
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM t WHERE ord = 0")
    with pytest.raises(SourceChanged):
        table.measure_marginals([("cat",)], 1.0, purpose="p", generator="mst", run_id="r")
    assert table.gate.spent_costs() == spent


def test_record_and_replay_passes_on_a_database_query(tmp_path):
    from dpsynth.generators.marginal.mst import MST
    from dpsynth.testing.replay import record_and_replay

    frame, schema = random_case(10, n=120)
    report = record_and_replay(lambda: MST(epsilon=1.0, iters=30, device="cpu"), frame, schema, n_samples=100,
                               directory=tmp_path, backend="duckdb-query")
    assert report.ok, report


def test_a_duckdb_statement_past_its_timeout_is_interrupted(tmp_path):
    frame, schema = random_case(9, n=40)
    path = duckdb_file(tmp_path, frame)
    slow = DuckDBQuerySource(path, "SELECT t.* FROM t, range(200000000) AS r WHERE r.range < 0",
                             statement_timeout=0.2)
    key = generate_dataset_key()
    with pytest.raises(EngineError, match="statement_timeout"):
        slow.fingerprint(key)
