"""Ancestral and conditional sampling against model / brute-force probabilities."""

import math

import numpy as np
import torch
import pytest
from scipy.stats import chisquare

from dpsynth.pgm import CliqueVector, Domain, Factor, GraphicalModel

from .helpers import brute_marginal, counts, joint_probability, random_model

DOMAIN = Domain(list("abcdef"), [2, 3, 2, 4, 3, 2])
CYCLIC = [("a", "b"), ("b", "c"), ("c", "d"), ("d", "a"), ("d", "e"), ("e", "f", "a")]
P_MIN = 1e-4  # seeded draws, so each test is deterministic; a real bias gives p ~ 0


def chi2_pvalue(observed: np.ndarray, probabilities: np.ndarray) -> float:
    observed = observed.reshape(-1).astype(float)
    expected = probabilities.reshape(-1) / probabilities.sum() * observed.sum()
    return chisquare(observed, expected).pvalue


def test_sample_frequencies_match_model_marginals():
    model = random_model(DOMAIN, CYCLIC, seed=4, scale=1.0)
    rows = model.sample(40_000, rng=np.random.default_rng(1))
    assert rows.shape == (40_000, 6) and rows.dtype == np.int64
    assert (rows >= 0).all() and (rows < np.array(DOMAIN.shape)).all()
    joint = joint_probability(model)
    for attrs in [("a", "b"), ("c", "d"), ("a", "e", "f"), ("b", "e"), ("a", "c", "d")]:
        assert chi2_pvalue(counts(rows, DOMAIN, attrs), brute_marginal(DOMAIN, joint, attrs)) > P_MIN, attrs


def test_sampling_is_reproducible_with_the_same_generator():
    model = random_model(DOMAIN, CYCLIC, seed=4)
    a = model.sample(100, rng=np.random.default_rng(7))
    b = model.sample(100, rng=np.random.default_rng(7))
    assert (a == b).all()
    assert model.sample(0, rng=np.random.default_rng(7)).shape == (0, 6)


def test_conditional_sampling_fixes_values_and_matches_brute_force_conditional():
    model = random_model(DOMAIN, CYCLIC, seed=9, scale=1.2)
    where = {"b": 2, "e": [0, 2]}
    rows = model.sample(30_000, where=where, rng=np.random.default_rng(3))
    assert (rows[:, DOMAIN.attrs.index("b")] == 2).all()
    assert np.isin(rows[:, DOMAIN.attrs.index("e")], [0, 2]).all()
    # p(x | b = 2, e in {0, 2}) by brute force on the full joint
    joint = joint_probability(model)
    conditional = joint.copy()
    conditional[:, [0, 1], ...] = 0
    conditional[:, :, :, :, [1], :] = 0
    conditional /= conditional.sum()
    for attrs in [("a", "c"), ("d", "f"), ("e", "a"), ("a", "c", "d")]:
        expected = brute_marginal(DOMAIN, conditional, attrs)
        observed = counts(rows, DOMAIN, attrs)
        support = expected > 0
        assert observed[~support].sum() == 0
        assert chi2_pvalue(observed[support], expected[support]) > P_MIN, attrs


def test_conditioning_on_every_attribute_returns_that_row():
    model = random_model(DOMAIN, CYCLIC, seed=1)
    fixed = dict(zip(DOMAIN.attrs, [1, 2, 0, 3, 1, 1]))
    rows = model.sample(5, where=fixed, rng=np.random.default_rng(0))
    assert (rows == np.array([1, 2, 0, 3, 1, 1])).all()


def test_where_errors_name_the_attribute():
    model = random_model(DOMAIN, CYCLIC, seed=1)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="'zz'"):
        model.sample(3, where={"zz": 0}, rng=rng)
    with pytest.raises(ValueError, match="'b'.*outside"):
        model.sample(3, where={"b": 3}, rng=rng)
    with pytest.raises(ValueError, match="'c'.*no allowed"):
        model.sample(3, where={"c": []}, rng=rng)
    with pytest.raises(ValueError, match="non-negative"):
        model.sample(-1, rng=rng)


def test_state_round_trip_is_exact():
    model = random_model(DOMAIN, CYCLIC, seed=5, total=777.0)
    meta, arrays = model.to_state_meta(), model.to_state_arrays()
    import json

    meta = json.loads(json.dumps(meta))
    again = GraphicalModel.from_state(meta, arrays, device="cpu")
    assert again.cliques == model.cliques and again.total == model.total and again.domain == model.domain
    for cl in model.cliques:
        assert np.array_equal(again.potentials[cl].numpy(), model.potentials[cl].numpy())
    assert (again.sample(50, rng=np.random.default_rng(2)) == model.sample(50, rng=np.random.default_rng(2))).all()
    with pytest.raises(ValueError, match="format"):
        GraphicalModel.from_state({**meta, "format": "other"}, arrays)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    cpu = random_model(DOMAIN, CYCLIC, seed=5)
    meta, arrays = cpu.to_state_meta(), cpu.to_state_arrays()
    gpu = GraphicalModel.from_state(meta, arrays, device="cuda")
    np.testing.assert_allclose(gpu.project(("a", "d", "f")), cpu.project(("a", "d", "f")), atol=1e-9)
    rows = gpu.sample(1000, where={"a": 1}, rng=np.random.default_rng(0))
    assert (rows[:, 0] == 1).all()


def test_systematic_sampling_is_unbiased_on_every_marginal():
    # Pooled over many small draws (so the group sizes vary), the frequencies follow
    # the model; a spurious dependence between attributes from different cliques
    # (rows not matched to ranks at random) would bias the cross-clique marginals.
    model = random_model(DOMAIN, CYCLIC, seed=4, scale=1.0)
    rng = np.random.default_rng(5)
    rows = np.concatenate([model.sample(37, rng=rng, method="systematic") for _ in range(800)])
    joint = joint_probability(model)
    for attrs in [("a", "b"), ("c", "d"), ("a", "e", "f"), ("b", "e"), ("a", "c", "d"), ("b", "d", "f")]:
        assert chi2_pvalue(counts(rows, DOMAIN, attrs), brute_marginal(DOMAIN, joint, attrs)) > P_MIN, attrs


def test_systematic_sampling_keeps_conditional_cells_within_one_of_expectation():
    model = random_model(DOMAIN, CYCLIC, seed=6, scale=1.0)
    n = 5_000
    rows = model.sample(n, rng=np.random.default_rng(2), method="systematic")
    joint = joint_probability(model)
    tree = model.tree
    for node in tree.order:
        clique, sep = tree.maximal[node], tree.separator[node]
        new = tuple(a for a in clique if a not in sep)
        if not new:
            continue
        observed = counts(rows, DOMAIN, sep + new).reshape(DOMAIN.size(sep), DOMAIN.size(new))
        p = brute_marginal(DOMAIN, joint, sep + new).reshape(DOMAIN.size(sep), DOMAIN.size(new))
        expected = observed.sum(axis=1, keepdims=True) * p / p.sum(axis=1, keepdims=True)
        assert np.abs(observed - expected).max() < 1.0 + 1e-9, (sep, new)
    iid = model.sample(n, rng=np.random.default_rng(2))
    root = tree.maximal[tree.order[0]]
    p_root = brute_marginal(DOMAIN, joint, root).reshape(-1)
    err = [np.abs(counts(r, DOMAIN, root).reshape(-1) / n - p_root).sum() for r in (rows, iid)]
    assert err[0] < err[1] / 3  # iid multinomial error is of order sqrt(cells / n)


def test_unknown_sampling_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        random_model(DOMAIN, CYCLIC, seed=1).sample(5, method="round")


@pytest.mark.parametrize("method", ["iid", "systematic"])
def test_zero_probability_separator_values_do_not_disturb_sampling(method):
    # A -inf log-potential makes b = 1 impossible; the conditional table of the next
    # clique then has an all-zero row.  That row is never drawn, and it must not corrupt
    # the draws of the other rows (one NaN in the stacked CDF breaks searchsorted).
    domain = Domain(["a", "b", "c"], [2, 3, 4])
    rng = np.random.default_rng(0)
    ab = torch.as_tensor(rng.normal(size=(2, 3)))
    ab[:, 1] = -math.inf
    bc = torch.as_tensor(rng.normal(size=(3, 4)))
    model = GraphicalModel(domain, CliqueVector({("a", "b"): Factor(domain.project(("a", "b")), ab),
                                                 ("b", "c"): Factor(domain.project(("b", "c")), bc)}), total=1.0)
    rows = model.sample(60_000, rng=np.random.default_rng(1), method=method)
    assert not (rows[:, 1] == 1).any()
    joint = np.exp(ab.numpy()[:, :, None] + bc.numpy()[None, :, :])
    joint /= joint.sum()
    for attrs, axes in [(("a",), (1, 2)), (("a", "b"), (2,)), (("b", "c"), (0,))]:
        np.testing.assert_allclose(model.project(attrs), joint.sum(axis=axes), atol=1e-12)  # no NaN
    for attrs, axes in [(("b", "c"), (0,)), (("a", "c"), (1,))]:
        expected = joint.sum(axis=axes)
        observed = counts(rows, domain, attrs)
        support = expected > 0
        assert observed[~support].sum() == 0
        assert chi2_pvalue(observed[support], expected[support]) > P_MIN, attrs
