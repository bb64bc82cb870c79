"""`dpsynth model verify`: an auditor's check of a model file against pinned keys and the ledger."""

from __future__ import annotations

import json
import math

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


def test_a_paid_model_verifies_against_the_pinned_key_and_the_ledger_and_its_export(ws):
    for ledger in (ws["dir"] / "ledger.db", ws["export"]):
        out = _verify(ws["model"], "--ledger-pub", ws["pub"], "--ledger", ledger, "--officer-key", ws["officer"])
        assert out.exit_code == 0, out.output
        assert out.output.startswith("OK:") and "field for field" in out.output and "warning" not in out.output
    # The demo run asked for epsilon 1: its receipts' events compose to exactly that (to the
    # calibration's tolerance), never more.
    audit = audit_model(ws["model"], ledger_public_key=ws["pub"], ledger=ws["export"])
    assert audit.epsilon <= 1.0 and math.isclose(audit.epsilon, 1.0, rel_tol=1e-6)
    assert audit.generator == model_kind(ws["model"]) == "mst"


def test_without_pins_it_verifies_but_says_what_it_could_not_check(ws):
    out = _verify(ws["model"], "--json")
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert not info["key_pinned"] and info["ledger_checked"] is None
    assert any("published key" in w for w in info["warnings"])


def test_receipts_signed_by_another_key_are_refused(ws):
    out = _verify(ws["model"], "--ledger-pub", ws["other_pub"])
    assert out.exit_code == 1
    assert "was signed by" in out.output


def test_a_receipt_not_in_the_ledger_is_refused(ws, tmp_path):
    # Another ledger (same keys are not needed: it verifies on its own) lacks these entries.
    other = tmp_path / "other"
    run_demo(other, n_rows=300, parameters={"iters": 20}, epsilon=0.5, seed=1, utility_models=[],
             echo=lambda _line: None)
    out = _verify(ws["model"], "--ledger", other / "ledger.db")
    assert out.exit_code == 1
    assert "is not an entry of" in out.output


def test_a_model_whose_receipt_was_altered_is_refused(ws, tmp_path):
    blob = torch.load(ws["model"], weights_only=True)
    meta = json.loads(blob["meta"])
    receipt = meta["receipts"]["receipts"][0]
    receipt["cost"] = receipt["cost"] / 100  # claim a cheaper charge; the signature is left as it was
    blob["meta"] = json.dumps(meta, sort_keys=True)
    altered = tmp_path / "altered.pt"
    torch.save(blob, altered)
    out = _verify(altered)
    assert out.exit_code == 1
    assert "do not hash to its entry_hash" in out.output
    with pytest.raises(ValueError):
        load_model(altered)


def test_a_file_that_is_not_a_model_is_named(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    out = _verify(junk)
    assert out.exit_code == 1
    assert "not a dpsynth model file" in out.output
