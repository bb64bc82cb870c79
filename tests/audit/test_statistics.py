"""The audit's statistics, computed by hand on small inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dpsynth.audit.statistics import has_marginal_releases, marginal_lrt, target_count, value_count
from dpsynth.audit.worlds import worst_case_pair
from dpsynth.generators.marginal.compression import Compression
from dpsynth.table.measurement import NoisyMarginal


def test_black_box_counts():
    synth = pd.DataFrame({"a": [1, 1, 0, 1], "b": [1, 0, 0, 1], "c": [1, 1, 0, 0]})
    target = {"a": 1, "b": 1, "c": 1}
    assert target_count(synth, target) == 1          # only the first row is (1,1,1)
    assert value_count(synth, target) == 3 + 2 + 2   # cells equal to 1, column by column
    with pytest.raises(ValueError, match="'d'"):
        target_count(synth, {"d": 1})


def _model(releases, compression=None):
    return SimpleNamespace(releases=releases, compression=compression)


def test_marginal_lrt_by_hand():
    pair = worst_case_pair("mst")  # D′ = 4 × (0,0,0), D = D′ + (1,1,1)
    one_a = NoisyMarginal(("a",), np.array([6, -1], dtype=np.int64), 2.0)
    ab = NoisyMarginal(("a", "b"), np.array([[3, 1], [0, 2]], dtype=np.int64), 4.0)
    model = _model([(1, "marginals", [one_a]), (3, "select", 0), (5, "marginals", [ab])])
    # (noisy − D′) · (D − D′) / σ²: D − D′ is +1 in the target's cell only.
    expected = (-1 - 0) / 4.0 + (2 - 0) / 16.0
    assert marginal_lrt(model, pair.schema, pair.out, pair.in_) == pytest.approx(expected)
    assert has_marginal_releases(model) and not has_marginal_releases(_model([(1, "select", 0)]))
    with pytest.raises(ValueError, match="no noisy marginal"):
        marginal_lrt(_model([(1, "select", 0)]), pair.schema, pair.out, pair.in_)


def test_marginal_lrt_under_replace_one_and_compression():
    pair = worst_case_pair("mst", "replace_one")  # D′ = 5 × (0,0,0), D = 4 × (0,0,0) + (1,1,1)
    a = NoisyMarginal(("a",), np.array([4, 3], dtype=np.int64), 1.0)
    # D − D′ on (a,) is (−1, +1): the target replaces one ordinary record.
    expected = (4 - 5) * -1 + (3 - 0) * 1
    assert marginal_lrt(_model([(1, "marginals", [a])]), pair.schema, pair.out, pair.in_) == pytest.approx(expected)
    # A column measured on a compressed domain (one cell for both codes): D − D′ is 0 there.
    comp = Compression({"a": 2, "b": 2, "c": 2}, {"a": np.array([], dtype=np.int64), "b": np.array([0, 1]),
                                                  "c": np.array([0, 1])})
    ab = NoisyMarginal(("a", "b"), np.array([[2, 7]], dtype=np.int64), 1.0)
    # cells (merged, b=0): D′ 5, D 4; (merged, b=1): D′ 0, D 1.
    expected = (2 - 5) * -1 + (7 - 0) * 1
    assert marginal_lrt(_model([(1, "marginals", [ab])], comp), pair.schema, pair.out, pair.in_) == pytest.approx(
        expected)


def test_the_worlds_are_neighbours_under_their_relation():
    for gen in ("mst", "aim", "independent", "dpctgan", "pategan"):
        add = worst_case_pair(gen)
        assert len(add.in_) == len(add.out) + 1
        assert add.in_.iloc[:-1].equals(add.out) and tuple(add.in_.iloc[-1]) == (1, 1, 1)
        rep = worst_case_pair(gen, "replace_one")
        assert len(rep.in_) == len(rep.out)
        assert int((rep.in_.values != rep.out.values).any(axis=1).sum()) == 1  # exactly one record differs
        assert add.why and rep.relation == "replace_one"
    with pytest.raises(ValueError, match="unknown generator 'ctgan'"):
        worst_case_pair("ctgan")
