"""The bound functions against independent computations and against statistics whose true
separation is known (research/auditing.md Appendix A)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import beta, binom, binomtest, norm

from dpsynth.audit import bounds as b


@pytest.mark.parametrize("k, n, a", [(0, 1, 0.025), (0, 20, 0.025), (3, 20, 0.025), (7, 50, 5e-4), (49, 50, 0.1),
                                     (12, 400, 0.025)])
def test_cp_upper_is_the_clopper_pearson_bound(k, n, a):
    u = b.cp_upper(k, n, a)
    # Its definition: the rate u at which seeing ≤ k of n has probability exactly a.
    assert binom.cdf(k, n, u) == pytest.approx(a, rel=1e-7)
    # scipy's exact two-sided interval at level 1 − 2a has the same upper end.
    assert binomtest(k, n).proportion_ci(confidence_level=1 - 2 * a, method="exact").high == pytest.approx(u, rel=1e-9)
    if k == 0:
        assert u == pytest.approx(1 - a ** (1 / n), rel=1e-12)  # Beta(1, n): closed form
    assert b.cp_upper(n, n, a) == 1.0


@pytest.mark.parametrize("n", [1, 5, 20, 200, 5000])
@pytest.mark.parametrize("alpha, delta", [(0.05, 0.0), (0.05, 1e-5), (1e-3, 1e-5)])
def test_perfect_separation_gives_the_closed_form(n, alpha, delta):
    u = 1 - (alpha / 2) ** (1 / n)
    expected = max(0.0, math.log((1 - delta - u) / u))
    assert b.eps_lb_cp(0, 0, n, n, alpha, delta) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert b.ceiling(n, alpha, delta) == b.eps_lb_cp(0, 0, n, n, alpha, delta)


def test_eps_lb_cp_matches_privacy_estimates_ceilings():
    """research/auditing.md Appendix A: privacy_estimates' 'beta' method at its alpha = 0.1 gives
    4.6815 / 5.6006 / 6.2947 / 7.2115 for perfect separation at 400 / 1000 / 2000 / 5000 per world."""
    for n, ref in [(400, 4.6815), (1000, 5.6006), (2000, 6.2947), (5000, 7.2115)]:
        assert b.eps_lb_cp(0, 0, n, n, alpha=0.05, delta=0.0) == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("fp, fn, n_out, n_in", [(0, 7, 20, 20), (3, 11, 100, 80), (40, 2, 150, 150),
                                                 (10, 10, 20, 20)])
def test_eps_lb_cp_against_scipy_directly(fp, fn, n_out, n_in):
    alpha, delta = 0.05, 1e-5
    fpr_u = 1.0 if fp >= n_out else beta.ppf(1 - alpha / 2, fp + 1, n_out - fp)
    fnr_u = 1.0 if fn >= n_in else beta.ppf(1 - alpha / 2, fn + 1, n_in - fn)
    e1 = math.log(max(1 - delta - fnr_u, 1e-300) / fpr_u)
    e2 = math.log(max(1 - delta - fpr_u, 1e-300) / fnr_u)
    assert b.eps_lb_cp(fp, fn, n_out, n_in, alpha, delta) == pytest.approx(max(0.0, e1, e2), abs=1e-12)
    assert b.eps_lb_cp(fn, fp, n_in, n_out, alpha, delta) == pytest.approx(
        b.eps_lb_cp(fp, fn, n_out, n_in, alpha, delta), abs=1e-12)  # the error kinds play symmetric roles
    assert b.mu_lb_gdp(fp, fn, n_out, n_in, alpha) == pytest.approx(
        max(0.0, norm.ppf(1 - fpr_u) - norm.ppf(fnr_u)), abs=1e-12)


def test_chance_level_gives_zero():
    assert b.eps_lb_cp(10, 10, 20, 20) == 0.0
    assert b.mu_lb_gdp(10, 10, 20, 20) == 0.0


def test_gdp_curve_round_trips():
    mu = b.mu_from_eps(1.0, 1e-5)  # research/auditing.md §8.2's μ_claim at (1, 1e-5)
    assert mu == pytest.approx(0.268, abs=1e-3)
    assert b.gauss_delta(1.0, mu) == pytest.approx(1e-5, rel=1e-6)
    for m in (0.3, 1.0, 3.0):
        e = b.eps_from_mu(m, 1e-5)
        assert b.gauss_delta(e, m) == pytest.approx(1e-5, rel=1e-6)
        assert b.mu_from_eps(e, 1e-5) == pytest.approx(m, rel=1e-6)
    # δ(ε) of μ-GDP is the Gaussian mechanism's (Δ = μ, σ = 1) hockey-stick divergence, by quadrature.
    m, e = 1.0, 0.5
    x = np.linspace(-12, 12, 400_001)
    hockey = np.trapezoid(np.maximum(norm.pdf(x, loc=m) - math.exp(e) * norm.pdf(x), 0.0), x)
    assert b.gauss_delta(e, m) == pytest.approx(hockey, rel=1e-6)


def test_the_threshold_comes_from_the_first_half_only():
    # First halves: perfectly separated at 5 (high = IN).  Second halves: 2 OUT fits above 5 and 3
    # IN fits below it.  A threshold tuned on the second half could do better; this one may not.
    sel_out, sel_in = [0] * 10, [10] * 10
    ev_out = [0] * 8 + [7, 8]
    ev_in = [1, 2, 3] + [10] * 7
    a = b.split_audit(sel_out + ev_out, sel_in + ev_in, alpha=0.05, delta=1e-5)
    assert a["threshold"] == 5.0 and a["direction"] == "high score = IN"
    assert (a["fp"], a["fn"], a["n_out"], a["n_in"]) == (2, 3, 10, 10)
    assert a["eps_lb"] == b.eps_lb_cp(2, 3, 10, 10, 0.05, 1e-5)
    low = b.split_audit([5] * 20, [1] * 20, alpha=0.05, delta=1e-5)  # low scores meaning IN is learnt too
    assert low["direction"] == "low score = IN" and (low["fp"], low["fn"]) == (0, 0)
    assert low["eps_lb"] == pytest.approx(b.ceiling(10, 0.05, 1e-5))
    assert b.auc([0, 1], [1, 2]) == pytest.approx(0.875)
    rng = np.random.default_rng(3)
    o, i = rng.integers(0, 5, 40), rng.integers(0, 6, 30)
    pairs = (i[None, :] > o[:, None]).sum() + 0.5 * (i[None, :] == o[:, None]).sum()
    assert b.auc(o, i) == pytest.approx(pairs / (40 * 30), rel=1e-12)  # by counting every pair
    with pytest.raises(ValueError, match="finite"):
        b.split_audit([0.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        b.split_audit([0.0], [1.0])


def test_gdp_bound_on_gaussian_scores_is_below_and_close_to_the_truth():
    """OUT ~ N(0, 1), IN ~ N(μ, 1) is exactly μ-GDP: at large n the bound approaches μ from below."""
    rng = np.random.default_rng(7)
    for mu in (0.5, 1.0, 2.0):
        n = 20_000
        r = b.split_audit(rng.normal(0, 1, n), rng.normal(mu, 1, n), alpha=0.05, delta=1e-5, gaussian=True)
        assert r["mu_lb"] <= mu
        # The threshold maximising the selection half's bound may sit in a tail, where the evaluation
        # half's count is noisier: close, not exact.
        assert r["mu_lb"] >= mu - 0.2, (mu, r["mu_lb"])
        assert r["eps_lb_gdp"] <= b.eps_from_mu(mu, 1e-5) + 1e-12


def test_bounds_exceed_the_truth_rarely():
    """Coverage: over many small audits of a mechanism whose separation is known, the bound lands above
    the truth in about α of them at most (here α = 0.2 so that a few hundred audits measure it)."""
    rng = np.random.default_rng(11)
    mu, alpha, reps, n = 1.0, 0.2, 300, 60
    above = sum(b.split_audit(rng.normal(0, 1, n), rng.normal(mu, 1, n), alpha=alpha, gaussian=True)["mu_lb"] > mu
                for _ in range(reps))
    assert above <= binom.ppf(0.999, reps, alpha), above
    # Randomised response with ε = 1: OUT says 1 with probability 1/(1+e), IN with e/(1+e) — exactly 1-DP.
    eps, p = 1.0, 1 / (1 + math.e)
    above = 0
    for _ in range(reps):
        r = b.split_audit(rng.random(n) < p, rng.random(n) < 1 - p, alpha=alpha)
        above += r["eps_lb"] > eps
    assert above <= binom.ppf(0.999, reps, alpha), above
    big = b.split_audit(rng.random(40_000) < p, rng.random(40_000) < 1 - p, alpha=0.05)
    assert 0.9 <= big["eps_lb"] <= eps  # close from below at large n
