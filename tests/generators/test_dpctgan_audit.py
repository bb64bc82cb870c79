"""A gradient-canary audit of one DP-SGD step of DP-CTGAN's discriminator, inside the table.

White-box (research/auditing.md §8.3, Tier 1), on the private table's own DP-SGD
session (`PrivateTable.dpsgd_session`: Opacus per-sample gradients of the vetted
discriminator, clipping to C, sum, Gaussian noise σC from the table's source).
World OUT: a table of three ordinary records; world IN: the same plus a canary
record whose gradient is larger than C, so its clipped contribution g_c has norm
C.  With q = 1 every record is in every step, and each step of a session with
fixed discriminator parameters is an independent run of the one-step mechanism:
a Gaussian mechanism with sensitivity C and noise σC, μ-GDP with μ = 1/σ.

The auditor knows the public parameters and the other records, so it computes
(independently of the table, by autograd one record at a time) the clipped sum
S_out of the three ordinary records and the canary's clipped gradient g_c.  Its
score is the likelihood-ratio statistic <noisy − S_out, g_c/|g_c|>.  Half of each
world's runs pick the threshold, the other half give a one-sided Clopper-Pearson
bound on FPR and FNR, turned into a lower bound on μ (auditing.md Appendix A) at
α = 1e-3.  It must stay under the claim, and a session whose noise is half of
what it is charged for must be caught.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from accountant.events import PoissonSubsampledGaussianEvent, event_from_json
from dpsynth.audit.bounds import split_audit
from dpsynth.nn import DiscriminatorSpec
from dpsynth.nn.layout import TableTransformer
from dpsynth.schema import Column, Schema

from .dpctgan_support import ledger, private_table  # noqa: F401  (also sets torch to one thread)

RUNS = 1500        # steps (independent runs of the one-step mechanism) per world
ALPHA = 1e-3       # suite-wide one-sided level (auditing.md §8.4)
SIGMA = 1.0        # claimed mu = 1/sigma = 1: a loud setting, where the audit has power
C = 0.05           # small: the canary's gradient is clipped to norm exactly C
SPEC = DiscriminatorSpec(hidden=(4,), dropout=0.0)
SCHEMA = Schema([Column("x", "numeric", lower=-1.0, upper=1.0, bins=2),
                 Column("y", "numeric", lower=-1.0, upper=1.0, bins=2)])
OTHERS = pd.DataFrame({"x": [0.1, -0.5, 0.9], "y": [0.3, 0.2, -0.7]})
CANARY = pd.DataFrame({"x": [1.0], "y": [-1.0]})


def gdp_audit(out_scores: np.ndarray, in_scores: np.ndarray, alpha: float = ALPHA) -> float:
    """Threshold chosen on the first half (best point bound), bound computed on the second
    (dpsynth.audit.bounds.split_audit, the audit's own)."""
    return split_audit(out_scores, in_scores, alpha=alpha, gaussian=True)["mu_lb"]


def _parameters() -> dict[str, torch.Tensor]:
    """The discriminator's public parameters for every step (fixed: a seeded initialisation)."""
    dim = TableTransformer.from_schema(SCHEMA).dim
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        d = SPEC.build(dim)
    return {k: v.detach().clone() for k, v in d.named_parameters()}


def _clipped_gradients(params: dict[str, torch.Tensor], frame: pd.DataFrame) -> np.ndarray:
    """The auditor's own computation, one record at a time: each record's gradient of the real-row
    loss softplus(-D(x)), flattened in parameter order and clipped to C (Opacus' formula)."""
    x = torch.as_tensor(TableTransformer.from_schema(SCHEMA).transform(frame))
    d = SPEC.build(x.shape[1])
    d.load_state_dict(params)
    d.train()
    out = []
    for row in x:
        grads = torch.autograd.grad(F.softplus(-d(row[None])).sum(), list(d.parameters()))
        g = torch.cat([t.reshape(-1) for t in grads]).double()
        out.append((g * min(1.0, C / (float(g.norm()) + 1e-6))).numpy())
    return np.stack(out)


def _noisy_sums(tmp_path, frame: pd.DataFrame, params, seed: int) -> np.ndarray:
    """RUNS steps of one DP-SGD session (q = 1) on a private table of `frame`: the noisy sums."""
    tl = ledger(tmp_path, frame, SCHEMA, epsilon=1e5, max_records=10)
    table = private_table(tl, frame, SCHEMA, seed=seed)
    session = table.dpsgd_session(discriminator=SPEC, conditioning=None, sampling_rate=1.0, noise_multiplier=SIGMA,
                                  steps=RUNS, max_grad_norm=C, purpose="gradient-canary audit")
    assert event_from_json(table.receipts[0].event) == PoissonSubsampledGaussianEvent(1.0, SIGMA, RUNS)
    assert list(session.parameter_names) == list(params)
    sums = np.stack([torch.cat([t.reshape(-1) for t in session.step(params)]).double().numpy()
                     for _ in range(RUNS)])
    session.close()
    return sums


def _worlds(tmp_path, seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    params = _parameters()
    others = _clipped_gradients(params, OTHERS)
    g_c = _clipped_gradients(params, CANARY)[0]
    assert np.linalg.norm(g_c) == pytest.approx(C, rel=1e-4)  # the canary is clipped: exactly C
    s_out = others.sum(axis=0)
    out = _noisy_sums(tmp_path / "out", OTHERS, params, seed)
    inn = _noisy_sums(tmp_path / "in", pd.concat([OTHERS, CANARY], ignore_index=True), params, seed + 1)
    return out - s_out, inn - s_out, {"g_c": g_c}


def _scores(residual: np.ndarray, g_c: np.ndarray) -> np.ndarray:
    return residual @ (g_c / np.linalg.norm(g_c))


def test_step_is_clipped_and_noised_as_claimed_and_the_audit_stays_under_the_claim(tmp_path):
    out_res, in_res, facts = _worlds(tmp_path, seed=11)
    g_c = facts["g_c"]
    # World OUT: the noisy sum is the exact clipped sum plus N(0, (σC)²) in every coordinate.
    assert abs(out_res.mean()) < 5 * SIGMA * C / math.sqrt(out_res.size)
    assert out_res.std() == pytest.approx(SIGMA * C, rel=0.03)
    # World IN: shifted by the canary's clipped gradient, same noise.
    shifted = in_res - g_c
    assert np.abs(shifted.mean(axis=0)).max() < 5 * SIGMA * C / math.sqrt(RUNS)
    assert shifted.std() == pytest.approx(SIGMA * C, rel=0.03)
    out_s, in_s = _scores(out_res, g_c), _scores(in_res, g_c)
    assert abs(out_s.mean()) < 5 * SIGMA * C / math.sqrt(RUNS)
    assert abs(in_s.mean() - C) < 5 * SIGMA * C / math.sqrt(RUNS)
    assert out_s.std() == pytest.approx(SIGMA * C, rel=0.08)
    mu_claim = 1.0 / SIGMA
    mu_lb = gdp_audit(out_s, in_s)
    assert mu_lb <= mu_claim
    assert mu_lb > 0.5 * mu_claim  # the audit sees most of the leakage it should


def test_canary_half_the_noise_is_caught(tmp_path, monkeypatch):
    """A session charged for σ that adds σ/2: the audit's lower bound exceeds the claim."""
    import dpsynth.noise.gaussian as gaussian

    honest = gaussian.sample_gaussian
    monkeypatch.setattr(gaussian, "sample_gaussian", lambda std, size, source: honest(std / 2, size, source))
    out_res, in_res, facts = _worlds(tmp_path, seed=21)
    mu_claim = 1.0 / SIGMA
    mu_lb = gdp_audit(_scores(out_res, facts["g_c"]), _scores(in_res, facts["g_c"]))
    assert mu_lb > mu_claim
