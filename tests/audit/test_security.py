"""Attacks on `dpsynth audit` and its files: hostile arguments, an edited or foreign results file,
and the promise that an audit never opens a governed ledger or reads a governed table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from accountant.testing import make_test_gate
from dpsynth.audit import ResultsError, audit
from dpsynth.audit.ledger import AUDIT_DATASET
from dpsynth.cli import app

TINY = ["--runs", "4", "--n-synth", "10", "--param", "iters=5", "--jobs", "1", "--quiet", "--seed", "1"]


def _cli(*args):
    return CliRunner().invoke(app, ["audit", *args])


def _tiny(out, **kw):
    args = dict(epsilon=1.0, runs=4, out=out, params={"iters": 5}, n_synth=10, jobs=1, seed=1, progress=False)
    args.update(kw)
    return audit("independent", **args)


@pytest.mark.parametrize("args, words", [
    (["independent", "--epsilon", "1", "--runs", "-5"], "runs"),
    (["independent", "--epsilon", "1", "--runs", "3"], "at least 4"),
    (["independent", "--epsilon", "0"], "epsilon"),
    (["independent", "--epsilon", "-1"], "epsilon"),
    (["independent", "--epsilon", "nan"], "epsilon"),
    (["independent", "--epsilon", "inf"], "epsilon"),
    (["ctgan", "--epsilon", "1"], "unknown generator 'ctgan'"),
    (["independent", "--epsilon", "1", "--delta", "1"], "delta"),
    (["independent", "--epsilon", "1", "--alpha", "0"], "alpha"),
    (["independent", "--epsilon", "1", "--relation", "swap_two"], "swap_two"),
    (["independent", "--epsilon", "1", "--param", "epsilon=100"], "epsilon"),
    (["independent", "--epsilon", "1", "--param", "noise=0"], "noise"),
    (["independent", "--epsilon", "1", "--param", "iters=-1"], "iters"),
    (["independent", "--epsilon", "1", "--param", "iters"], "NAME=VALUE"),
    (["independent", "--epsilon", "1", "--jobs", "0"], "jobs"),
    (["independent", "--epsilon", "1", "--n-synth", "0"], "n_synth"),
])
def test_hostile_arguments_are_refused_before_anything_is_written(tmp_path, args, words):
    out = tmp_path / "out"
    res = _cli(*args, "--out", str(out))
    assert res.exit_code == 1, res.output
    assert words in res.output
    assert not (out / "results.jsonl").exists()


def test_a_results_file_is_never_overwritten_or_pooled_with_another_configuration(tmp_path):
    out = tmp_path / "a"
    res = _cli("independent", "--epsilon", "1", *TINY, "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "audit ledger" in res.output and "passed" in res.output
    again = _cli("independent", "--epsilon", "1", *TINY, "--out", str(out))
    assert again.exit_code == 1 and "--resume" in again.output
    foreign = _cli("independent", "--epsilon", "2", *TINY, "--out", str(out), "--resume")
    assert foreign.exit_code == 1 and "another audit configuration" in foreign.output and "epsilon" in foreign.output
    other_gen = _cli("mst", "--epsilon", "1", *TINY, "--out", str(out), "--resume")
    assert other_gen.exit_code == 1 and "generator" in other_gen.output
    same = _cli("independent", "--epsilon", "1", *TINY, "--out", str(out), "--resume")
    assert same.exit_code == 0, same.output  # nothing left to run: the bounds again


@pytest.mark.parametrize("edit", ["score", "drop", "swap", "header", "duplicate", "garbage"])
def test_an_edited_results_file_is_refused_on_resume(tmp_path, edit):
    out = tmp_path / "a"
    r = _tiny(out)
    path = r.results
    lines = path.read_text().splitlines()
    if edit == "score":  # a fit's score changed by hand
        row = json.loads(lines[3])
        row["score"] = 999
        lines[3] = json.dumps(row)
    elif edit == "drop":
        del lines[2]
    elif edit == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif edit == "header":  # the claim changed in the header
        head = json.loads(lines[0])
        head["config"]["epsilon"] = 4.0
        lines[0] = json.dumps(head)
    elif edit == "duplicate":
        lines.append(lines[-1])
    else:
        lines.insert(2, "not json")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultsError):
        _tiny(out, resume=True)


def test_an_interrupted_last_line_is_dropped_and_its_fit_redone(tmp_path):
    out = tmp_path / "a"
    r = _tiny(out)
    text = r.results.read_text()
    r.results.write_text(text[:-20])  # the last line cut mid-write
    again = _tiny(out, resume=True)
    assert again.summary["runs_per_world"] == 4
    assert len(again.results.read_text().splitlines()) == 1 + 8


def test_resume_needs_a_file_and_refuses_a_foreign_one(tmp_path):
    with pytest.raises(FileNotFoundError):
        _tiny(tmp_path / "none", resume=True)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "results.jsonl").write_text('{"format": "something else"}\n')
    with pytest.raises(ResultsError, match="not a dpsynth audit results file"):
        _tiny(tmp_path / "x", resume=True)


def test_an_audit_never_opens_a_governed_ledger(tmp_path, monkeypatch):
    """A governed ledger in the same folder is left byte for byte as it was; every gate the audit
    opens is on a ledger it made, whose signed policy names the audit."""
    from accountant.gate import Gate

    governed = make_test_gate(tmp_path / "governed", epsilon=1.0, delta=1e-6)
    governed.gate.close()
    before = {p.name: p.read_bytes() for p in (tmp_path / "governed").iterdir() if p.is_file()}
    opened = []
    honest_open = Gate.open.__func__

    def spy(cls, path, *args, **kwargs):
        gate = honest_open(cls, path, *args, **kwargs)
        opened.append((str(path), gate.policy.dataset_name))
        return gate

    monkeypatch.setattr(Gate, "open", classmethod(spy))
    monkeypatch.chdir(tmp_path / "governed")
    r = _tiny(tmp_path / "out")
    assert opened and all(name == AUDIT_DATASET for _, name in opened)
    assert all("dpsynth-audit-" in path and "governed" not in path for path, _ in opened)
    after = {p.name: p.read_bytes() for p in (tmp_path / "governed").iterdir() if p.is_file()}
    assert after == before
    page = r.report.read_text()
    assert "No governed data was touched" in page and "audit ledger made for this audit" in page


def test_the_relation_and_delta_come_from_a_policy_file(tmp_path):
    governed = make_test_gate(tmp_path / "p", epsilon=1.0, delta=1e-6, relation="replace_one")
    governed.gate.close()
    res = _cli("independent", "--epsilon", "1", *TINY, "--out", str(tmp_path / "o"), "--policy",
               str(governed.policy_path))
    assert res.exit_code == 0, res.output
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["config"]["relation"] == "replace_one" and summary["config"]["delta"] == 1e-6
    assert summary["worlds"]["relation"] == "replace_one" and len(summary["worlds"]["out"]) == 5
