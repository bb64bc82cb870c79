"""PATEGAN's worst-case black-box audit, small (the full one: benchmarks/pategan_audit.py).

The 2024 PATE-GAN audit's setting (research/pategan.md §1.1): D′ = four (0,0,0), D = D′ +
(1,1,1), 2 teachers, claimed ε = 1 at δ = 1e-5; each fit releases 1000 rows, scored by how
many equal (1,1,1); the first half of each world's fits picks the threshold, the second half
bounds ε (Clopper–Pearson, research/auditing.md Appendix A).  Seeded test noise and models:
the outcome is fixed.  With 40 fits per world the ceiling (perfect separation of 20 + 20) is
1.60 > 1, so "honest ε_lb ≤ 1" is a real check, and a canary whose generator learns from a
judge trained on all the data must exceed the claim.  The bound functions are checked
against closed forms and scipy.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import beta, binom, binomtest, norm

from .dpctgan_support import ledger  # noqa: F401  (also sets torch to one thread)

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pategan_audit.py"
RUNS = 40          # fits per world: 20 pick the threshold, 20 bound ε
SEED = 1
CLAIM = 1.0


@pytest.fixture(scope="module")
def pa():
    spec = importlib.util.spec_from_file_location("pategan_audit_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


# -- the bound functions ----------------------------------------------------------------------------
@pytest.mark.parametrize("k, n, a", [(0, 1, 0.025), (0, 20, 0.025), (3, 20, 0.025), (7, 50, 5e-4), (49, 50, 0.1),
                                     (12, 400, 0.025)])
def test_cp_upper_is_the_clopper_pearson_bound(pa, k, n, a):
    u = pa.cp_upper(k, n, a)
    # Its definition: the rate u at which seeing ≤ k of n has probability exactly a.
    assert binom.cdf(k, n, u) == pytest.approx(a, rel=1e-7)
    # scipy's exact two-sided interval at level 1 − 2a has the same upper end.
    assert binomtest(k, n).proportion_ci(confidence_level=1 - 2 * a, method="exact").high == pytest.approx(u,
                                                                                                          rel=1e-9)
    if k == 0:
        assert u == pytest.approx(1 - a ** (1 / n), rel=1e-12)  # Beta(1, n): closed form
    assert pa.cp_upper(n, n, a) == 1.0


@pytest.mark.parametrize("n", [1, 5, 20, 200, 5000])
@pytest.mark.parametrize("alpha, delta", [(0.05, 0.0), (0.05, 1e-5), (1e-3, 1e-5)])
def test_perfect_separation_gives_the_closed_form(pa, n, alpha, delta):
    u = 1 - (alpha / 2) ** (1 / n)
    expected = max(0.0, math.log((1 - delta - u) / u))
    assert pa.eps_lb_cp(0, 0, n, n, alpha, delta) == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert pa.max_auditable_eps(n, alpha, delta) == pa.eps_lb_cp(0, 0, n, n, alpha, delta)


def test_eps_lb_cp_matches_privacy_estimates_ceilings(pa):
    """research/auditing.md Appendix A: privacy_estimates' 'beta' method at its alpha = 0.1 gives
    4.6815 / 5.6006 / 6.2947 / 7.2115 for perfect separation at 400 / 1000 / 2000 / 5000 per world."""
    for n, ref in [(400, 4.6815), (1000, 5.6006), (2000, 6.2947), (5000, 7.2115)]:
        assert pa.eps_lb_cp(0, 0, n, n, alpha=0.05, delta=0.0) == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("fp, fn, n_out, n_in", [(0, 7, 20, 20), (3, 11, 100, 80), (40, 2, 150, 150),
                                                 (10, 10, 20, 20)])
def test_eps_lb_cp_against_scipy_directly(pa, fp, fn, n_out, n_in):
    alpha, delta = 0.05, 1e-5
    fpr_u = 1.0 if fp >= n_out else beta.ppf(1 - alpha / 2, fp + 1, n_out - fp)
    fnr_u = 1.0 if fn >= n_in else beta.ppf(1 - alpha / 2, fn + 1, n_in - fn)
    e1 = math.log(max(1 - delta - fnr_u, 1e-300) / fpr_u)
    e2 = math.log(max(1 - delta - fpr_u, 1e-300) / fnr_u)
    assert pa.eps_lb_cp(fp, fn, n_out, n_in, alpha, delta) == pytest.approx(max(0.0, e1, e2), abs=1e-12)
    # The two error kinds play symmetric roles.
    assert pa.eps_lb_cp(fn, fp, n_in, n_out, alpha, delta) == pytest.approx(
        pa.eps_lb_cp(fp, fn, n_out, n_in, alpha, delta), abs=1e-12)
    mu = pa.mu_lb_gdp(fp, fn, n_out, n_in, alpha)
    assert mu == pytest.approx(max(0.0, norm.ppf(1 - fpr_u) - norm.ppf(fnr_u)), abs=1e-12)


def test_chance_level_gives_zero(pa):
    assert pa.eps_lb_cp(10, 10, 20, 20) == 0.0
    assert pa.mu_lb_gdp(10, 10, 20, 20) == 0.0


def test_gdp_curve_round_trips(pa):
    # μ at (ε, δ) = (1, 1e-5) is 0.268 (research/auditing.md §8.2's μ_claim).
    mu = pa.mu_from_eps(1.0, 1e-5)
    assert mu == pytest.approx(0.268, abs=1e-3)
    assert pa.gauss_delta(1.0, mu) == pytest.approx(1e-5, rel=1e-6)
    for m in (0.3, 1.0, 3.0):
        e = pa.eps_from_mu(m, 1e-5)
        assert pa.gauss_delta(e, m) == pytest.approx(1e-5, rel=1e-6)
        assert pa.mu_from_eps(e, 1e-5) == pytest.approx(m, rel=1e-6)
    # δ(ε) of μ-GDP is the Gaussian mechanism's (Δ = μ, σ = 1) hockey-stick divergence, by quadrature.
    m, e = 1.0, 0.5
    x = np.linspace(-12, 12, 400_001)
    hockey = np.trapezoid(np.maximum(norm.pdf(x, loc=m) - math.exp(e) * norm.pdf(x), 0.0), x)
    assert pa.gauss_delta(e, m) == pytest.approx(hockey, rel=1e-6)


def test_the_threshold_comes_from_the_first_half_only(pa):
    # First halves: perfectly separated at 5 (high = IN).  Second halves: 2 OUT fits above 5 and 3
    # IN fits below it.  A threshold tuned on the second half could do better; this one may not.
    sel_out, sel_in = [0] * 10, [10] * 10
    ev_out = [0] * 8 + [7, 8]
    ev_in = [1, 2, 3] + [10] * 7
    a = pa.audit(sel_out + ev_out, sel_in + ev_in, alpha=0.05, delta=1e-5)
    assert a["threshold"] == 5.0 and a["direction"] == "high score = IN"
    assert (a["fp"], a["fn"], a["n_out"], a["n_in"]) == (2, 3, 10, 10)
    assert a["eps_lb"] == pa.eps_lb_cp(2, 3, 10, 10, 0.05, 1e-5)
    # The direction is learnt too: low scores meaning IN.
    b = pa.audit([5] * 20, [1] * 20, alpha=0.05, delta=1e-5)
    assert b["direction"] == "low score = IN" and (b["fp"], b["fn"]) == (0, 0)
    assert b["eps_lb"] == pytest.approx(pa.max_auditable_eps(10, 0.05, 1e-5))
    assert pa.auc([0, 1], [1, 2]) == pytest.approx(0.875)


def test_the_worlds_are_the_2024_worst_case(pa):
    out, inn = pa.world_frame("out"), pa.world_frame("in")
    assert out.values.tolist() == [[0, 0, 0]] * 4
    assert inn.values.tolist() == [[0, 0, 0]] * 4 + [[1, 1, 1]]
    assert pa.score(inn) == 1 and pa.score(out) == 0


# -- the audit ---------------------------------------------------------------------------------------
def _audit(pa, variant, tmp_path):
    config = pa.AuditConfig()
    assert (config.epsilon, config.delta, config.teachers) == (CLAIM, 1e-5, 2)
    scores, spent = {}, set()
    for world in pa.WORLDS:
        r = pa.run_world(world, list(range(RUNS)), config, variant, seed=SEED, workdir=tmp_path)
        scores[world] = r["scores"]
        spent.update(r["epsilon_spent"])
    assert max(spent) <= CLAIM + 1e-9  # every fit was charged (at most) the claim
    return pa.audit(scores["out"], scores["in"], alpha=config.alpha, delta=config.delta)


@pytest.mark.slow
def test_honest_pategan_stays_under_the_claim_and_a_leaky_judge_is_caught(pa, tmp_path):
    ceiling = pa.max_auditable_eps(RUNS // 2, 0.05, 1e-5)
    assert ceiling > CLAIM + 0.5  # the check below can fail: the audit has room above the claim
    honest = _audit(pa, "honest", tmp_path / "honest")
    assert honest["eps_lb"] <= CLAIM, honest
    # The generator's judge trained on every real record (against generated rows), as in the 2018
    # original: the generator reproduces (1,1,1) only in world IN, and the audit sees it.
    leaky = _audit(pa, "judge_sees_all", tmp_path / "leaky")
    assert leaky["eps_lb"] > CLAIM, leaky
    assert leaky["auc"] > 0.9


def test_the_canaries_restore_the_library(pa):
    from dpsynth.generators.pategan import model as model_module
    from dpsynth.generators.pategan import plan as plan_module
    from dpsynth.generators.pategan import trainer as trainer_module
    from dpsynth.noise import discrete_gaussian
    from dpsynth.table.pate import PateSession

    before = (PateSession.__init__, PateSession.votes, discrete_gaussian.sample_discrete_gaussian,
              trainer_module.train, model_module.train, plan_module.MAX_UNANIMOUS_ERROR)
    for name in pa.VARIANTS:
        with pa.usefulness_guard_lifted(True), pa.VARIANTS[name]():
            assert plan_module.MAX_UNANIMOUS_ERROR == 1.0
    after = (PateSession.__init__, PateSession.votes, discrete_gaussian.sample_discrete_gaussian,
             trainer_module.train, model_module.train, plan_module.MAX_UNANIMOUS_ERROR)
    assert before == after
