"""Conversions and compositions against third-party reference vectors."""

from __future__ import annotations

import math

import pytest

from accountant import RDPAccountant
from accountant.conversions import zcdp_delta, zcdp_epsilon, zcdp_rho
from accountant.events import DiscreteGaussianEvent, GaussianEvent, GNMaxEvent, PoissonSubsampledGaussianEvent
from accountant.rdp import event_rho
from tests.accountant.reference import column, params

OPACUS_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("row", params("zcdp_to_approxdp.csv"))
def test_zcdp_to_epsilon_is_the_tight_cks_value(row):
    rho, delta = float(row["rho"]), float(row["delta"])
    eps = zcdp_epsilon(rho, delta)
    assert rel(eps, column(row, "eps_tight_reference")) < 1e-9
    assert eps <= column(row, "eps_rdp_grid[dp-accounting") * (1 + 1e-12)
    assert eps < column(row, "eps_classic")
    # Sound: never below the exact ε of the one Gaussian with this ρ.
    assert eps >= column(row, "eps_if_single_gaussian_exact")
    # get_delta inverts get_epsilon.
    assert rel(zcdp_delta(rho, column(row, "eps_tight_reference")), delta) < 1e-6
    _, order = RDPAccountant().compose(GaussianEvent(1 / math.sqrt(2 * rho))).get_epsilon_and_order(delta)
    assert rel(order, column(row, "alpha_opt_reference")) < 1e-4


@pytest.mark.parametrize("row", params("approxdp_to_zcdp.csv"))
def test_epsilon_delta_to_rho(row):
    eps, delta = float(row["eps"]), float(row["delta"])
    rho = zcdp_rho(eps, delta)
    assert rel(rho, column(row, "rho_tight_reference")) < 1e-9
    assert rho > column(row, "rho_classic")


def _parse_mix(spec: str) -> list[tuple[float, int]]:
    return [(float(z), int(c)) for z, c in (part.split("x") for part in spec.split(";"))]


@pytest.mark.parametrize("row", params("gaussian_composition.csv"))
def test_gaussian_composition(row):
    delta = float(row["delta"])
    acc = RDPAccountant()
    for z, count in _parse_mix(row["mechanisms(z=sigma/L2-sensitivity x count)"]):
        acc.compose(GaussianEvent(z), count)
    assert rel(acc.rho, column(row, "rho_total")) < 1e-12
    eps = acc.get_epsilon(delta)
    assert rel(eps, column(row, "eps_zcdp_tight_reference")) < 1e-9
    assert eps >= column(row, "eps_exact") - 1e-12  # never below the exact (truth)
    assert eps >= column(row, "eps_pld") - 1e-6  # nor below PLD (tight numerically)
    assert eps <= column(row, "eps_rdp[dp-accounting") * (1 + 1e-9)
    assert eps <= column(row, "eps_rdp[opacus") * (1 + 1e-9)


@pytest.mark.parametrize("row", params("discrete_gaussian.csv"))
def test_discrete_gaussian(row):
    sigma2, sens, delta = column(row, "sigma2"), float(row["sensitivity"]), float(row["delta"])
    event = DiscreteGaussianEvent(math.sqrt(sigma2), sens)
    assert rel(event_rho(event), column(row, "rho=")) < 1e-12
    eps = RDPAccountant().compose(event).get_epsilon(delta)
    assert rel(eps, column(row, "eps_zcdp_tight")) < 1e-9
    assert eps >= column(row, "eps_exact_discrete")


@pytest.mark.parametrize("row", params("pate_gnmax_data_independent.csv"))
def test_gnmax_data_independent(row):
    sigma, queries, delta = column(row, "sigma(GNMax"), int(row["queries"]), float(row["delta"])
    acc = RDPAccountant().compose(GNMaxEvent(sigma, queries))
    assert rel(acc.rho, column(row, "rho_total")) < 1e-12
    eps = acc.get_epsilon(delta)
    assert rel(eps, column(row, "eps_zcdp_tight_reference")) < 1e-9
    assert eps >= column(row, "eps_exact")
    assert eps <= column(row, "eps_rdp[dp-accounting") * (1 + 1e-9)


@pytest.mark.parametrize("row", params("dpsgd_epsilon.csv"))
def test_dpsgd_epsilon_against_opacus_pld_and_dp_accounting(row):
    q, sigma, steps, delta = float(row["q"]), float(row["sigma"]), int(row["steps"]), float(row["delta"])
    event = PoissonSubsampledGaussianEvent(q, sigma, steps)
    # Same grid as opacus: the same number to 1e-6 relative.
    same_grid = RDPAccountant(orders=OPACUS_ALPHAS).compose(event).get_epsilon(delta)
    assert rel(same_grid, column(row, "eps_rdp[opacus")) < 1e-6
    ours = RDPAccountant().compose(event).get_epsilon(delta)
    # Sound: never below the numerically tight PLD value.
    assert ours >= column(row, "eps_pld") * (1 - 1e-9)
    # Tighter or equal: never above opacus' RDP value or dp_accounting's.
    assert ours <= column(row, "eps_rdp[opacus") * (1 + 1e-9)
    assert ours <= column(row, "eps_rdp[dp-accounting") * (1 + 1e-9)


@pytest.mark.parametrize("row", params("dpsgd_noise_multiplier.partial.csv"))
def test_noise_multiplier_calibration(row):
    from accountant import calibrate_dpsgd_noise

    q, steps, delta, target = float(row["q"]), int(row["steps"]), float(row["delta"]), float(row["target_eps"])
    sigma = calibrate_dpsgd_noise(target, delta, q, steps)
    eps = RDPAccountant().compose(PoissonSubsampledGaussianEvent(q, sigma, steps)).get_epsilon(delta)
    assert eps <= target  # never overshoots
    assert eps > target * (1 - 1e-6)  # and does not over-noise
    # Never more noise than opacus' RDP calibration; within 1e-3 of dp_accounting's Brent.
    assert sigma <= column(row, "sigma[opacus==1.6.0:utils.get_noise_multiplier(accountant='rdp'")
    assert rel(sigma, column(row, "sigma[dp-accounting==0.6.0:mechanism_calibration")) < 1e-3
