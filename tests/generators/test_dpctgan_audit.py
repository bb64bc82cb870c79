"""A gradient-canary audit of one DP-SGD step of DP-CTGAN's discriminator.

White-box (research/auditing.md §8.3, Tier 1): the step is the one the trainer
builds (`make_dp_optimizer`: Opacus per-sample clipping to C, sum, Gaussian
noise σC).  World OUT: three ordinary records; world IN: the same plus a Dirac
canary, a per-sample gradient of norm exactly C in one coordinate.  With q = 1
and one step the release is a Gaussian mechanism with sensitivity C and noise
σC: μ-GDP with μ = 1/σ.  The score is the noisy sum's canary coordinate (the
likelihood-ratio statistic).  Half of each world's runs pick the threshold, the
other half give a one-sided Clopper-Pearson bound on FPR and FNR, turned into
a lower bound on μ (auditing.md Appendix A) at α = 1e-3.  It must stay under
the claim, and an optimiser with half the noise must be caught.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, norm

from dpsynth.generators.dpctgan.trainer import make_dp_optimizer

from .dpctgan_support import TINY  # noqa: F401  (sets torch to one thread)

RUNS = 4000        # per world
ALPHA = 1e-3       # suite-wide one-sided level (auditing.md §8.4)
SIGMA = 1.0        # claimed mu = 1/sigma = 1: a loud setting, where the audit has power
C = 1.0
DIM = 8


def cp_upper(k: int, n: int, a: float) -> float:
    return 1.0 if k >= n else float(beta.ppf(1 - a, k + 1, n - k))


def mu_lower_bound(fp: int, fn: int, n_out: int, n_in: int, alpha: float) -> float:
    fpr_u, fnr_u = cp_upper(fp, n_out, alpha / 2), cp_upper(fn, n_in, alpha / 2)
    return max(0.0, float(norm.ppf(1 - fpr_u) - norm.ppf(fnr_u)))


def gdp_audit(out_scores: np.ndarray, in_scores: np.ndarray, alpha: float = ALPHA) -> float:
    """Threshold chosen on the first half (best point bound), bound computed on the second."""
    sel_out, sel_in = out_scores[::2], in_scores[::2]
    ev_out, ev_in = out_scores[1::2], in_scores[1::2]
    candidates = np.quantile(np.concatenate([sel_out, sel_in]), np.linspace(0.01, 0.99, 99))

    def point(t, o, i):
        fp, fn = int((o >= t).sum()), int((i < t).sum())
        return mu_lower_bound(fp, fn, len(o), len(i), alpha)

    t = max(candidates, key=lambda t: point(t, sel_out, sel_in))
    return point(t, ev_out, ev_in)


@functools.lru_cache(maxsize=None)
def one_step_scores(noise_multiplier: float, with_canary: bool, seed: int) -> np.ndarray:
    """The canary coordinate of the noisy clipped sum, over RUNS independent steps."""
    param = torch.nn.Parameter(torch.zeros(DIM))
    noise = torch.Generator().manual_seed(seed)
    opt = make_dp_optimizer(torch.optim.SGD([param], lr=0.0), noise_multiplier=noise_multiplier,
                            max_grad_norm=C, noise=noise)
    others = torch.tensor([[0.0, 3.0, -1.0, 0, 0, 0, 0, 0],   # ordinary records (clipped too)
                           [0.0, 0.0, 0.5, 0.2, 0, 0, 0, 0],
                           [0.0, -0.3, 0.0, 0.0, 2.0, 0, 0, 0]])
    canary = torch.zeros(1, DIM)
    canary[0, 0] = C
    grads = torch.cat([others, canary]) if with_canary else others
    scores = np.empty(RUNS)
    for r in range(RUNS):
        opt.zero_grad(set_to_none=True)
        param.grad_sample = grads.clone()
        opt.pre_step()
        scores[r] = float(param.grad[0])
    scores.setflags(write=False)
    return scores


def test_sum_is_clipped_and_noised_as_claimed():
    """Sanity of the statistic: mean C in world IN, 0 in OUT; std σC in both."""
    out = one_step_scores(SIGMA, False, seed=11)
    inn = one_step_scores(SIGMA, True, seed=12)
    assert abs(out.mean()) < 5 * SIGMA * C / math.sqrt(RUNS)
    assert abs(inn.mean() - C) < 5 * SIGMA * C / math.sqrt(RUNS)
    assert out.std() == pytest.approx(SIGMA * C, rel=0.05)


def test_measured_mu_stays_under_the_claim():
    mu_claim = 1.0 / SIGMA
    mu_lb = gdp_audit(one_step_scores(SIGMA, False, seed=11), one_step_scores(SIGMA, True, seed=12))
    assert mu_lb <= mu_claim
    assert mu_lb > 0.5 * mu_claim  # the audit sees most of the leakage it should


def test_canary_half_the_noise_is_caught():
    mu_claim = 1.0 / SIGMA
    mu_lb = gdp_audit(one_step_scores(SIGMA / 2, False, seed=21), one_step_scores(SIGMA / 2, True, seed=22))
    assert mu_lb > mu_claim
