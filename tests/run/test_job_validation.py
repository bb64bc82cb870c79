"""Every bad job is refused before any measurement, with an error naming the field; nothing is
charged and nothing is written."""

from __future__ import annotations

import copy
import re
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from accountant.fingerprint import write_dataset_key
from accountant.keys import write_keypair
from accountant.policy import sign_policy_file
from dpsynth.cli import app
from dpsynth.jobs import JobError, load_job, parse_job, prepare

from .support import ledger_entries, make_workspace, read_job, write_job_dict


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    path = tmp_path_factory.mktemp("job-validation")
    paths = make_workspace(path)
    # Material for the bad jobs: a second key pair, a second dataset key, an edited policy.
    write_keypair(path / "other", "ledger")
    write_keypair(path / "other", "officer")
    write_dataset_key(path / "other" / "dataset.key")
    text = (path / "policy.toml").read_text()
    (path / "edited-policy.toml").write_text(text.replace("epsilon = 3.0", "epsilon = 30.0"))
    shutil.copy(path / "policy.toml.sig", path / "edited-policy.toml.sig")
    (path / "resigned-policy.toml").write_text(text)
    from accountant.keys import load_private_key

    sign_policy_file(path / "resigned-policy.toml", load_private_key(path / "other" / "officer.key"))
    frame = pd.read_csv(path / "data.csv")
    bad = frame.copy()
    bad.loc[7, "region"] = "Atlantis"
    bad.to_csv(path / "bad-category.csv", index=False)
    frame.drop(columns=["region"]).to_csv(path / "missing-column.csv", index=False)
    frame.assign(extra=1).to_csv(path / "extra-column.csv", index=False)
    other = frame.copy()
    other.loc[3, "age"] = int(other.loc[3, "age"]) + 1 if int(other.loc[3, "age"]) < 80 else 20
    other.to_csv(path / "other-table.csv", index=False)  # fits the schema, but is not the governed table
    pd.concat([frame, frame]).to_csv(path / "too-many-rows.csv", index=False)
    (path / "out").mkdir()
    (path / "out" / "exists.csv").write_text("x\n1\n")
    paths["dir"] = path
    paths["job_dict"] = read_job(paths["job"])
    return paths


def _set(job: dict, dotted: str, value) -> dict:
    job = copy.deepcopy(job)
    *parents, key = dotted.split(".")
    node = job
    for p in parents:
        node = node.setdefault(p, {})
    if value is _DELETE:
        node.pop(key, None)
    else:
        node[key] = value
    return job


_DELETE = object()

# (mutation, value, the field the error must name)
STATIC_CASES = [
    ("colour", "blue", "colour"),
    ("generator.colour", "blue", "generator.colour"),
    ("evaluate.colour", 1, "evaluate.colour"),
    ("output", _DELETE, "output"),
    ("generator", "mst", "generator"),
    ("data.path", "nowhere.csv", "data.path"),
    ("data.path", "schema.toml", "data.path"),
    ("data.schema", "nowhere.toml", "data.schema"),
    ("policy.signature", "nowhere.sig", "policy.signature"),
    ("data.dataset_key", _DELETE, "data.dataset_key"),
    ("ledger.key", _DELETE, "ledger.key"),
    ("generator.name", _DELETE, "generator.name"),
    ("generator.epsilon", 0, "generator.epsilon"),
    ("generator.epsilon", -1.0, "generator.epsilon"),
    ("generator.epsilon", float("nan"), "generator.epsilon"),
    ("generator.epsilon", float("inf"), "generator.epsilon"),
    ("generator.epsilon", True, "generator.epsilon"),
    ("generator.epsilon", "1", "generator.epsilon"),
    ("generator.parameters", [1, 2], "generator.parameters"),
    ("generator.parameters.epsilon", 2.0, "generator.parameters.epsilon"),
    ("output.n_samples", 0, "output.n_samples"),
    ("output.n_samples", 2.5, "output.n_samples"),
    ("output.n_samples", _DELETE, "output.n_samples"),
    ("output.synthetic", "out/synthetic.txt", "output.synthetic"),
    ("output.report", "out/report.pdf", "output.report"),
    ("output.model", "out/synthetic.csv", "output.model"),
    ("output.model", "data.csv", "output.model"),
    ("output.overwrite", "yes", "output.overwrite"),
    ("evaluate.holdout", 1.0, "evaluate.holdout"),
    ("evaluate.holdout", -0.1, "evaluate.holdout"),
    ("evaluate.models", ["random_forest"], "evaluate.models"),
    ("seed", -3, "seed"),
    ("actor", "", "actor"),
    ("evaluate.sensitive", "sex", "evaluate.sensitive"),
    ("evaluate.sensitive", ["sex", "sex"], "evaluate.sensitive"),
    ("evaluate.sensitive", [1], "evaluate.sensitive"),
    ("output.proportions", {"sex": {"Female": -0.5}}, "output.proportions.sex.Female"),
    ("output.proportions", {"sex": {"Female": float("nan")}}, "output.proportions.sex.Female"),
    ("output.proportions", {"sex": {"Female": True}}, "output.proportions.sex.Female"),
    ("output.proportions", {"sex": {"Female": 0.5}, "region": {"North": 0.5}}, "output.proportions"),
    ("output.proportions", {"sex": {}}, "output.proportions.sex"),
    ("output.proportions", [1], "output.proportions"),
]

# Cases that pass the static checks and fail in `prepare` (needs the files).
PREPARE_CASES = [
    ("generator.name", "gan9000", "generator.name"),
    ("generator.parameters.colour", "blue", "generator.parameters.colour"),
    ("generator.parameters.iters", -5, "generator.parameters.iters"),
    ("policy.path", "edited-policy.toml", "policy.path"),
    ("policy.signature", "resigned-policy.toml.sig", "policy.signature"),
    ("policy.officer_key", "other/officer.pub", "policy.officer_key"),
    ("ledger.key", "other/ledger.key", "ledger.key"),
    # (the schema is checked before the fingerprint: a table that does not fit is named as such)
    ("data.path", "bad-category.csv", "data.path"),
    ("data.path", "missing-column.csv", "data.path"),
    ("data.path", "extra-column.csv", "data.path"),
    ("data.path", "other-table.csv", "data.dataset_key"),
    ("data.dataset_key", "other/dataset.key", "data.dataset_key"),
    ("evaluate.target", "shoe_size", "evaluate.target"),
    ("evaluate.sensitive", ["shoe_size"], "evaluate.sensitive"),
    ("evaluate.sensitive", ["age"], "evaluate.sensitive"),  # numeric: no groups
    ("evaluate.sensitive", ["sex"], "evaluate.sensitive"),  # the target (income) has more than two classes
    ("output.proportions", {"shoe_size": {"9": 0.5}}, "output.proportions.shoe_size"),
    ("output.proportions", {"age": {"30": 0.5}}, "output.proportions.age"),
    ("output.proportions", {"sex": {"Martian": 0.5}}, "output.proportions.sex.Martian"),
    ("output.proportions", {"sex": {"Female": 0.3, "Male": 0.3}}, "output.proportions.sex"),
    ("output.proportions", {"sex": {"Female": 0.7, "Male": 0.7}}, "output.proportions.sex"),
]


def _assert_untouched(ws):
    assert ledger_entries(ws["ledger"]) == 0
    assert not (ws["dir"] / "out" / "synthetic.csv").exists()
    assert not (ws["dir"] / "out" / "report.html").exists()


@pytest.mark.parametrize("dotted, value, field", STATIC_CASES, ids=[c[0] + "-" + repr(c[1])[:12] for c in
                                                                    STATIC_CASES])
def test_static_errors_name_the_field(ws, dotted, value, field):
    job = _set(ws["job_dict"], dotted, value)
    with pytest.raises(JobError) as err:
        spec = parse_job(job, base=ws["dir"])
        prepare(spec).close()
    assert err.value.field == field
    assert str(err.value).startswith(field + ":")
    _assert_untouched(ws)


@pytest.mark.parametrize("dotted, value, field", PREPARE_CASES, ids=[c[0] + "-" + str(c[1])[:16] for c in
                                                                     PREPARE_CASES])
def test_prepare_errors_name_the_field(ws, dotted, value, field):
    job = ws["job_dict"]
    spec = parse_job(_set(job, dotted, value), base=ws["dir"])  # statically fine
    with pytest.raises(JobError) as err:
        prepare(spec).close()
    assert err.value.field == field, str(err.value)
    _assert_untouched(ws)


def test_a_bad_value_is_named_by_column_never_by_row_or_value(ws):
    spec = parse_job(_set(ws["job_dict"], "data.path", "bad-category.csv"), base=ws["dir"])
    with pytest.raises(JobError) as err:
        prepare(spec).close()
    message = str(err.value)
    assert "region" in message and "Atlantis" not in message
    assert not re.search(r"\d", message)  # no row number, no count
    assert "dpsynth data check" in message  # the holder is told where the rows are listed
    out = CliRunner().invoke(app, ["data", "check", str(ws["dir"] / "bad-category.csv"), "--schema",
                                   str(ws["dir"] / "schema.toml")])
    assert out.exit_code == 1 and "column 'region'" in out.output and "(7)" in out.output
    assert "Atlantis" not in out.output
    _assert_untouched(ws)


def test_a_table_over_max_records_is_refused_uncharged(tmp_path):
    paths = make_workspace(tmp_path, n_rows=300)
    import pandas as pd

    from accountant.fingerprint import fingerprint_table, load_dataset_key
    from accountant.keys import load_private_key
    from accountant.policy import render_policy, sign_policy_file

    big = pd.concat([pd.read_csv(paths["data"])] * 40, ignore_index=True)  # 12000 rows > max_records 10000
    big.to_csv(paths["data"], index=False)
    fp = fingerprint_table(pd.read_csv(paths["data"]), load_dataset_key(tmp_path / "keys" / "dataset.key"))
    policy = tmp_path / "policy.toml"
    policy.write_text(render_policy(epsilon=3.0, delta=1e-6, relation="add_or_remove_one", fingerprint=fp,
                                    max_records=10_000, generators=["*"], allow_seeded_noise=True))
    sign_policy_file(policy, load_private_key(tmp_path / "keys" / "officer.key"))
    paths["ledger"].unlink()
    from accountant.gate import init_ledger

    init_ledger(paths["ledger"], policy, officer_key=tmp_path / "keys" / "officer.key",
                ledger_key=tmp_path / "keys" / "ledger.pub")
    with pytest.raises(JobError, match="max_records") as err:
        prepare(load_job(paths["job"])).close()
    assert err.value.field == "data.path" and "12000" not in str(err.value)
    assert ledger_entries(paths["ledger"]) == 0


def test_existing_output_is_refused_unless_overwrite(ws):
    job = _set(_set(ws["job_dict"], "output.overwrite", False), "output.synthetic", "out/exists.csv")
    with pytest.raises(JobError) as err:
        parse_job(job, base=ws["dir"])
    assert err.value.field == "output.synthetic"
    assert (ws["dir"] / "out" / "exists.csv").read_text() == "x\n1\n"


def test_seed_needs_a_policy_that_allows_seeded_noise(tmp_path):
    paths = make_workspace(tmp_path, allow_seeded_noise=False, seed=5)
    with pytest.raises(JobError) as err:
        prepare(load_job(paths["job"])).close()
    assert err.value.field == "seed"
    assert ledger_entries(paths["ledger"]) == 0


def test_good_job_prepares_without_charging(ws):
    prepared = prepare(load_job(ws["job"]))
    prepared.close()
    assert prepared.generator.epsilon == 0.5
    _assert_untouched(ws)


def test_cli_names_the_field_and_exits_1(ws):
    bad = write_job_dict(ws["dir"] / "bad-job.toml", _set(ws["job_dict"], "generator.epsilon", -2))
    out = CliRunner().invoke(app, ["run", str(bad), "--no-progress"])
    assert out.exit_code == 1
    assert "generator.epsilon" in out.output
    _assert_untouched(ws)


def test_cli_check_spends_nothing(ws):
    out = CliRunner().invoke(app, ["run", str(ws["job"]), "--check"])
    assert out.exit_code == 0, out.output
    assert "nothing was measured or charged" in out.output
    _assert_untouched(ws)


def test_overspend_is_refused_uncharged_with_exit_2(ws):
    # The policy's total is epsilon 3: a run of 5 cannot fit, and the generator checks the
    # whole run against the ledger before its first measurement.
    big = write_job_dict(ws["dir"] / "big-job.toml", _set(ws["job_dict"], "generator.epsilon", 5.0))
    out = CliRunner().invoke(app, ["run", str(big), "--no-progress"])
    assert out.exit_code == 2, out.output
    assert "nothing was charged" in out.output
    _assert_untouched(ws)


# Cases only the generator can judge (its plan against the schema, the policy's bound on n
# and the ledger): `prepare` asks its `preflight`, so `--check` catches them uncharged.
GENERATOR_CASES = [
    ("aim", {"rounds": 2}, "generator.parameters.rounds"),
    ("aim", {"workload": [["age", "shoe_size"]]}, "generator.parameters.workload"),
    ("dpctgan", {"batch_size": 10**9}, "generator.parameters.batch_size"),
    ("dpctgan", {"epochs": 10**7, "batch_size": 5000}, "generator.epsilon"),
    ("pategan", {"target": "no_such_column"}, "generator.parameters.target"),
    ("pategan", {"target": "age"}, "generator.parameters.target"),          # numeric: nothing to classify
    ("pategan", {"target": "sex", "label_share": 1.5}, "generator.parameters.label_share"),
]


@pytest.mark.parametrize("generator, parameters, field", GENERATOR_CASES,
                         ids=[f"{g}-{next(iter(p))}" for g, p, _ in GENERATOR_CASES])
def test_generator_preflight_errors_name_the_field(ws, generator, parameters, field):
    job = _set(_set(ws["job_dict"], "generator.name", generator), "generator.parameters", parameters)
    spec = parse_job(job, base=ws["dir"])
    with pytest.raises(JobError) as err:
        prepare(spec).close()
    assert err.value.field == field, str(err.value)
    _assert_untouched(ws)


def test_cli_check_refuses_an_overspending_run_with_exit_2(ws):
    # Without the generator's preflight, --check would say OK and the real run would fail.
    big = write_job_dict(ws["dir"] / "big-check-job.toml", _set(ws["job_dict"], "generator.epsilon", 5.0))
    out = CliRunner().invoke(app, ["run", str(big), "--check"])
    assert out.exit_code == 2, out.output
    assert "nothing was charged" in out.output
    _assert_untouched(ws)


@pytest.mark.parametrize("generator", ["mst", "aim", "independent", "dpctgan"])
def test_every_generator_passes_preflight_on_a_good_job(ws, generator):
    job = _set(_set(ws["job_dict"], "generator.name", generator), "generator.parameters", {})
    prepared = prepare(parse_job(job, base=ws["dir"]))
    prepared.close()
    _assert_untouched(ws)
