"""The public arithmetic of the marginal generators: budgets, compression, workloads.

Closed forms are computed here by hand, independently of accountant.rdp."""

import math

import numpy as np
import pytest

from accountant.conversions import zcdp_epsilon
from accountant.events import NeighbouringRelation
from accountant.gate import BudgetExceeded
from accountant.testing import make_test_gate
from dpsynth.generators.marginal.budget import (em_epsilon_for_rho, marginal_l2_sensitivity, run_rho,
                                                 sigma_for_rho)
from dpsynth.generators.marginal.compression import Compression, compress_oneway
from dpsynth.generators.marginal.workload import candidate_weights, downward_closure, normalise_workload


@pytest.mark.parametrize("rho", [1e-4, 0.0123, 0.5, 3.0])
@pytest.mark.parametrize("l2", [1.0, math.sqrt(2.0)])
def test_sigma_for_rho_is_the_smallest_sigma_that_fits(rho, l2):
    sigma = sigma_for_rho(rho, l2)
    assert l2**2 / (2 * sigma**2) <= rho  # discrete Gaussian: rho = Δ²/(2σ²) (CKS 2020, Thm 4)
    smaller = math.nextafter(math.nextafter(sigma, 0), 0)
    assert l2**2 / (2 * smaller**2) > rho or math.isclose(sigma, l2 / math.sqrt(2 * rho), rel_tol=1e-15)
    assert math.isclose(sigma, l2 / math.sqrt(2 * rho), rel_tol=1e-14)


@pytest.mark.parametrize("rho", [1e-4, 0.0123, 0.5])
def test_em_epsilon_for_rho_is_bounded_range(rho):
    eps = em_epsilon_for_rho(rho)
    assert eps**2 / 8 <= rho  # bounded range: rho = eps²/8 (Cesar & Rogers 2021)
    assert math.isclose(eps, math.sqrt(8 * rho), rel_tol=1e-14)


def test_l2_sensitivity_by_relation():
    assert marginal_l2_sensitivity(NeighbouringRelation.ADD_OR_REMOVE_ONE) == 1.0
    assert marginal_l2_sensitivity(NeighbouringRelation.REPLACE_ONE) == math.sqrt(2.0)


def test_run_rho_converts_epsilon_and_refuses_overspend(tmp_path):
    gate = make_test_gate(tmp_path, epsilon=1.0, delta=1e-9, max_records=10**8).gate
    rho = run_rho(gate, 0.5)
    # The zCDP ρ whose CKS conversion gives exactly ε = 0.5 at δ = 1e-9.
    assert math.isclose(zcdp_epsilon(rho, 1e-9), 0.5, rel_tol=1e-7)
    full = run_rho(gate, 1.0)
    assert full <= gate.remaining_rho()
    with pytest.raises(BudgetExceeded):
        run_rho(gate, 1.5)
    with pytest.raises(ValueError, match="epsilon"):
        run_rho(gate, 0.0)
    assert gate.spent_costs() == []  # asking costs nothing


def test_compression_merges_cells_under_three_sigma():
    y = {"a": np.array([100.0, 2.0, 50.0, -1.0, 5.9]), "b": np.array([10.0, 20.0, 1.0])}
    comp, answers = compress_oneway(y, sigma=2.0)  # threshold 6
    assert list(comp.keep["a"]) == [0, 2]
    np.testing.assert_allclose(answers["a"], [100.0, 50.0, 2.0 - 1.0 + 5.9])
    assert comp.size("a") == 3
    assert list(comp.recode("a")) == [0, 2, 1, 2, 2]
    # One rare category alone is not merged.
    assert comp.size("b") == 3 and list(comp.keep["b"]) == [0, 1, 2]
    assert set(comp.recodes()) == {"a"}
    rng = np.random.default_rng(0)
    expanded = comp.expand("a", np.array([0, 1, 2, 2, 2, 2] * 200), rng)
    assert set(expanded[::6]) == {0} and set(expanded[1::6]) == {2}
    rare = np.concatenate([expanded[2::6], expanded[3::6], expanded[4::6], expanded[5::6]])
    assert set(rare) == {1, 3, 4}
    counts = np.bincount(rare, minlength=5)[[1, 3, 4]]
    assert counts.min() > 200  # uniform over the 3 merged categories (800 draws)
    again = Compression.from_dict(comp.to_dict())
    assert list(again.recode("a")) == list(comp.recode("a"))


def test_workload_candidates_are_weighted_by_overlap():
    w = normalise_workload([("b", "a"), ("b", "c")], ["a", "b", "c"])
    assert w == {("a", "b"): 1.0, ("b", "c"): 1.0}
    cands = candidate_weights(w)
    # mbi's compile_workload: score(cl) = Σ_W |cl ∩ W|
    assert cands == {("a",): 1, ("b",): 2, ("c",): 1, ("a", "b"): 3, ("b", "c"): 3}  # 2 + 1 each
    assert downward_closure([("a", "b", "c")])[-1] == ("a", "b", "c")
    with pytest.raises(ValueError, match="unknown column"):
        normalise_workload([("a", "z")], ["a", "b"])
    with pytest.raises(ValueError, match="weight"):
        normalise_workload({("a",): 0.0}, ["a", "b"])


def test_aim_round_iterations_shrink_with_model_size_only():
    from dpsynth.generators import AIM

    aim = AIM(epsilon=1.0, iters=300)
    assert aim._round_iters(1_000) == aim._round_iters(2**19) == 300
    assert aim._round_iters(2**21) == 300 // 4  # 4x the reference size: 1/4 of the iterations
    assert aim._round_iters(10**8) == 50  # floor
    assert AIM(epsilon=1.0, iters=10)._round_iters(10**8) == 10  # never more than asked
    assert aim._final_iters(2**18) == 3000 and aim._final_iters(2**21) == 375 and aim._final_iters(10**9) == 100
