"""The audit flags every canary (a deliberately broken generator, tests/audit/canaries.py) and
passes every correct generator, at small run counts chosen so that the verdict can go either
way: the ceiling (the largest bound the runs allow) is above the claim in every audit here.

Seeded test noise (the audit ledgers allow it): each outcome is fixed, not a coin flip.  The
small audits use α = 0.2 in all (each of the four bounds at 0.05): a looser level makes a
correct generator *easier* to flag, so its passing is no weaker a check, and 15 evaluation
fits per world can bound ε above 1."""

from __future__ import annotations

import pytest
import torch

from dpsynth.audit import audit

from . import canaries

torch.set_num_threads(1)
SEED = 5


def _audit(tmp_path, generator, *, epsilon=1.0, runs=30, factory=None, params=None, n_synth=200, alpha=0.2):
    r = audit(generator, epsilon=epsilon, runs=runs, out=tmp_path / "audit", params=params, n_synth=n_synth,
              jobs=1, seed=SEED, factory=factory, progress=False, alpha=alpha)
    assert r.summary["ceiling"] > epsilon or r.summary["statistics"].get("white"), r.summary  # the audit could fail
    assert r.summary["epsilon_spent"]["max"] <= epsilon + 1e-9  # every fit charged (at most) the claim
    return r


# -- canaries ---------------------------------------------------------------------------------------------
def test_unnoised_marginals_are_flagged_white_box(tmp_path):
    """C2: MST's marginals released without noise: the noisy-minus-exact statistic is 0 in OUT and
    Σ 1/σ² in IN, perfect separation; the Gaussian-DP bound exceeds the claim."""
    r = _audit(tmp_path, "mst", runs=16, factory=canaries.noiseless_mst, params={"iters": 50})
    assert r.flagged
    white = r.summary["statistics"]["white"]
    assert (white["fp"], white["fn"]) == (0, 0)
    assert white["eps_lb_gdp"] > 1.0


def test_a_domain_read_from_the_data_is_flagged_black_box(tmp_path):
    """C1: MST whose category lists come from the private rows never produces the target's values
    in OUT; the counts of its values separate the worlds and the CP bound exceeds the claim."""
    r = _audit(tmp_path, "mst", factory=canaries.domain_from_data_mst, params={"iters": 50})
    assert r.summary["ceiling"] > 1.0
    assert r.flagged, r.summary["reasons"]
    values = r.summary["statistics"]["values"]
    assert values["fp"] == 0 and values["eps_lb"] > 1.0
    assert max(values["out"]) == 0  # OUT never shows a target value: the leak itself


@pytest.mark.slow
def test_half_the_noise_is_flagged_white_box(tmp_path):
    """C5: Independent drawing half the noise it is charged for is 2μ-GDP; at a claim of ε = 4
    (μ ≤ 0.925) 150 evaluation fits per world see it (research/auditing.md §8.2's power figures)."""
    r = _audit(tmp_path, "independent", epsilon=4.0, runs=300, factory=canaries.half_noise_independent,
               params={"iters": 10}, n_synth=10, alpha=0.05)
    assert r.flagged, r.summary["statistics"]["white"]
    assert r.summary["statistics"]["white"]["mu_lb"] > r.summary["claim"]["mu"]


# -- correct generators -----------------------------------------------------------------------------------
@pytest.mark.parametrize("generator, params", [
    ("independent", {"iters": 20}),
    ("mst", {"iters": 50}),
    pytest.param("aim", {"iters": 20, "final_iters": 50}, marks=pytest.mark.slow),
    ("dpctgan", {}),
    ("pategan", {}),
])
def test_every_correct_generator_passes(tmp_path, generator, params):
    r = _audit(tmp_path, generator, params=params)
    assert r.summary["ceiling"] > 1.0  # 15 evaluation fits per world could show ε > 1
    assert not r.flagged, r.summary["reasons"]
    if generator in ("independent", "mst", "aim"):
        assert r.summary["statistics"]["white"]["mu_ceiling"] > r.summary["claim"]["mu"]
