"""PrivateTable: the only holder of rows; every measurement charged first, noise before data."""

from __future__ import annotations

import copy
import json
import math
import pickle

import numpy as np
import pandas as pd
import pytest

from accountant.events import (ComposedEvent, DiscreteGaussianEvent, ExponentialMechanismEvent,
                               NeighbouringRelation, event_from_json)
from accountant.fingerprint import fingerprint_table
from accountant.gate import BudgetExceeded, DatasetMismatch
from accountant.testing import make_test_gate
from dpsynth.noise.discrete_gaussian import sample_discrete_gaussian
from dpsynth.noise.randomness import SeededRandomSource
from dpsynth.table import NoisyMarginal, PrivateTable, UnchargedAccess
from dpsynth.table.rows import Rows

from .support import SCHEMA, exact_marginal, small_frame, table

REPLACE = NeighbouringRelation.REPLACE_ONE
COMMON = dict(purpose="test", generator="test", run_id="run-1")


def test_marginals_equal_exact_counts_plus_the_sources_discrete_gaussian(tmp_path):
    frame = small_frame()
    t = table(tmp_path, frame, seed=7)
    cliques = [("colour",), ("size", "count"), ("flag",)]
    sigmas = [2.0, 3.5, 1.0]
    out = t.measure_marginals(cliques, sigmas, **COMMON)
    codes = SCHEMA.encode(frame)
    codes_of = {n: codes[:, j] for j, n in enumerate(SCHEMA.names)}
    replay = SeededRandomSource(7)  # the same stream, drawn in the same order: noise first, per clique
    for m, c, s in zip(out, cliques, sigmas):
        shape = tuple(SCHEMA.domain()[n] for n in c)
        noise = sample_discrete_gaussian(s, int(np.prod(shape)), replay).reshape(shape)
        assert isinstance(m, NoisyMarginal) and m.clique == c and m.sigma == s
        assert m.values.dtype == np.int64 and m.values.shape == shape
        assert np.array_equal(m.values, exact_marginal(frame, codes_of, c, shape) + noise)


@pytest.mark.parametrize("relation, l2", [(NeighbouringRelation.ADD_OR_REMOVE_ONE, 1.0), (REPLACE, math.sqrt(2))])
def test_one_entry_per_batch_composing_discrete_gaussians(tmp_path, relation, l2):
    t = table(tmp_path, relation=relation)
    before = len(t.gate.spent_costs())
    t.measure_marginals([("colour",), ("flag", "count")], [2.0, 4.0], **COMMON)
    assert len(t.gate.spent_costs()) == before + 1
    receipt = t.charges[-1]
    event = event_from_json(receipt.event)
    assert event == ComposedEvent((DiscreteGaussianEvent(2.0, l2, relation=relation),
                                   DiscreteGaussianEvent(4.0, l2, relation=relation)))
    # rho = sum l2^2 / (2 sigma^2): the closed form, against the gate's own record
    assert receipt.run_id == "run-1" and receipt.generator == "test"
    from accountant.rdp import event_rho
    assert event_rho(event) == pytest.approx(l2 ** 2 / 8 + l2 ** 2 / 32, rel=1e-12)


def test_order_is_charge_then_noise_then_read(tmp_path, monkeypatch):
    t = table(tmp_path)
    order: list[str] = []
    charge = t.gate.charge
    monkeypatch.setattr(t.gate, "charge", lambda *a, **k: (order.append("charge"), charge(*a, **k))[1])
    words = t._source.words
    monkeypatch.setattr(t._source, "words", lambda n: (order.append("noise"), words(n))[1])
    reading = Rows.reading
    monkeypatch.setattr(Rows, "reading", lambda self, r: (order.append("read"), reading(self, r))[1])
    t.measure_marginals([("colour",)], 2.0, **COMMON)
    first = {k: order.index(k) for k in ("charge", "noise", "read")}
    assert first["charge"] < first["noise"] < first["read"]
    assert "noise" not in order[first["read"]:]


def test_refused_charge_reads_and_draws_nothing(tmp_path, monkeypatch):
    t = table(tmp_path, epsilon=0.1)
    monkeypatch.setattr(t._source, "words", lambda n: pytest.fail("noise drawn for a refused charge"))
    monkeypatch.setattr(Rows, "reading", lambda self, r: pytest.fail("rows read for a refused charge"))
    with pytest.raises(BudgetExceeded):
        t.measure_marginals([("colour",)], 0.01, **COMMON)
    assert t.receipts == () and t.gate.spent_costs() == []


def test_rows_are_unreachable_through_the_public_api(tmp_path):
    frame = small_frame()
    t = table(tmp_path, frame)
    assert repr(t) == "PrivateTable(columns=['colour', 'size', 'flag', 'count'], rows=<private>)"
    for name in dir(t):
        if name.startswith("_"):
            continue
        value = getattr(t, name)
        assert not isinstance(value, (pd.DataFrame, pd.Series, np.ndarray)), name
    with pytest.raises(TypeError):
        len(t)
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="cannot be pickled"):
            attempt(t)
    with pytest.raises(UnchargedAccess):
        t._PrivateTable__rows.codes  # the guard holds even for code that reaches inside
    with pytest.raises(UnchargedAccess):
        t._PrivateTable__rows.frame


def test_dataset_fingerprint_is_checked(tmp_path):
    frame = small_frame()
    key = b"k" * 32
    good = make_test_gate(tmp_path / "good", epsilon=5.0, dataset_fingerprint=fingerprint_table(frame, key)).gate
    PrivateTable(frame, SCHEMA, good, dataset_key=key, random_source=SeededRandomSource(0))
    other = frame.copy()
    other.loc[0, "size"] = 9.99
    with pytest.raises(DatasetMismatch):
        PrivateTable(other, SCHEMA, good, dataset_key=key, random_source=SeededRandomSource(0))
    with pytest.raises(ValueError, match="dataset_key is required"):
        PrivateTable(frame, SCHEMA, good, random_source=SeededRandomSource(0))


def test_noise_source_is_recorded(tmp_path):
    t = table(tmp_path)
    assert t.noise_source == "seeded-test"
    t.noisy_count(3.0, purpose="count")
    entry = t.gate._store.snapshot().entries[-1]
    assert entry.noise_source == "seeded-test"
    frame = small_frame()
    prod = make_test_gate(tmp_path / "prod", epsilon=5.0, allow_seeded_noise=False, frame=frame)
    with pytest.raises(PermissionError, match="seeded"):
        PrivateTable(frame, SCHEMA, prod.gate, dataset_key=prod.dataset_key, random_source=SeededRandomSource(0))
    secure = PrivateTable(frame, SCHEMA, prod.gate, dataset_key=prod.dataset_key)
    assert secure.noise_source == "secure"
    assert isinstance(secure.noisy_count(3.0, purpose="count"), int)
    assert prod.gate._store.snapshot().entries[-2].noise_source == "secure"


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, "2", True, None])
def test_privacy_parameters_are_validated(tmp_path, bad):
    t = table(tmp_path)
    with pytest.raises((ValueError, TypeError)):
        t.measure_marginals([("colour",)], bad, **COMMON)
    with pytest.raises((ValueError, TypeError)):
        t.select_marginal([("colour",)], [np.zeros(3)], bad, **COMMON)
    with pytest.raises((ValueError, TypeError)):
        t.noisy_count(bad, purpose="count")
    with pytest.raises((ValueError, TypeError)):
        t.quantiles("size", [0.5], bad, purpose="q")
    assert t.gate.spent_costs() == []


@pytest.mark.parametrize("delta", [0, 1, -0.5, 1.5, math.nan])
def test_delta_is_validated(tmp_path, delta):
    t = table(tmp_path, schema=SCHEMA)
    with pytest.raises((ValueError, TypeError)):
        t.discover_categories("colour", 1.0, delta, purpose="keys")


def test_bad_cliques_spend_nothing(tmp_path):
    t = table(tmp_path)
    for cliques in ([("nope",)], [("colour", "colour")], [], "colour", [("colour",), "flag"]):
        with pytest.raises((ValueError, TypeError, KeyError)):
            t.measure_marginals(cliques, 1.0, **COMMON)
    with pytest.raises(ValueError, match="2 entries for 1"):
        t.measure_marginals([("colour",)], [1.0, 2.0], **COMMON)
    assert t.gate.spent_costs() == []


def test_select_marginal_scores_and_event(tmp_path):
    frame = small_frame()
    t = table(tmp_path, frame, relation=REPLACE, epsilon=1000.0)
    codes = SCHEMA.encode(frame)
    codes_of = {n: codes[:, j] for j, n in enumerate(SCHEMA.names)}
    cands = [("colour",), ("flag",), ("size",)]
    shapes = [(3,), (2,), (5,)]
    exact = [exact_marginal(frame, codes_of, c, s) for c, s in zip(cands, shapes)]
    # The model is exact on colour and size and off on flag by 30 in L1: with a loud epsilon
    # the mechanism picks flag (P[other] <= 2 exp(-eps*30/(2*2)) with Δ = 2 under replace-one).
    est = [exact[0].astype(float), exact[1] + np.array([15.0, -15.0]), exact[2].astype(float)]
    picks = {t.select_marginal(cands, est, 20.0, **COMMON) for _ in range(3)}
    assert picks == {1}
    receipt = t.charges[-1]
    assert event_from_json(receipt.event) == ExponentialMechanismEvent(20.0, relation=REPLACE)
    entry = t.gate._store.snapshot().entries[-2]
    assert entry.parameters["sensitivity"] == 2.0  # max|w| = 1, doubled under replace-one


def test_select_marginal_validates_estimates(tmp_path):
    t = table(tmp_path)
    with pytest.raises(ValueError, match="shape"):
        t.select_marginal([("colour",)], [np.zeros(2)], 1.0, **COMMON)
    with pytest.raises(ValueError, match="finite"):
        t.select_marginal([("colour",)], [np.array([np.nan, 0, 0])], 1.0, **COMMON)
    with pytest.raises(ValueError, match="non-zero"):
        t.select_marginal([("colour",)], [np.zeros(3)], 1.0, weights=[0.0], **COMMON)
    assert t.gate.spent_costs() == []


def test_noisy_count(tmp_path):
    frame = small_frame(n=80)
    t = table(tmp_path, frame, seed=3)
    got = t.noisy_count(2.0, purpose="count")
    assert got == 80 + int(sample_discrete_gaussian(2.0, 1, SeededRandomSource(3))[0])
    assert event_from_json(t.charges[-1].event) == DiscreteGaussianEvent(2.0, 1.0)


def test_ledger_parameters_describe_the_query(tmp_path):
    t = table(tmp_path)
    t.measure_marginals([("colour", "flag")], 2.0, parameters={"round": 3}, **COMMON)
    entry = t.gate._store.snapshot().entries[-2]
    assert entry.parameters["measurement"] == "marginals"
    assert entry.parameters["cliques"] == [["colour", "flag"]]
    assert entry.parameters["round"] == 3
    assert json.dumps(entry.parameters)  # nothing private, all JSON
