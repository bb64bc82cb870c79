"""The ledger's fast record-to-dict (`accountant.ledger.plain.plain_fields`) is `dataclasses.asdict`:
the same values of the same types, so every entry serialises and hashes to the same bytes — on a
ledger written before it existed, and on a fresh one holding an AIM-sized selection query."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from accountant.events import ExponentialMechanismEvent
from accountant.export import read_jsonl, to_jsonl
from accountant.ledger.hashing import canonical_json
from accountant.ledger.plain import plain_fields
from accountant.receipt import Receipt
from accountant.testing import make_test_gate
from accountant.verify import verify_path, verify_snapshot

FIXTURE = Path(__file__).parent / "data" / "pre_delta_reserve_ledger.jsonl"


def same(a, b) -> bool:
    """Equal values of identical types, all the way down (== alone says 1 == 1.0 == True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def test_a_ledger_written_before_it_serialises_to_its_stored_bytes():
    # The export's lines were written by the asdict-based code: an independent record of the bytes.
    snapshot, problems, _ = read_jsonl(FIXTURE)
    assert snapshot is not None and not problems
    assert to_jsonl(snapshot) == FIXTURE.read_text()
    for e in snapshot.entries:
        assert same(plain_fields(e), dataclasses.asdict(e))
        assert e.compute_hash() == e.entry_hash
    assert same(plain_fields(snapshot.metadata), dataclasses.asdict(snapshot.metadata))
    assert verify_path(FIXTURE).ok


def selection_parameters(k: int = 575) -> dict:
    rng = np.random.default_rng(0)
    return {"measurement": "select", "candidates": [[f"c{i}", f"c{i + 1}", f"c{i + 2}"] for i in range(k)],
            "epsilon": 0.0123, "weights": [float(w) for w in rng.uniform(1, 4, k)],
            "offsets": [float(o) for o in -rng.uniform(10, 1e4, k)], "sensitivity": 3.5,
            "nested": {"flags": [True, False, None], "n": 7, "t": "x"}}


def test_a_fresh_ledger_with_a_large_selection_entry(tmp_path):
    t = make_test_gate(tmp_path, epsilon=1.0)
    charge = t.gate.charge([ExponentialMechanismEvent(0.01)], purpose="AIM: select", generator="aim",
                           parameters=selection_parameters(), run_id="r1")
    t.gate.release(charge, "ab" * 32)
    snapshot = t.gate.snapshot()
    assert len(snapshot.entries) == 2
    for e in snapshot.entries:
        assert same(plain_fields(e), dataclasses.asdict(e))
        assert same(e.to_dict(), {k: v for k, v in dataclasses.asdict(e).items() if k != "request_id"})
        assert e.compute_hash() == e.entry_hash
    assert same(plain_fields(charge), dataclasses.asdict(charge))
    assert canonical_json(charge.to_dict()) == canonical_json(snapshot.entries[0].to_dict())
    assert Receipt.from_dict(json.loads(json.dumps(charge.to_dict()))).entry_hash == charge.entry_hash
    assert verify_snapshot(snapshot, officer_public_key=t.officer_pub, ledger_public_key=t.ledger_pub).ok


def test_the_copy_is_deep():
    t = make_test_gate(None, epsilon=1.0)
    charge = t.gate.charge([ExponentialMechanismEvent(0.01)], purpose="p", generator="aim",
                           parameters=selection_parameters(5), run_id="r1")
    d = charge.to_dict()
    d["parameters"]["candidates"][0][0] = "edited"
    d["parameters"]["nested"]["flags"].append(1)
    assert charge.parameters["candidates"][0][0] == "c0"
    assert charge.parameters["nested"]["flags"] == [True, False, None]
    assert charge.entry().compute_hash() == charge.entry_hash


@dataclasses.dataclass(frozen=True)
class Inner:
    x: list


@dataclasses.dataclass(frozen=True)
class Odd:
    a: dict
    b: tuple
    c: object


class MyDict(dict):
    pass


def test_anything_but_plain_json_falls_back_to_asdict():
    for c in (Inner([1, 2]), np.float64(1.5), MyDict(k=[1]), np.arange(3)):
        record = Odd({"k": [1, (2, 3)]}, (1, [2]), c)
        got, want = plain_fields(record), dataclasses.asdict(record)
        assert type(got["c"]) is type(want["c"])
        assert same(got["a"], want["a"]) and same(got["b"], want["b"])
    assert plain_fields(Odd({}, (), Inner([1])))["c"] == {"x": [1]}  # a nested dataclass becomes a dict
