"""Issue 20's faster paths give what the plain ones give: batched projections, the cached
triangulation, the float32 oracle and the thread policy (correctness, not timing)."""

import itertools
import math
import random

import numpy as np
import pytest
import torch

from dpsynth.pgm import Domain, Measurement, estimate, junction_tree_size, maximal_cliques
from dpsynth.pgm import junction_tree as jt
from dpsynth.pgm.factor import small_work_threads
from dpsynth.pgm.junction_tree import junction_tree_sizes_with

from .helpers import all_subsets, brute_marginal, joint_probability, random_model

DOMAIN = Domain(list("abcdef"), [2, 3, 2, 4, 3, 2])
CLIQUES = [("a", "b", "c"), ("c", "d", "e"), ("e", "f", "a"), ("b", "d")]


def test_project_many_equals_one_by_one_and_the_full_joint():
    model = random_model(DOMAIN, CLIQUES, seed=3, scale=1.5)
    joint = joint_probability(model)
    asked = list(all_subsets(DOMAIN.attrs, (1, 2, 3))) + [("f", "c", "a"), "d"]
    # a fresh model for the one-by-one answers, so no cached conditional is shared
    fresh = random_model(DOMAIN, CLIQUES, seed=3, scale=1.5)
    many = model.project_many(asked)
    assert len(many) == len(asked)
    for attrs, got in zip(asked, many):
        attrs = (attrs,) if isinstance(attrs, str) else attrs
        np.testing.assert_allclose(got, fresh.project(attrs), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got / model.total, brute_marginal(DOMAIN, joint, attrs), atol=1e-12)
    with pytest.raises(ValueError, match="not in the domain"):
        model.project_many([("a", "zz")])


def _old_eliminate(domain, adjacency, rule):
    """The elimination as written before issue 20 (sets, every key computed), the reference."""
    adj = {a: set(nb) for a, nb in adjacency.items()}
    pos = {a: i for i, a in enumerate(domain.attrs)}
    formed = []

    def fill(v):
        nb = adj[v]
        return sum(1 for x, y in itertools.combinations(sorted(nb), 2) if y not in adj[x])

    def weight(v):
        return domain[v] * int(np.prod([domain[u] for u in adj[v]]))

    while adj:
        key = (lambda a: (fill(a), weight(a), pos[a])) if rule == "min_fill" else (
            lambda a: (weight(a), fill(a), pos[a]))
        v = min(adj, key=key)
        nb = adj.pop(v)
        formed.append(frozenset(nb | {v}))
        for u in nb:
            adj[u] = (adj[u] | nb) - {u, v}
    return formed


def _old_maximal_cliques(domain, cliques):
    adjacency = {a: set() for a in domain.attrs}
    for cl in cliques:
        for a in cl:
            adjacency[a] |= set(cl) - {a}
    best = None
    for rule in ("min_fill", "min_weight"):
        formed = sorted(set(_old_eliminate(domain, adjacency, rule)), key=len, reverse=True)
        found = []
        for cl in formed:
            if not any(cl <= k for k in found):
                found.append(cl)
        cells = sum(domain.size(cl) for cl in found)
        if best is None or cells < best[0]:
            best = (cells, found)
    return best[0], sorted(domain.canonical(cl) for cl in best[1])


def test_triangulation_matches_a_set_based_elimination_and_the_cache_changes_nothing():
    rng = random.Random(7)
    for _ in range(60):
        n = rng.randint(2, 9)
        domain = Domain([f"x{i}" for i in range(n)], [rng.choice([2, 3, 5, 7, 11]) for _ in range(n)])
        cliques = [tuple(rng.sample(domain.attrs, rng.randint(1, min(3, n)))) for _ in range(rng.randint(0, 8))]
        cells, maximal = _old_maximal_cliques(domain, cliques)
        assert junction_tree_size(domain, cliques) == cells
        assert sorted(maximal_cliques(domain, cliques)) == maximal
        jt._triangulate.cache_clear()
        assert junction_tree_size(domain, cliques) == cells
        # the per-candidate sizes AIM asks for, graph built once
        candidates = [tuple(rng.sample(domain.attrs, rng.randint(1, min(3, n)))) for _ in range(5)]
        assert junction_tree_sizes_with(domain, cliques, candidates) == [
            _old_maximal_cliques(domain, [*cliques, c])[0] for c in candidates]
    with pytest.raises(ValueError, match="not in the domain"):
        junction_tree_sizes_with(DOMAIN, CLIQUES, [("a", "zz")])


def _noisy(seed):
    truth = random_model(DOMAIN, CLIQUES, seed=seed, total=20000.0)
    joint = 20000.0 * joint_probability(truth)
    rng = np.random.default_rng(seed)
    return [Measurement(cl, brute_marginal(DOMAIN, joint, cl) + rng.normal(0, 5, DOMAIN.project(cl).shape), 5.0)
            for cl in CLIQUES + [("a",), ("f",)]]


@pytest.mark.parametrize("method", ["accelerated", "mirror"])
def test_float32_oracle_reaches_the_float64_optimum(method):
    measurements = _noisy(4)
    exact = estimate(DOMAIN, measurements, iters=4000, tol=1e-10, method=method)
    fast = estimate(DOMAIN, measurements, iters=4000, tol=1e-10, method=method, precision="float32")
    assert fast.fit_info["precision"] == "float32"
    # float32 rounding leaves the loss a little above the optimum (its noise floor: here
    # under 1 %), with every marginal cell well within the noise sigma (5) of the optimum's
    assert exact.fit_info["loss"] <= fast.fit_info["loss"] <= 1.02 * exact.fit_info["loss"]
    for cl in CLIQUES:
        np.testing.assert_allclose(fast.project(cl), exact.project(cl), rtol=0, atol=1.25)
    # the float32 fit stores float64 potentials, and a float64 fit warm-started from it ends
    # where the float64 fit ends (AIM's pattern: float32 rounds, float64 final fit)
    assert all(f.values.dtype == torch.float64 for f in fast.potentials.values())
    polished = estimate(DOMAIN, measurements, iters=4000, tol=1e-10, method=method, warm_start=fast)
    assert polished.fit_info["loss"] == pytest.approx(exact.fit_info["loss"], rel=1e-7)


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision"):
        estimate(DOMAIN, _noisy(1), iters=5, precision="float16")


def test_large_tables_use_several_threads_only_when_waiting_threads_sleep(monkeypatch):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cpu = torch.device("cpu")
        monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
        with small_work_threads(cpu, 1 << 20):
            assert torch.get_num_threads() == 2
        with small_work_threads(cpu, 100):
            assert torch.get_num_threads() == 1
        for policy in ("ACTIVE", None):
            if policy is None:
                monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
            else:
                monkeypatch.setenv("OMP_WAIT_POLICY", policy)
            with small_work_threads(cpu, 1 << 20):
                assert torch.get_num_threads() == 1
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_importing_dpsynth_first_makes_waiting_threads_sleep():
    import subprocess
    import sys

    code = ("import os; os.environ.pop('OMP_WAIT_POLICY', None); import dpsynth, torch; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    # torch loaded first: libgomp has read its policy already, so dpsynth leaves it alone
    code = ("import os; os.environ.pop('OMP_WAIT_POLICY', None); import torch, dpsynth; "
            "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_nested_marginal_counts_equal_counting_each_from_the_rows():
    from dpsynth.table.queries import marginal_counts, marginal_counts_many

    rng = np.random.default_rng(0)
    shape = (3, 4, 2, 5)
    codes = np.stack([rng.integers(0, n, 500) for n in shape], axis=1)
    asked = [(0, 1, 2), (2, 0), (1,), (3, 1), (0, 1, 2, 3), (), (2, 1, 0), (3,)]
    shapes = [tuple(shape[c] for c in cols) for cols in asked]
    got = marginal_counts_many(codes, asked, shapes)
    for cols, s, g in zip(asked, shapes, got):
        want = marginal_counts(codes, cols, s)
        assert g.dtype == np.int64 and g.shape == want.shape
        np.testing.assert_array_equal(g, want)


# -- reductions axis by axis, the projection plan's intermediates, probability-space calibration

@pytest.mark.parametrize("shape", [(3, 1, 4, 2, 5), (2, 3, 2, 4, 3, 2), (7,), (1, 1, 3)])
def test_axis_by_axis_reductions_equal_torch(shape):
    from dpsynth.pgm.reductions import logsumexp_over, max_over, sum_over

    x = torch.randn(shape, generator=torch.Generator().manual_seed(len(shape)), dtype=torch.float64)
    n = len(shape)
    for k in range(n + 1):
        for dims in itertools.combinations(range(n), k):
            if not dims:
                assert sum_over(x, dims) is x and max_over(x, dims) is x
                continue
            torch.testing.assert_close(sum_over(x, dims), x.sum(dim=dims), rtol=1e-12, atol=1e-12)
            assert torch.equal(max_over(x, dims), x.amax(dim=dims))
            torch.testing.assert_close(logsumexp_over(x, dims), torch.logsumexp(x, dim=dims), rtol=1e-12, atol=1e-12)
    if n == 1:
        return
    # every term -inf in some rows: -inf there, as torch gives, and no NaN anywhere
    y = x.clone()
    y[0] = -math.inf
    got = logsumexp_over(y, tuple(range(1, n)))
    torch.testing.assert_close(got, torch.logsumexp(y, dim=tuple(range(1, n))), rtol=1e-12, atol=1e-12)
    assert (got[0] == -math.inf).all() and not torch.isnan(got).any()


def test_projection_plan_shares_intermediate_tables_and_agrees_with_the_joint(monkeypatch):
    import dpsynth.pgm.model as model_module

    import dpsynth.pgm.inference as inference

    monkeypatch.setattr(model_module, "VECTORISED_CELLS", 0)  # the per-clique path
    monkeypatch.setattr(inference, "_LARGE_TABLE_CELLS", 0)  # and probability-space calibration
    domain = Domain(list("abcdef"), [2, 3, 2, 4, 3, 2])
    # one maximal clique (all six) holding six 3-way parameter cliques and two 1-way ones
    cliques = [("a", "b", "c"), ("a", "b", "d"), ("c", "d", "e"), ("b", "e", "f"), ("a", "d", "f"),
               ("c", "e", "f"), ("a", "b", "c", "d", "e", "f"), ("d",), ("f",)]
    model = random_model(domain, cliques, seed=11, scale=1.0)
    pm = model.parameter_map
    assert pm.per_clique
    n = len(pm.tree.cliques)
    assert any(slot >= n for slot, _, _, _ in pm.projection_plan)  # intermediates were made
    # every intermediate is summed over one attribute and used by a later step
    made = [slot for slot, _, _, _ in pm.projection_plan if slot >= n]
    assert all(any(not fm and src == s for _, fm, src, _ in pm.projection_plan) for s in made)
    joint = joint_probability(model)
    theta = pm.flatten([model.potentials[cl].values for cl in pm.tree.cliques])
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-6)):
        probs, _ = pm.bp.calibrate_probabilities(pm.potentials_flat(theta.to(dtype)))
        for cl, got in zip(pm.tree.cliques, pm.project(probs)):
            np.testing.assert_allclose(got.double().numpy(), brute_marginal(domain, joint, cl), atol=tol)


@pytest.mark.parametrize("threshold", [0, 2**40])  # the probability-space path, the small-table one
def test_probability_space_calibration_with_structural_zeros_matches_the_full_joint(threshold, monkeypatch):
    import dpsynth.pgm.inference as inference

    monkeypatch.setattr(inference, "_LARGE_TABLE_CELLS", threshold)
    domain = Domain(list("abcd"), [3, 2, 4, 2])
    model = random_model(domain, [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d", "c")], seed=5, scale=2.0)
    pm = model.parameter_map
    pots = [p.clone() for p in pm.potentials([model.potentials[cl].values for cl in pm.tree.cliques])]
    for p in pots:
        p.view(-1)[: max(1, p.numel() // 3)] = -math.inf  # whole separator rows impossible
    # the reference: every maximal potential broadcast onto the full joint, in numpy
    full = np.zeros(domain.shape)
    for attrs, p in zip(pm.tree.maximal, pots):
        axes = [domain.attrs.index(a) for a in attrs]
        order = np.argsort(axes)
        table = np.transpose(p.numpy(), order)
        shape = [domain[a] if a in attrs else 1 for a in domain.attrs]
        full = full + table.reshape(shape)
    with np.errstate(invalid="ignore"):
        joint = np.exp(full - full[np.isfinite(full)].max())
    joint = np.where(np.isfinite(full), joint, 0.0)
    log_z = math.log(joint.sum()) + full[np.isfinite(full)].max()
    joint /= joint.sum()
    probs, got_log_z = pm.bp.calibrate_probabilities(pots)
    assert float(got_log_z) == pytest.approx(log_z, rel=1e-12)
    for attrs, p in zip(pm.tree.maximal, probs):
        assert not torch.isnan(p).any()
        np.testing.assert_allclose(p.numpy(), brute_marginal(domain, joint, attrs), atol=1e-12)
