"""estimate(): noiseless recovery, optimum vs an independent solver, warm start, validation."""

import numpy as np
import pytest

from dpsynth.pgm import Domain, Measurement, estimate
from dpsynth.pgm.estimation import estimate_total

from .helpers import brute_marginal, joint_probability, random_model

TREE_DOMAIN = Domain(list("abcde"), [3, 2, 4, 3, 2])
TREE = [("a", "b"), ("b", "c"), ("b", "d"), ("d", "e")]


def test_noiseless_tree_measurements_recover_the_truth():
    truth = random_model(TREE_DOMAIN, TREE, seed=11, scale=1.0, total=5000.0)
    joint = joint_probability(truth)
    measurements = [Measurement(cl, 5000.0 * brute_marginal(TREE_DOMAIN, joint, cl), sigma=1.0) for cl in TREE]
    model = estimate(TREE_DOMAIN, measurements, iters=4000, tol=1e-12)
    assert model.total == pytest.approx(5000.0)
    # The truth is tree-structured, so the max-entropy fit is the truth itself:
    # even the unmeasured 3-way marginals agree.
    for attrs in [("a", "b"), ("c", "d"), ("a", "c", "e"), ("a", "b", "c", "d", "e")]:
        np.testing.assert_allclose(model.project(attrs), 5000.0 * brute_marginal(TREE_DOMAIN, joint, attrs),
                                   atol=0.05, err_msg=str(attrs))


def _reference_optimum(domain, measurements, total, iters=10000):
    """Minimise the same loss over ALL joint distributions by accelerated projected gradient.

    An independent solver: it never uses a graphical model, only the full joint
    table, an explicit 0/1 marginalisation matrix and an exact Euclidean
    projection onto the probability simplex (FISTA with the global Lipschitz step).
    """
    cells = domain.size()
    eye = np.eye(cells).reshape(domain.shape + (cells,))
    rows, targets, coefs = [], [], []
    for m in measurements:
        # row j of the block maps the joint to marginal cell j (axes in m.clique order)
        axes = tuple(i for i, a in enumerate(domain.attrs) if a not in m.clique)
        kept = [a for a in domain.attrs if a in m.clique]
        table = eye.sum(axis=axes)  # kept attrs (domain order) x cells
        table = np.transpose(table, [kept.index(a) for a in m.clique] + [len(kept)])
        rows.append(total * table.reshape(-1, cells))
        targets.append(m.values.reshape(-1))
        coefs.append(np.full(m.values.size, m.weight / m.sigma))
    A, y, w = np.vstack(rows), np.concatenate(targets), np.concatenate(coefs)

    def loss(p):
        r = A @ p - y
        return 0.5 * float(w @ (r * r))

    def project(v):  # Euclidean projection onto the probability simplex (sort-based)
        u = np.sort(v)[::-1]
        css = np.cumsum(u) - 1
        k = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
        return np.maximum(v - css[k] / (k + 1), 0)

    lipschitz = np.linalg.eigvalsh(A.T @ (w[:, None] * A)).max()
    x = y_point = np.full(cells, 1.0 / cells)
    t = 1.0
    for _ in range(iters):
        g = A.T @ (w * (A @ y_point - y))
        x_new = project(y_point - g / lipschitz)
        t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
        y_point = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return loss(x)


@pytest.mark.parametrize("method", ["accelerated", "mirror"])
def test_optimum_equals_brute_force_joint_optimum_on_a_cycle(method):
    domain = Domain(["a", "b", "c"], [2, 3, 2])
    rng = np.random.default_rng(5)
    truth = rng.dirichlet(np.ones(domain.size())).reshape(domain.shape) * 60.0
    cycle = [("a", "b"), ("b", "c"), ("c", "a"), ("b",)]
    # Large noise: some noisy counts are negative, so the optimum is on the boundary.
    measurements = [Measurement(cl, brute_marginal(domain, truth, cl) + rng.normal(0, 8.0, domain.project(cl).shape),
                                sigma=8.0, weight=1.0 + i) for i, cl in enumerate(cycle)]
    assert min(m.values.min() for m in measurements) < 0
    reference = _reference_optimum(domain, measurements, total=60.0)
    model = estimate(domain, measurements, total=60.0, iters=3000, tol=1e-12, method=method)
    assert model.fit_info["loss"] == pytest.approx(reference, rel=1e-8)
    # and the loss the solver reports is the loss of the model it returns
    recomputed = sum(0.5 * m.weight / m.sigma * ((model.project(m.clique) - m.values) ** 2).sum() for m in measurements)
    assert recomputed == pytest.approx(model.fit_info["loss"], rel=1e-9)


def test_duality_gap_certifies_the_optimum():
    domain = Domain(["a", "b", "c"], [2, 3, 2])
    rng = np.random.default_rng(9)
    measurements = [Measurement(cl, rng.normal(30, 5, domain.project(cl).shape), sigma=5.0)
                    for cl in [("a", "b"), ("b", "c")]]
    loose = estimate(domain, measurements, iters=5, tol=0, report_gap=True)
    tight = estimate(domain, measurements, iters=3000, tol=1e-12, report_gap=True)
    assert tight.fit_info["gap"] >= -1e-6
    # loss - optimum <= gap: the loose iterate's gap bounds its distance to the tight loss
    assert loose.fit_info["loss"] - tight.fit_info["loss"] <= loose.fit_info["gap"] + 1e-6
    assert tight.fit_info["gap"] < loose.fit_info["gap"]


def _tree_measurements(seed):
    truth = random_model(TREE_DOMAIN, TREE, seed=seed, total=3000.0)
    joint = 3000.0 * joint_probability(truth)
    rng = np.random.default_rng(seed)
    first = [Measurement(cl, brute_marginal(TREE_DOMAIN, joint, cl) + rng.normal(0, 3, TREE_DOMAIN.project(cl).shape), 3.0)
             for cl in TREE[:3]]
    extra = [Measurement(("a", "e"), brute_marginal(TREE_DOMAIN, joint, ("a", "e")) + rng.normal(0, 3, (3, 2)), 3.0)]
    return first, extra


def test_warm_start_reaches_the_same_optimum_in_fewer_iterations():
    first, extra = _tree_measurements(2)
    cold = estimate(TREE_DOMAIN, first + extra, iters=5000, tol=1e-9, check_every=10)
    # continuing a partial fit needs fewer iterations than starting cold
    partial = estimate(TREE_DOMAIN, first + extra, iters=40, tol=0)
    resumed = estimate(TREE_DOMAIN, first + extra, iters=5000, tol=1e-9, check_every=10, warm_start=partial)
    assert resumed.fit_info["loss"] == pytest.approx(cold.fit_info["loss"], rel=1e-6)
    assert resumed.fit_info["iterations"] < cold.fit_info["iterations"]
    # AIM's pattern: the previous round's model (fewer measurements) starts the next round
    previous = estimate(TREE_DOMAIN, first, iters=5000, tol=1e-9)
    warm = estimate(TREE_DOMAIN, first + extra, iters=5000, tol=1e-9, check_every=10, warm_start=previous)
    assert warm.fit_info["loss"] == pytest.approx(cold.fit_info["loss"], rel=1e-6)
    assert warm.fit_info["iterations"] < cold.fit_info["iterations"]
    assert set(previous.cliques) <= set(warm.cliques)
    # restarting from an optimum stays there and stops at the first check
    again = estimate(TREE_DOMAIN, first + extra, iters=5000, tol=1e-9, check_every=10, warm_start=warm)
    assert again.fit_info["iterations"] <= 20
    assert again.fit_info["loss"] <= warm.fit_info["loss"] * (1 + 1e-9)


def test_total_is_the_inverse_variance_weighted_sum():
    domain = Domain(["a", "b"], [2, 3])
    m1 = Measurement(("a",), np.array([40.0, 70.0]), sigma=2.0)            # sum 110, var 2*4 = 8
    m2 = Measurement(("a", "b"), np.full((2, 3), 20.0), sigma=1.0)         # sum 120, var 6*1 = 6
    expected = (110 / 8 + 120 / 6) / (1 / 8 + 1 / 6)
    assert estimate_total(domain, [m1, m2]) == pytest.approx(expected)
    assert estimate(domain, [m1, m2], iters=1).total == pytest.approx(expected)
    assert estimate(domain, [m1, m2], iters=1, total=99.0).total == 99.0


def test_extra_cliques_enter_the_structure():
    domain = Domain(["a", "b", "c"], [2, 2, 2])
    m = Measurement(("a",), np.array([5.0, 5.0]), sigma=1.0)
    model = estimate(domain, [m], cliques=[("b", "c")], iters=10)
    assert ("b", "c") in model.cliques and model.size == 2 + 4


def test_validation_errors_name_the_problem():
    domain = Domain(["age", "sex"], [3, 2])
    with pytest.raises(ValueError, match="'income'"):
        estimate(domain, [Measurement(("age", "income"), np.zeros((3, 2)), 1.0)])
    with pytest.raises(ValueError, match=r"\('sex', 'age'\).*shape"):
        estimate(domain, [Measurement(("sex", "age"), np.zeros((3, 2)), 1.0)])
    with pytest.raises(ValueError, match=r"\('age',\).*sigma"):
        Measurement(("age",), np.zeros(3), sigma=0.0)
    with pytest.raises(ValueError, match="sigma"):
        Measurement(("age",), np.zeros(3), sigma=float("nan"))
    with pytest.raises(ValueError, match="weight"):
        Measurement(("age",), np.zeros(3), sigma=1.0, weight=-1)
    with pytest.raises(ValueError, match="finite"):
        Measurement(("age",), np.array([1.0, np.inf, 0.0]), sigma=1.0)
    with pytest.raises(ValueError, match="'zip'"):
        estimate(domain, [Measurement(("age",), np.zeros(3), 1.0)], cliques=[("zip",)])
    with pytest.raises(ValueError, match="total"):
        estimate(domain, [Measurement(("age",), np.zeros(3), 1.0)], total=-5)
