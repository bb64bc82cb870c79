"""The exact marginal counts the table keeps between measurements (`Rows.marginals`, issue 20).

They change nothing that is released or charged (a seeded AIM fit writes the same ledger with
and without them), they are the exact counts, and they are guarded like the rows: readable
only inside a charged measurement, never handed out (copies only), never pickled or copied,
absent from a fitted generator and its model file, dropped when the codes change."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import dpsynth.table.rows as rows_module
from accountant.testing import make_test_gate
from dpsynth.generators import AIM
from dpsynth.table import UnchargedAccess

from .support import SCHEMA, exact_marginal, small_frame, table

COMMON = dict(purpose="test", generator="test", run_id="run-1")


def held(t):
    return t._PrivateTable__rows  # what code reaching inside the table finds


def codes_of(frame):
    codes = SCHEMA.encode(frame)
    return {n: codes[:, j] for j, n in enumerate(SCHEMA.names)}


def test_kept_counts_are_the_exact_counts_in_any_axis_order(tmp_path):
    frame = small_frame(200)
    t = table(tmp_path, frame, seed=3)
    estimates = [np.zeros((3, 5, 2)), np.zeros((2, 4))]
    t.select_marginal([("colour", "size", "flag"), ("flag", "count")], estimates, 1.0, **COMMON)
    kept = dict(held(t)._kept)
    assert kept  # the selection's counts were kept
    # Asked again, transposed and nested: the releases are exact + the seeded noise.
    out = t.measure_marginals([("flag", "colour"), ("count", "flag"), ("size",)], 2.0, **COMMON)
    replay = table(tmp_path / "again", frame, seed=3)
    replay.select_marginal([("colour", "size", "flag"), ("flag", "count")], estimates, 1.0, **COMMON)
    rows_module_cap = rows_module.MAX_KEPT_CELLS
    try:
        rows_module.MAX_KEPT_CELLS = 0  # nothing kept: every count read from the rows again
        fresh = replay.measure_marginals([("flag", "colour"), ("count", "flag"), ("size",)], 2.0, **COMMON)
    finally:
        rows_module.MAX_KEPT_CELLS = rows_module_cap
    codes = codes_of(frame)
    for a, b in zip(out, fresh):
        np.testing.assert_array_equal(a.values, b.values)
    # and what is kept is pandas' count (a second implementation)
    for key, table_ in held(t)._kept.items():
        names = [SCHEMA.names[j] for j in key]
        want = exact_marginal(frame, codes, tuple(names), table_.shape)
        np.testing.assert_array_equal(table_, want)


def test_kept_counts_are_read_only_inside_a_charged_measurement_and_leave_as_copies(tmp_path):
    t = table(tmp_path, small_frame(100))
    t.select_marginal([("colour", "flag")], [np.zeros((3, 2))], 1.0, **COMMON)
    rows = held(t)
    with pytest.raises(UnchargedAccess):
        rows.marginals([[0, 2]], [[3, 2]])  # no reading open, however the holder was reached
    receipt = t.charges[-1]
    with rows.reading(receipt):
        (first,) = rows.marginals([[0, 2]], [[3, 2]])
        first[:] = -7  # a caller editing what it got must not edit what is kept
        (again,) = rows.marginals([[0, 2]], [[3, 2]])
    assert (again >= 0).all() and again.sum() == 100
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="cannot be pickled"):
            attempt(t)
        with pytest.raises(TypeError, match="cannot be pickled"):
            attempt(rows)


def test_kept_counts_go_when_the_codes_change(tmp_path):
    t = table(tmp_path, small_frame(50))
    t.select_marginal([("colour", "flag")], [np.zeros((3, 2))], 1.0, **COMMON)
    rows = held(t)
    assert rows._kept and rows._kept_cells > 0
    rows.recode(rows._codes)
    assert rows._kept == {} and rows._kept_cells == 0


def test_the_cap_bounds_what_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(rows_module, "MAX_KEPT_CELLS", 6)
    t = table(tmp_path, small_frame(80))
    t.select_marginal([("colour", "size"), ("colour", "flag")], [np.zeros((3, 5)), np.zeros((3, 2))], 1.0, **COMMON)
    assert held(t)._kept_cells <= 6


def _aim_fit(tmp_path, frame, schema, keep: bool, monkeypatch):
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    monkeypatch.setattr(rows_module, "MAX_KEPT_CELLS", 2**24 if keep else 0)
    ledger = make_test_gate(tmp_path, epsilon=2.0, delta=1e-9, frame=frame)
    t = PrivateTable(frame, schema, ledger.gate, dataset_key=ledger.dataset_key, random_source=SeededRandomSource(5))
    g = AIM(epsilon=2.0, rounds=12, iters=30, final_iters=60)
    g.fit(t)
    entries = ledger.gate.snapshot().entries
    return t, g, ledger, entries


def test_a_seeded_aim_fit_charges_and_releases_the_same_with_kept_counts(tmp_path, monkeypatch):
    from tests.generators.marginal_support import adult_hd_slice

    frame, schema = adult_hd_slice(["age", "sex", "race", "income>50K", "hours-per-week"], rows=3000)
    t, g, ledger, kept = _aim_fit(tmp_path / "kept", frame, schema, True, monkeypatch)
    _, g0, _, plain = _aim_fit(tmp_path / "plain", frame, schema, False, monkeypatch)
    assert held(t)._kept  # the kept run did keep counts
    assert [e.kind for e in kept] == [e.kind for e in plain]
    for a, b in zip(kept, plain):
        assert (a.event, a.purpose, a.parameters, a.cost, a.rho) == (b.event, b.purpose, b.parameters, b.cost, b.rho)
        if a.kind == "release":
            assert a.commitment == b.commitment  # the same outputs left the table
    assert [r["clique"] for r in g.fit_log["rounds"]] == [r["clique"] for r in g0.fit_log["rounds"]]
    # What a caller holds after the fit carries none of the kept counts: the generator (and so
    # its pickle and its model file) never saw them.
    blob = pickle.dumps(g.__dict__.get("model"))
    path = tmp_path / "model.dpsynth"
    g.save(path)
    saved = path.read_bytes()
    for key, counts in held(t)._kept.items():
        if counts.size < 8:
            continue
        for form in (counts, counts.astype(np.float64), counts.astype(np.float32)):
            raw = np.ascontiguousarray(form).tobytes()
            assert raw not in blob and raw not in saved, key
    assert not any(isinstance(v, type(held(t))) for v in vars(g).values())
