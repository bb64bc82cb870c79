"""The sensitivity constants of proofs/*.md, checked on random neighbouring datasets.

Brute-force definitions here are written independently of dpsynth.table.queries.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dpsynth.table.queries import key_counts, marginal_counts, quantile_scores, selection_scores

import pandas as pd

values = st.lists(st.integers(0, 6), min_size=1, max_size=30)
levels = st.floats(0.01, 0.99)
GRID = np.arange(-1, 9, 0.5)


def brute_quantile_utility(xs, c, q):
    lo = sum(1 for x in xs if x < c)
    hi = sum(1 for x in xs if x <= c)
    t = q * len(xs)
    return 0.0 if lo <= t <= hi else -min(abs(t - lo), abs(t - hi))


def neighbours(xs, new):
    yield xs + [new]                       # add
    if len(xs) > 1:
        yield xs[1:]                       # remove
    yield [new] + xs[1:]                   # replace


@settings(max_examples=80, deadline=None)
@given(values, st.integers(0, 6), levels)
def test_quantile_utility_matches_definition_and_has_sensitivity_one(xs, new, q):
    u = quantile_scores(np.array(xs, float), GRID, q)
    assert np.allclose(u, [brute_quantile_utility(xs, c, q) for c in GRID])
    for ys in neighbours(xs, new):
        v = quantile_scores(np.array(ys, float), GRID, q)
        assert np.max(np.abs(u - v)) <= 1.0 + 1e-12  # proofs/quantiles.md: Δu = 1


rows = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=25)


@settings(max_examples=80, deadline=None)
@given(rows, st.tuples(st.integers(0, 2), st.integers(0, 3)))
def test_marginal_l2_sensitivity(rs, new):
    base = np.array(rs)
    for ys in neighbours(rs, new):
        other = np.array(ys)
        d = marginal_counts(base, [0, 1], (3, 4)) - marginal_counts(other, [0, 1], (3, 4))
        l2 = math.sqrt(float((d * d).sum()))
        add_remove = len(ys) != len(rs)
        assert l2 <= (1.0 if add_remove else math.sqrt(2)) + 1e-12  # proofs/marginals.md


@settings(max_examples=60, deadline=None)
@given(rows, st.tuples(st.integers(0, 2), st.integers(0, 3)), st.floats(-3, 3), st.floats(-3, 3))
def test_selection_score_sensitivity(rs, new, w0, w1):
    est = [np.full((3,), 1.3), np.full((3, 4), 0.7)]
    base = np.array(rs)
    s = selection_scores([marginal_counts(base, [0], (3,)), marginal_counts(base, [0, 1], (3, 4))], est,
                         [w0, w1], [0.5, -2.0])
    for ys in neighbours(rs, new):
        o = np.array(ys)
        t = selection_scores([marginal_counts(o, [0], (3,)), marginal_counts(o, [0, 1], (3, 4))], est,
                             [w0, w1], [0.5, -2.0])
        bound = max(abs(w0), abs(w1)) * (1 if len(ys) != len(rs) else 2)
        assert np.max(np.abs(s - t)) <= bound + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=20), st.sampled_from(["a", "e"]))
def test_key_counts_neighbours(keys, new):
    """proofs/key_discovery.md: shared keys move by L2 <= 1 (add/remove), <= sqrt 2 (replace);
    a key on one side only is held by exactly one record."""
    a = key_counts(pd.Series(keys))
    for ys in neighbours(keys, new):
        b = key_counts(pd.Series(ys))
        union = set(a) | set(b)
        l2 = math.sqrt(sum((a.get(k, 0) - b.get(k, 0)) ** 2 for k in union))
        assert l2 <= (1.0 if len(ys) != len(keys) else math.sqrt(2)) + 1e-12
        for k in set(a) ^ set(b):
            assert a.get(k, 0) + b.get(k, 0) == 1
