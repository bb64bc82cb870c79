"""The whole life of a dataset's budget, through the command line, on a real table.

keys -> policy -> sign -> ledger -> `dpsynth run` MST and AIM on Titanic
(../shared/data/titanic_hd) -> sample the saved models -> export -> verify; then
flip one byte of a ledger entry (in the export and in the SQLite file) and see
verify fail; then ask for more ε than is left and see the refusal, with nothing
charged and nothing written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import tomli_w
from typer.testing import CliRunner

from dpsynth.cli import app
from tests.conftest import shared_path
from tests.run.support import ledger_entries as entry_count

BUDGET_EPSILON = 2.0


def dpsynth(*args: str, expect: int = 0) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    out = result.output
    assert result.exit_code == expect, f"dpsynth {' '.join(map(str, args))} exited {result.exit_code}: {out[-3000:]}"
    return out


def titanic_schema(folder: Path):
    """Every column categorical over its published domain (a public fact, not read off the rows)."""
    from dpsynth.schema import Column, Schema

    domain = json.loads((folder / "titanic-domain.json").read_text())
    csv_columns = pd.read_csv(folder / "titanic.csv", nrows=0).columns
    return Schema([Column(c, "categorical", categories=list(range(domain[c]))) for c in csv_columns])


def write_job(path: Path, data: Path, generator: str, epsilon: float, parameters: dict, out: str) -> Path:
    job = {
        "actor": "e2e-researcher",
        "data": {"path": str(data), "schema": "schema.toml", "dataset_key": "keys/dataset.key"},
        "policy": {"path": "policy.toml", "officer_key": "keys/officer.pub"},
        "ledger": {"path": "ledger.db", "key": "keys/ledger.key"},
        "generator": {"name": generator, "epsilon": epsilon, "parameters": parameters},
        "output": {"synthetic": f"{out}/synthetic.csv", "model": f"{out}/model.pt",
                   "report": f"{out}/report.html", "n_samples": 500},
    }
    path.write_text(tomli_w.dumps(job))
    return path


def flip_purpose_byte(raw: bytes, after: bytes) -> bytes:
    """Flip the case bit (0x20) of the first letter of the first "purpose" value after `after`."""
    # The entry's own record (its hash followed by its next field), not an older copy of the
    # head record that SQLite may keep in a free page.
    start = raw.index(b'"entry_hash":"' + after + b'","epsilon_curve"')
    at = raw.index(b'"purpose":"', start) + len(b'"purpose":"')
    assert chr(raw[at]).isalpha()
    return raw[:at] + bytes([raw[at] ^ 0x20]) + raw[at + 1:]


@pytest.mark.slow
def test_budget_lifecycle_on_titanic(tmp_path, monkeypatch):
    folder = shared_path("data", "titanic_hd")
    data = folder / "titanic.csv"
    monkeypatch.chdir(tmp_path)

    # The officer: keys, the table's keyed fingerprint, a policy, its signature, the ledger.
    dpsynth("keys", "generate", "--out", "keys", "--name", "officer")
    dpsynth("keys", "generate", "--out", "keys", "--name", "ledger")
    dpsynth("keys", "dataset-key", "--out", "keys/dataset.key")
    fingerprint = dpsynth("policy", "fingerprint", data, "--dataset-key", "keys/dataset.key").strip()
    assert fingerprint.startswith("hmac-sha256:")
    policy = dpsynth("policy", "template", "--dataset-name", "titanic", "--fingerprint", fingerprint,
                     "--max-records", "2000", "--epsilon", str(BUDGET_EPSILON), "--delta", "1e-6",
                     "--officer", "E2E Officer", "--generators", "mst,aim")
    Path("policy.toml").write_text(policy)
    dpsynth("policy", "sign", "policy.toml", "--key", "keys/officer.key")
    dpsynth("policy", "verify", "policy.toml", "--officer-key", "keys/officer.pub")
    dpsynth("ledger", "init", "ledger.db", "--policy", "policy.toml", "--officer-key", "keys/officer.key",
            "--ledger-key", "keys/ledger.pub")
    schema = titanic_schema(folder)
    schema.save("schema.toml")

    # The researcher: MST, then a small AIM, each from a job file.
    mst_job = write_job(tmp_path / "mst.toml", data, "mst", 0.5, {"iters": 200}, "out-mst")
    aim_job = write_job(tmp_path / "aim.toml", data, "aim", 0.5,
                        {"degree": 2, "rounds": 12, "iters": 30, "final_iters": 100, "max_model_size": 1.0},
                        "out-aim")
    dpsynth("run", mst_job, "--check", "--no-progress")
    assert entry_count(Path("ledger.db")) == 0  # --check spends nothing
    out = dpsynth("run", mst_job, "--no-progress", "--no-evaluate")
    assert "run report:" in out
    dpsynth("run", aim_job, "--no-progress", "--no-evaluate")

    # Sample the saved models (load verifies their receipts); the synthetic tables fit the schema.
    from dpsynth.generators import AIM, MST

    mst, aim = MST.load("out-mst/model.pt", trust="keys/ledger.pub"), AIM.load("out-aim/model.pt", trust="keys/officer.pub")
    for model, name in ((mst, "out-mst"), (aim, "out-aim")):
        written = pd.read_csv(f"{name}/synthetic.csv")
        assert list(written.columns) == list(schema.names) and len(written) == 500
        schema.validate(written)
        assert Path(f"{name}/report.html").read_text().count(model.receipts[0].entry_hash[:16]) >= 1
    first_class = mst.sample(200, where={"Pclass": 0}, seed=1)
    assert len(first_class) == 200 and set(first_class["Pclass"]) == {0}
    schema.validate(aim.sample(100, seed=2))
    n_entries = entry_count(Path("ledger.db"))
    assert n_entries == len(mst.receipts) + len(aim.receipts)
    ledger_sequences = [r.sequence for r in mst.receipts + aim.receipts]
    assert ledger_sequences == list(range(1, n_entries + 1))

    # The auditor: export and verify against the pinned keys, and the receipts in the model files.
    dpsynth("ledger", "export", "ledger.db", "--format", "jsonl", "--out", "ledger.jsonl")
    pinned = ("--officer-key", "keys/officer.pub", "--ledger-pub", "keys/ledger.pub")
    ok = dpsynth("ledger", "verify", "ledger.jsonl", *pinned, "--receipts", "out-mst", "--receipts", "out-aim")
    assert f"OK: {n_entries} entries verified" in ok and f"{n_entries} receipt(s) found in the ledger" in ok
    assert f"OK: {n_entries} entries verified" in dpsynth("ledger", "verify", "ledger.db", *pinned)

    # Tamper: one byte of entry #2, in the export and in the ledger file itself.
    raw = Path("ledger.jsonl").read_bytes()
    second = aim.receipts[0] if len(mst.receipts) < 2 else mst.receipts[1]
    assert second.sequence == 2
    Path("tampered.jsonl").write_bytes(flip_purpose_byte(raw, second.entry_hash.encode()))
    bad = dpsynth("ledger", "verify", "tampered.jsonl", *pinned, expect=1)
    assert "first bad entry #2" in bad
    shutil.copy("ledger.db", "tampered.db")
    db = Path("tampered.db").read_bytes()
    Path("tampered.db").write_bytes(flip_purpose_byte(db, second.entry_hash.encode()))
    bad_db = dpsynth("ledger", "verify", "tampered.db", *pinned, expect=1)
    assert "first bad entry #2" in bad_db

    # Overspend: a run asking for more than is left is refused; nothing charged, nothing written.
    greedy = write_job(tmp_path / "greedy.toml", data, "mst", BUDGET_EPSILON, {"iters": 200}, "out-greedy")
    refused = dpsynth("run", greedy, "--no-progress", "--no-evaluate", expect=2)
    assert "nothing was charged" in refused
    assert entry_count(Path("ledger.db")) == n_entries
    assert not Path("out-greedy").exists()
    assert f"OK: {n_entries} entries verified" in dpsynth("ledger", "verify", "ledger.db", *pinned)
