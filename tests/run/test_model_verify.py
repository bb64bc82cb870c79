"""`dpsynth model verify`: an auditor's check of a model file under keys the auditor trusts,
against the ledger, and (marginal models) by re-deriving it from its committed measurements."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from accountant.keys import write_keypair
from dpsynth.cli import app
from dpsynth.demo import run_demo
from dpsynth.generators.model_file import audit_model, load_model, model_kind


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    path = tmp_path_factory.mktemp("model-verify")
    result = run_demo(path, n_rows=400, parameters={"iters": 50}, epsilon=1.0, seed=0,
                      utility_models=["logistic_regression"], echo=lambda _line: None)
    export = path / "ledger.jsonl"
    out = CliRunner().invoke(app, ["ledger", "export", str(path / "ledger.db"), "--out", str(export)])
    assert out.exit_code == 0, out.output
    write_keypair(path / "other", "ledger")
    return {"dir": path, "model": result.run.model_path, "export": export, "pub": path / "keys" / "ledger.pub",
            "officer": path / "keys" / "officer.pub", "other_pub": path / "other" / "ledger.pub"}


def _verify(*args):
    return CliRunner().invoke(app, ["model", "verify", *map(str, args)])


def _rewrite(src, dst, edit):
    blob = torch.load(src, weights_only=True)
    meta = json.loads(blob["meta"])
    arrays = dict(blob["arrays"])
    seal = json.loads(blob["seal"])
    edit(meta, arrays, seal)
    torch.save({"meta": json.dumps(meta, sort_keys=True), "arrays": arrays, "seal": json.dumps(seal)}, dst)
    return dst


def test_a_paid_model_verifies_against_the_pinned_key_and_the_ledger_and_its_export(ws):
    for ledger in (ws["dir"] / "ledger.db", ws["export"]):
        out = _verify(ws["model"], "--ledger-pub", ws["pub"], "--ledger", ledger, "--officer-key", ws["officer"],
                      "--rederive")
        assert out.exit_code == 0, out.output
        assert out.output.startswith("OK:") and "field for field" in out.output and "warning" not in out.output
        assert "re-derived" in out.output and "hashes to its seal" in out.output
    # The demo run asked for epsilon 1: its receipts' events compose to exactly that (to the
    # calibration's tolerance), never more.
    audit = audit_model(ws["model"], trust=ws["pub"], ledger=ws["export"])
    assert audit.epsilon <= 1.0 and math.isclose(audit.epsilon, 1.0, rel_tol=1e-6)
    assert audit.generator == model_kind(ws["model"]) == "mst"


def test_the_officers_key_vouches_for_the_ledger_key(ws):
    out = _verify(ws["model"], "--trust", ws["officer"])
    assert out.exit_code == 0, out.output
    assert "trusted ledger key" in out.output


def test_without_a_trusted_key_nothing_verifies(ws, monkeypatch):
    monkeypatch.delenv("DPSYNTH_TRUST", raising=False)
    out = _verify(ws["model"], "--json")
    assert out.exit_code == 1
    assert "no trusted key" in out.output
    monkeypatch.setenv("DPSYNTH_TRUST", str(ws["dir"] / "trust.toml"))  # the officer's published trust file
    out = _verify(ws["model"], "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["seal"]["sequence"] > 0


def test_receipts_signed_by_another_key_are_refused(ws):
    out = _verify(ws["model"], "--ledger-pub", ws["other_pub"])
    assert out.exit_code == 1
    assert "no trusted key vouches" in out.output


def test_a_receipt_not_in_the_ledger_is_refused(ws, tmp_path):
    # Another ledger (it verifies on its own) lacks these entries.
    other = tmp_path / "other"
    run_demo(other, n_rows=300, parameters={"iters": 20}, epsilon=0.5, seed=1, utility_models=[],
             echo=lambda _line: None)
    out = _verify(ws["model"], "--trust", ws["pub"], "--ledger", other / "ledger.db")
    assert out.exit_code == 1
    assert "does not verify" in out.output or "does not hold" in out.output


def test_a_model_whose_receipt_was_altered_is_refused(ws, tmp_path):
    def cheaper(meta, arrays, seal):
        receipt = meta["provenance"]["receipts"][0]
        receipt["cost"] = receipt["cost"] / 100  # claim a cheaper charge; the signature is left as it was

    altered = _rewrite(ws["model"], tmp_path / "altered.pt", cheaper)
    out = _verify(altered, "--trust", ws["pub"])
    assert out.exit_code == 1
    assert "do not hash to its entry_hash" in out.output
    with pytest.raises(ValueError):
        load_model(altered, trust=ws["pub"])


def test_edited_potentials_break_the_seal(ws, tmp_path):
    def edit(meta, arrays, seal):
        name = next(k for k in arrays if k.startswith("model/"))
        arrays[name] = arrays[name] + 0.5

    out = _verify(_rewrite(ws["model"], tmp_path / "edited.pt", edit), "--trust", ws["pub"])
    assert out.exit_code == 1 and "does not match its seal" in out.output


def test_a_file_that_is_not_a_model_is_named(ws, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    out = _verify(junk, "--trust", ws["pub"])
    assert out.exit_code == 1
    assert "not a dpsynth model file" in out.output
