"""PATEGAN's worst-case black-box audit, small (the full one: benchmarks/pategan_audit.py).

The 2024 PATE-GAN audit's setting (research/pategan.md §1.1): D′ = four (0,0,0), D = D′ +
(1,1,1), 2 teachers, claimed ε = 1 at δ = 1e-5; each fit releases 1000 rows, scored by how
many equal (1,1,1); the first half of each world's fits picks the threshold, the second half
bounds ε (Clopper–Pearson, research/auditing.md Appendix A).  Seeded test noise and models:
the outcome is fixed.  With 40 fits per world the ceiling (perfect separation of 20 + 20) is
1.60 > 1, so "honest ε_lb ≤ 1" is a real check, and a canary whose generator learns from a
judge trained on all the data must exceed the claim.  The bound functions are checked
in tests/audit/test_bounds.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

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


# The bound functions themselves (now dpsynth.audit.bounds) are tested in tests/audit/test_bounds.py.
def test_the_harness_uses_the_library_bounds(pa):
    from dpsynth.audit import bounds

    assert pa.eps_lb_cp is bounds.eps_lb_cp and pa.max_auditable_eps is bounds.ceiling
    a = pa.audit([0] * 10 + [0] * 8 + [7, 8], [10] * 10 + [1, 2, 3] + [10] * 7, alpha=0.05, delta=1e-5)
    assert (a["fp"], a["fn"], a["threshold"]) == (2, 3, 5.0)


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

    before = (PateSession.__init__, PateSession.votes, PateSession.label_votes,
              discrete_gaussian.sample_discrete_gaussian,
              trainer_module.train, model_module.train, plan_module.MAX_UNANIMOUS_ERROR)
    for name in pa.VARIANTS:
        with pa.usefulness_guard_lifted(True), pa.VARIANTS[name]():
            assert plan_module.MAX_UNANIMOUS_ERROR == 1.0
    after = (PateSession.__init__, PateSession.votes, PateSession.label_votes,
             discrete_gaussian.sample_discrete_gaussian,
             trainer_module.train, model_module.train, plan_module.MAX_UNANIMOUS_ERROR)
    assert before == after
