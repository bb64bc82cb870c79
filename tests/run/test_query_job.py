"""`dpsynth run` with `data.query` (PostgreSQL, or a DuckDB database file attached read-only),
and the job fields it refuses before any charge."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from dpsynth.demo import setup_workspace, write_job
from dpsynth.jobs import JobError
from dpsynth.jobs.run import run_job
from tests.table.test_query_source import pg_load

from .support import ledger_entries, read_job, write_job_dict

duckdb = pytest.importorskip("duckdb")


def _govern(ws, paths, fingerprint):
    from accountant.gate import init_ledger
    from accountant.keys import load_private_key
    from accountant.policy import render_policy, sign_policy_file

    paths["policy"].write_text(render_policy(
        epsilon=10.0, delta=1e-6, relation="add_or_remove_one", fingerprint=fingerprint, max_records=10_000,
        generators=["mst", "dpctgan"], allow_seeded_noise=True, officer="Officer", dataset_name="db"))
    sign_policy_file(paths["policy"], load_private_key(ws / "keys" / "officer.key"))
    paths["ledger"].unlink()
    init_ledger(paths["ledger"], paths["policy"], officer_key=ws / "keys" / "officer.key",
                ledger_key=paths["ledger_pub"])


@pytest.fixture(params=["postgres", "attach"])
def query_workspace(request, tmp_path):
    """The demo workspace with its table in a database, a policy governing the query's rows and
    a job reading them through data.query."""
    from dpsynth.cli import app

    ws = tmp_path / "ws"
    paths = setup_workspace(ws, n_rows=300, allow_seeded_noise=True)
    from dpsynth.schema import Schema

    frame = pd.read_csv(paths["data"])
    for col in Schema.load(paths["schema"]).columns:  # a database column has a type: dates as dates
        if col.kind == "datetime":
            frame[col.name] = pd.to_datetime(frame[col.name])
    cols = ", ".join(f'"{c}"' for c in frame.columns)
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        table = pg_load(server, frame)
        where = {"postgres": server.dsn()}
        cli = ["--postgres", server.dsn()]
    else:
        table = "people"
        with duckdb.connect(str(ws / "census.duckdb")) as con:
            con.register("frame", frame)
            con.execute("CREATE TABLE people AS SELECT * FROM frame")
        where = {"attach": "census.duckdb"}
        cli = ["--attach", str(ws / "census.duckdb")]
    query = f"SELECT {cols} FROM {table}"
    out = CliRunner().invoke(app, ["policy", "fingerprint", "--query", query, *cli, "--dataset-key",
                                   str(ws / "keys" / "dataset.key")])
    assert out.exit_code == 0, out.output
    assert out.output.strip().startswith("hmac-sha256:")
    _govern(ws, paths, out.output.strip())
    job = write_job(ws / "job.toml", generator="mst", parameters={"iters": 30, "device": "cpu"}, epsilon=1.0,
                    n_samples=200, holdout=0.0, seed=0, target=None)
    spec = read_job(job)
    del spec["data"]["path"]
    spec["data"].update({"query": query, **where})
    spec["output"]["synthetic"] = "out/synthetic.parquet"
    write_job_dict(job, spec)
    return paths | {"job": job, "ws": ws, "kind": request.param, "table": table, "cols": cols}


def test_run_fits_mst_on_the_rows_a_query_returns(query_workspace):
    result = run_job(query_workspace["job"])
    synthetic = pd.read_parquet(result.synthetic_path)
    assert len(synthetic) == 200 and result.evaluation is None
    assert ledger_entries(query_workspace["ledger"]) > 1


def _hostile(ws):
    t, cols = ws["table"], ws["cols"]
    same_db = {"postgres": {"postgres": "x"}, "attach": {"attach": "census.duckdb"}}[ws["kind"]]
    return [
        ({"data": {"query": f"SELECT {cols} FROM {t}; DROP TABLE {t}"}}, "data.query"),
        ({"data": {"query": f"DELETE FROM {t}"}}, "data.query"),
        ({"data": {"query": f"SELECT {cols} FROM {t} -- x"}}, "data.query"),
        ({"data": {"query": 5}}, "data.query"),
        ({"data": {"query": f"SELECT {cols} FROM {t} LIMIT 10"}}, "data.dataset_key"),  # not the governed rows
        ({"data": {"query": f"SELECT {cols} FROM no_such_table"}}, "data.query"),
        ({"data": {"path": "data.csv"}}, "data.path"),
        ({"data": {"engine": "spark"}}, "data.engine"),
        ({"data": {"postgres": "postgresql://u:secret-pw@/db?host=/tmp", "attach": "census.duckdb"}}, "data.query"),
        ({"data": {"postgres": "postgresql://reader:secret-pw@/db?host=/tmp"}}
         if ws["kind"] == "postgres" else {"data": {"attach": "no-such.duckdb"}},
         "data.postgres" if ws["kind"] == "postgres" else "data.attach"),
        ({"generator": {"name": "dpctgan", "epsilon": 1.0, "parameters": {"epochs": 1}}}, "generator.name"),
        ({"evaluate": {"holdout": 0.2}}, "evaluate.holdout"),
    ] + ([({"data": {"postgres": "password=secret-pw host=/tmp dbname=x"}}, "data.postgres")]
         if ws["kind"] == "postgres" else [({"data": {**same_db, "engine": "postgres"}}, "data.engine")])


def test_hostile_job_fields_are_refused_before_any_charge(query_workspace):
    original = read_job(query_workspace["job"])
    before = ledger_entries(query_workspace["ledger"])
    for change, field in _hostile(query_workspace):
        spec = {k: (dict(v) if isinstance(v, dict) else v) for k, v in original.items()}
        for section, values in change.items():
            spec[section] = {**spec.get(section, {}), **values}
        write_job_dict(query_workspace["job"], spec)
        with pytest.raises(JobError) as exc:
            run_job(query_workspace["job"])
        assert exc.value.field == field, (change, str(exc.value))
        assert "secret-pw" not in str(exc.value)
        assert ledger_entries(query_workspace["ledger"]) == before, change
