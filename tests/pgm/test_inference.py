"""Exact inference against brute force over the full joint table."""

import numpy as np
import pytest
import torch

from dpsynth.pgm import CliqueVector, Domain, Factor, GraphicalModel

from .helpers import all_subsets, brute_marginal, joint_log_potential, joint_probability, random_model

DOMAIN = Domain(list("abcdef"), [2, 3, 2, 4, 3, 2])
CLIQUE_SETS = {
    "tree": [("a", "b"), ("b", "c"), ("b", "d"), ("d", "e"), ("e", "f")],
    "five-cycle": [("a", "b"), ("b", "c"), ("c", "d"), ("d", "e"), ("e", "a"), ("f",)],
    "two cycles sharing an edge": [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "b"), ("e", "f")],
    "triples": [("a", "b", "c"), ("c", "d", "e"), ("e", "f", "a"), ("b", "d")],
    "forest": [("a", "b"), ("c", "d"), ("e",)],
}


@pytest.mark.parametrize("name", list(CLIQUE_SETS))
def test_every_marginal_matches_the_full_joint(name):
    model = random_model(DOMAIN, CLIQUE_SETS[name], seed=len(name), scale=1.5)
    joint = joint_probability(model)
    for attrs in all_subsets(DOMAIN.attrs, (1, 2, 3)):
        got = model.project(attrs) / model.total
        np.testing.assert_allclose(got, brute_marginal(DOMAIN, joint, attrs), atol=1e-12, err_msg=str(attrs))
    # attribute order of the request is respected, even across cliques
    attrs = ("f", "c", "a")
    np.testing.assert_allclose(model.project(attrs) / model.total, brute_marginal(DOMAIN, joint, attrs), atol=1e-12)
    np.testing.assert_allclose(model.project(DOMAIN.attrs) / model.total, joint, atol=1e-12)


@pytest.mark.parametrize("name", list(CLIQUE_SETS))
def test_log_partition_matches_the_full_joint(name):
    model = random_model(DOMAIN, CLIQUE_SETS[name], seed=7, scale=3.0)
    logp = joint_log_potential(model)
    expected = np.log(np.exp(logp - logp.max()).sum()) + logp.max()
    assert model.log_partition == pytest.approx(expected, abs=1e-10)


def test_counts_scale_with_total():
    model = random_model(DOMAIN, CLIQUE_SETS["tree"], seed=1, total=1234.5)
    assert model.project(("a",)).sum() == pytest.approx(1234.5)
    assert model.project(("a", "d", "f")).shape == (2, 4, 2)


def test_extreme_potentials_stay_finite():
    # log-space message passing: potentials of +-600 would overflow/underflow exp.
    model = random_model(DOMAIN, CLIQUE_SETS["five-cycle"], seed=3, scale=300.0)
    joint = joint_probability(model)
    np.testing.assert_allclose(model.project(("a", "c")) / model.total, brute_marginal(DOMAIN, joint, ("a", "c")), atol=1e-9)


def test_factor_algebra():
    d = Domain(["x", "y", "z"], [2, 3, 4])
    gen = torch.Generator().manual_seed(0)
    f = Factor(d.project(["y", "x"]), torch.randn(3, 2, generator=gen, dtype=torch.float64))
    g = Factor(d.project(["z", "y"]), torch.randn(4, 3, generator=gen, dtype=torch.float64))
    h = f + g
    assert set(h.domain.attrs) == {"x", "y", "z"}
    full = h.transpose(["x", "y", "z"]).values.numpy()
    expected = f.values.numpy().T[:, :, None] + g.values.numpy().T[None, :, :]
    np.testing.assert_allclose(full, expected)
    # project = logsumexp over the dropped axes, in the requested order
    p = h.project(["z", "x"]).values.numpy()
    np.testing.assert_allclose(p, np.log(np.exp(expected).sum(axis=1)).T)
    np.testing.assert_allclose((h - g).project(["x", "y"]).values.numpy(),
                               f.transpose(["x", "y"]).values.numpy() + np.log(4))
    assert h.logsumexp() == pytest.approx(np.log(np.exp(expected).sum()))
    assert torch.allclose(f.exp(), torch.exp(f.values))
    with pytest.raises(ValueError, match="shape"):
        Factor(d.project(["x"]), torch.zeros(3))


def test_clique_vector_arithmetic_and_dot():
    d = Domain(["x", "y"], [2, 3])
    u = CliqueVector({("x",): Factor(d.project("x"), [1.0, 2.0]), ("x", "y"): Factor(d, np.ones((2, 3)))})
    v = u * 2 - u
    assert v.dot(u) == pytest.approx(1 + 4 + 6)
    assert (u + u)[("x",)].values.tolist() == [2.0, 4.0]
    assert u.supports(("y",)) and not u.supports(("z",))


def test_domain_basics_and_errors():
    d = Domain.from_dict({"a": 2, "b": 3, "c": 4})
    assert d.attrs == ("a", "b", "c") and d.shape == (2, 3, 4) and len(d) == 3 and "b" in d
    assert d.project(["c", "a"]).shape == (4, 2) and d.size() == 24 and d.size(["b", "c"]) == 12
    with pytest.raises(ValueError, match="'q'"):
        d.project(["a", "q"])
    with pytest.raises(ValueError, match="repeated"):
        Domain(["a", "a"], [2, 2])
    with pytest.raises(ValueError, match="'a'"):
        Domain(["a"], [0])


def test_per_clique_path_for_large_models_agrees(monkeypatch):
    # Large models broadcast/sum clique by clique instead of one gather; force that path.
    import dpsynth.pgm.model as model_module

    # nested parameter cliques: the per-clique path sums ("a",) out of ("a", "b"), not a maximal clique
    cliques = CLIQUE_SETS["triples"] + [("a", "b"), ("a",), ("d",)]
    small = random_model(DOMAIN, cliques, seed=3)
    assert not small.parameter_map.per_clique  # built (lazily) before the threshold changes
    monkeypatch.setattr(model_module, "VECTORISED_CELLS", 0)
    large = random_model(DOMAIN, cliques, seed=3)
    assert large.parameter_map.per_clique
    assert any(not from_maximal for _, from_maximal, _, _ in large.parameter_map.projection_plan)
    joint = joint_probability(small)
    for attrs in [("a", "b", "c"), ("b", "d"), ("f",), ("a", "d", "f")]:
        np.testing.assert_allclose(large.project(attrs) / large.total, brute_marginal(DOMAIN, joint, attrs), atol=1e-12)
    for got, want in zip(large.clique_marginals().values(), small.clique_marginals().values()):
        np.testing.assert_allclose(got.values.numpy(), want.values.numpy(), atol=1e-9)
