"""The service benchmarks' harness: results merged by configuration, the .md rendered from the
.json and ending with the commands that produced its rows.  Fast: no service is started."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        return module
    finally:
        sys.modules.pop(spec.name, None)


def _charges(backend, rate, command):
    return {"part": "charges", "backend": backend, "clients": 64, "charges": 512, "entries": 1024, "wall_s": 512 / rate,
            "charges_per_s": rate, "service_cpu_s": 9.0, "postgres_cpu_s": 1.5 if backend == "postgres" else None,
            "clients_cpu_s": 0.9, "verified": True, "command": command}


def test_a_rerun_replaces_its_configuration_and_keeps_the_others(tmp_path):
    svc = _load("service")
    svc.save([_charges("sqlite", 10.0, "cmd-a"), _charges("postgres", 8.0, "cmd-a")], tmp_path)
    merged = svc.save([_charges("sqlite", 20.0, "cmd-b")], tmp_path)
    assert sorted((r["backend"], r["charges_per_s"]) for r in merged) == [("postgres", 8.0), ("sqlite", 20.0)]
    assert json.loads((tmp_path / "service.json").read_text()) == merged
    md = (tmp_path / "service.md").read_text()
    assert "| sqlite | 64 | 512 | 1024 | 25.60 | 20.0 |" in md and "| 1.50 |" in md
    assert "10.0" not in md.split("## A remote")[0].split("| sqlite")[1]
    # Ends with what produced the rows it shows, in order.
    tail = md.rstrip().splitlines()[-2:]
    assert tail == ["    cmd-a", "    cmd-b"]


def test_an_unverified_run_shows_as_such():
    svc = _load("service")
    run = _charges("sqlite", 10.0, "c")
    run["verified"] = False
    assert "| NO |" in svc.render([run])


@pytest.mark.parametrize("outcomes", [{"answered": 3, "lost-stored": 1}, {}])
def test_the_kill_table_counts_every_outcome_and_zero_for_the_missing(outcomes):
    kills = _load("service_kills")
    run = {"ledger": "sqlite", "kills": sum(outcomes.values()), "seed": 7, "outcomes": outcomes, "answers": 4,
           "retried_after_kill": 1, "entries": 8, "held": True, "wall_s": 12.0, "restart_wall_median_s": 1.5,
           "restart_wall_max_s": 2.0, "restart_cpu_median_s": 1.2, "command": "python benchmarks/service_kills.py"}
    row = [line for line in kills.render([run]).splitlines() if line.startswith("| sqlite")][0]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:7] == [str(outcomes.get(o, 0)) for o in kills.OUTCOMES]
