"""Issue 17: `[schema]` in a job file — learn what data.schema leaves undeclared through the
ledger, then fit, as one run; both checked against the ledger before either measures."""

from __future__ import annotations

import math

import pytest
from typer.testing import CliRunner

from accountant.conversions import zcdp_rho
from accountant.events import ZCdpEvent
from accountant.ledger.sqlite import SQLiteLedgerStore
from dpsynth.cli import app
from dpsynth.jobs import JobError, load_job
from dpsynth.schema import Schema

from .test_schema_learn_command import _setup

SECTION = """
[schema]
learn_epsilon = {eps}
learn_delta = 1e-7
bins = 4
save = "out/learned.toml"
"""


def _entries(tl):
    store = SQLiteLedgerStore(tl.ledger_path)
    try:
        return store.snapshot().entries
    finally:
        store.close()


def _job(tmp_path, eps=1.0, extra=""):
    path = tmp_path / "job.toml"
    path.write_text(path.read_text() + SECTION.format(eps=eps) + extra)
    return path


def test_a_job_learns_its_schema_then_fits_and_saves_what_it_learned(tmp_path):
    tl = _setup(tmp_path, ("mst", "schema"))
    job = _job(tmp_path)
    out = CliRunner().invoke(app, ["run", str(job), "--no-evaluate"])
    assert out.exit_code == 0, out.output
    learned = Schema.load(tmp_path / "out" / "learned.toml")
    assert learned.is_complete and learned.column("city").categories == ("Oslo", "Paris", "Rome")
    entries = _entries(tl)
    purposes = [e.generator for e in entries if e.kind == "charge"]
    # The learning charges (one per column, purpose "schema") come before the fit's.
    assert purposes[:2] == ["schema", "schema"] and set(purposes[2:]) == {"mst"}
    assert (tmp_path / "out" / "s.csv").exists()


def test_learning_and_the_fit_are_refused_together_before_either_is_charged(tmp_path):
    # The ledger holds ε 10.  Learning with ε 12 (split over two columns) and an MST run of
    # ε 3 each fit alone, not together: the job is refused before either measures.
    from dpsynth.jobs.run import prepare

    tl = _setup(tmp_path, ("mst", "schema"))
    path = tmp_path / "job.toml"
    path.write_text(path.read_text().replace("epsilon = 1.0", "epsilon = 3.0"))
    job = _job(tmp_path, eps=12.0)
    out = CliRunner().invoke(app, ["run", str(job)])
    assert out.exit_code == 2, out.output
    assert "learning the schema (epsilon 12) and then this mst run (epsilon 3) need more than remains" in out.output
    assert "nothing was charged" in out.output
    assert not _entries(tl) and not (tmp_path / "out" / "learned.toml").exists()
    # The premise: each part alone is admitted (so it is the sum that was refused).
    path.write_text(path.read_text().replace("epsilon = 3.0", "epsilon = 1.0").replace("learn_epsilon = 12.0",
                                                                                    "learn_epsilon = 1.0"))
    prepared = prepare(path)
    try:
        f, table = prepared.gate.filter, prepared.table
        assert f.admits([], math.fsum(f.cost(e) for e in table.learning_events(12.0, 1e-7, bins=4)))
        assert f.admits([], f.cost(ZCdpEvent(zcdp_rho(3.0, 1e-6))))
    finally:
        prepared.close()


def test_check_only_validates_the_learning_and_charges_nothing(tmp_path):
    tl = _setup(tmp_path, ("mst", "schema"))
    out = CliRunner().invoke(app, ["run", str(_job(tmp_path)), "--check"])
    assert out.exit_code == 0 and "nothing was measured or charged" in out.output
    assert not _entries(tl)


def test_a_policy_that_does_not_allow_schema_learning_refuses_the_job_uncharged(tmp_path):
    tl = _setup(tmp_path, ("mst",))
    out = CliRunner().invoke(app, ["run", str(_job(tmp_path))])
    assert out.exit_code == 1 and "adds 'schema' to the policy's generators" in out.output
    assert not _entries(tl)


def test_learning_events_are_what_learning_charges(tmp_path):
    """The joint check is only as good as the events it adds up: they must be the charges."""
    from accountant.filter import RenyiFilter
    from dpsynth.jobs.run import prepare

    tl = _setup(tmp_path, ("mst", "schema"))
    prepared = prepare(_job(tmp_path, eps=2.0))
    try:
        table = prepared.table
        planned = table.learning_events(2.0, 1e-7, bins=4)
        f = prepared.gate.filter
        table.learn_schema(2.0, 1e-7, bins=4)
        spent = prepared.gate.spent_costs()
        assert len(spent) == 2
        assert math.isclose(math.fsum(spent), math.fsum(f.cost(e) for e in planned), rel_tol=1e-12)
        assert isinstance(f, RenyiFilter)
    finally:
        prepared.close()


@pytest.mark.parametrize("section,field", [
    ("[schema]\nlearn_epsilon = 0\nsave = 'x.toml'\n", "schema.learn_epsilon"),
    ("[schema]\nlearn_epsilon = 1\nsave = 'x.toml'\nlearn_delta = 2\n", "schema.learn_delta"),
    ("[schema]\nlearn_epsilon = 1\nsave = 'x.toml'\nbins = 0\n", "schema.bins"),
    ("[schema]\nlearn_epsilon = 1\n", "schema.save"),
    ("[schema]\nlearn_epsilon = 1\nsave = 'x.csv'\n", "schema.save"),
    ("[schema]\nlearn_epsilon = 1\nsave = 'schema.toml'\n", "schema.save"),    # the job's own schema
    ("[schema]\nlearn_epsilon = 1\nsave = 'out/s.csv'\n", "schema.save"),      # an output
    ("[schema]\nlearn_epsilon = 1\nsave = 'x.toml'\nrows = 3\n", "schema.rows"),
])
def test_hostile_schema_sections_are_refused_naming_the_field(tmp_path, section, field):
    _setup(tmp_path, ("mst", "schema"))
    path = tmp_path / "job.toml"
    path.write_text(path.read_text() + section)
    with pytest.raises(JobError) as info:
        load_job(path)
    assert info.value.field == field


def test_a_job_with_a_holdout_learns_on_the_training_rows_and_evaluates(tmp_path):
    _setup(tmp_path, ("mst", "schema"))
    job = _job(tmp_path, extra='\n[evaluate]\nholdout = 0.2\ntarget = "city"\nmodels = ["logistic_regression"]\n')
    out = CliRunner().invoke(app, ["run", str(job)])
    assert out.exit_code == 0, out.output
    assert Schema.load(tmp_path / "out" / "learned.toml").is_complete


def test_the_learned_schema_may_not_land_on_the_ledger_side_files(tmp_path):
    tl = _setup(tmp_path, ("mst", "schema"))
    path = tmp_path / "job.toml"
    path.write_text(path.read_text() + f"\n[schema]\nlearn_epsilon = 1\nsave = '{tl.ledger_path}-wal'\n")
    with pytest.raises(JobError) as info:
        load_job(path)
    assert info.value.field == "schema.save"
