"""Per-mechanism RDP curves against third-party reference vectors.

Tolerances: closed forms 1e-9 relative; the 40-digit mpmath subsampled-Gaussian
curve 1e-8 relative (the issue asks 1e-6; we hold a tighter line); opacus' RDP
1e-6 relative.
"""

from __future__ import annotations

import math

import pytest

from accountant.events import ExponentialMechanismEvent, LaplaceEvent, PureDpEvent
from accountant.rdp import event_rdp
from accountant.sgm import subsampled_gaussian_rdp
from tests.accountant.reference import column, params


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("row", params("sgm_rdp_curve.csv"))
def test_subsampled_gaussian_matches_mpmath_reference(row):
    q, sigma, alpha = float(row["q"]), float(row["sigma"]), float(row["alpha"])
    ours = subsampled_gaussian_rdp(q, sigma, [alpha])[0]
    assert rel(ours, column(row, "rdp_reference")) < 1e-8
    assert rel(ours, column(row, "rdp[opacus")) < 1e-6


@pytest.mark.parametrize("row", params("sgm_rdp_curve.csv"))
def test_subsampled_gaussian_never_looser_than_dp_accounting(row):
    q, sigma, alpha = float(row["q"]), float(row["sigma"]), float(row["alpha"])
    ours = subsampled_gaussian_rdp(q, sigma, [alpha])[0]
    theirs = column(row, "rdp[dp-accounting")
    assert math.isfinite(ours)  # dp_accounting gives up (inf) at large q, low orders; we must not
    assert ours <= theirs * (1 + 1e-9)


@pytest.mark.parametrize("row", params("laplace_and_puredp_rdp.csv"))
def test_laplace_pure_dp_and_bounded_range_curves(row):
    b, alpha = column(row, "b(scale"), float(row["alpha"])
    eps = 1.0 / b
    assert rel(event_rdp(LaplaceEvent(b), [alpha])[0], column(row, "rdp_laplace_reference")) < 1e-9
    assert rel(event_rdp(PureDpEvent(eps), [alpha])[0], column(row, "rdp_any_pure_dp(eps=1/b)_tight")) < 1e-9
    assert rel(event_rdp(ExponentialMechanismEvent(eps), [alpha])[0], column(row, "rdp_bounded_range")) < 1e-12
    # The tight pure-DP curve is never above the simple bound min(ε, αε²/2).
    assert event_rdp(PureDpEvent(eps), [alpha])[0] <= column(row, "rdp_pure_dp_simple") * (1 + 1e-12)


def test_reference_copies_match_the_shared_ones():
    """The in-repo copies are the shared facts, byte for byte (checked where ../shared exists)."""
    import pytest

    from tests.accountant.reference import HERE
    from tests.conftest import SHARED

    shared = SHARED / "reference" / "accounting"
    if not shared.is_dir():
        pytest.skip(f"needs {shared} (the project's shared folder) to compare the copies with")
    names = sorted(p.name for p in shared.glob("*.csv"))
    assert names and names == sorted(p.name for p in HERE.glob("*.csv"))
    for name in names:
        assert (HERE / name).read_bytes() == (shared / name).read_bytes(), name
