"""Issue 17: `dpsynth policy suggest-order` — the filter order α* for the mix of runs an
officer expects.  Checked against a second computation: the conversion written out here
from Canonne, Kamath & Steinke / Balle et al. (the improved RDP → (ε, δ) bound) and the
subsampled Gaussian's RDP from opacus."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from accountant.conversions import zcdp_rho
from accountant.events import PoissonSubsampledGaussianEvent, ZCdpEvent
from accountant.filter import RenyiFilter
from accountant.order_choice import ORDER_GRID, suggest_order
from accountant.policy import load_policy, render_policy
from dpsynth.cli import app

EPS, DELTA = 3.0, 1e-6


def budget(alpha: float, eps: float = EPS, delta: float = DELTA) -> float:
    """B(α): the largest RDP at α that converts to (ε, δ) with the improved conversion
    ε = r + log((α−1)/α) − (log δ + log α)/(α − 1), solved for r (written out independently)."""
    return eps - math.log((alpha - 1) / alpha) + (math.log(delta) + math.log(alpha)) / (alpha - 1)


def test_an_all_zcdp_mix_keeps_the_default_order():
    events = [ZCdpEvent(zcdp_rho(1.0, DELTA)), ZCdpEvent(zcdp_rho(0.5, DELTA))]
    choice = suggest_order(EPS, DELTA, events)
    assert choice.order == RenyiFilter(EPS, DELTA).order
    rho = sum(e.rho for e in events)
    # At the default order the mix costs ρα of B(α): the best ratio over a fine grid.
    best = min(rho * a / budget(a) for a in np.geomspace(1.05, 1000, 20000) if budget(a) > 0)
    assert choice.share == pytest.approx(best, rel=1e-3)


def test_a_subsampled_gaussian_mix_gets_the_order_where_it_costs_least():
    from opacus.accountants.analysis.rdp import compute_rdp

    q, sigma, steps = 0.5, 1.2, 4  # few, heavily sampled steps: far from zCDP's shape
    events = [PoissonSubsampledGaussianEvent(q, sigma, steps)]
    choice = suggest_order(EPS, DELTA, events)

    def share(alpha: float) -> float:  # opacus' RDP over B(α) written out above
        return float(compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=[alpha])[0]) / budget(alpha)

    default = RenyiFilter(EPS, DELTA).order
    assert choice.order != default
    assert share(choice.order) < 0.99 * share(default)
    assert choice.share == pytest.approx(share(choice.order), rel=1e-6)
    assert choice.default_share == pytest.approx(share(default), rel=1e-6)
    grid_best = min(share(a) for a in ORDER_GRID if a > 1.05 and budget(a) > 0)
    assert choice.share <= grid_best * (1 + 1e-9)
    assert choice.copies == pytest.approx(1 / choice.share)


def _policy(tmp_path, **kw):
    text = render_policy(epsilon=EPS, delta=DELTA, relation="add_or_remove_one", fingerprint="hmac-sha256:" + "ab" * 32,
                         max_records=32_561, generators=["*"], max_epsilon_per_run=None, allow_seeded_noise=False,
                         officer="officer", dataset_name="adult", ledger_id=None, allow_custom_code=False, **kw)
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def test_the_command_prints_an_order_line_the_policy_accepts(tmp_path):
    path = _policy(tmp_path)
    out = CliRunner().invoke(app, ["policy", "suggest-order", str(path), "--run", "dpctgan:3:epochs=2,batch_size=16000"])
    assert out.exit_code == 0, out.output
    assert "at the default order alpha* = 8.92606" in out.output
    line = out.output.strip().splitlines()[-1]
    assert line.startswith("order = ")
    order = float(line.split("=")[1])
    # Pinned in the policy, the filter runs at that order.
    text = path.read_text().replace("[budget]\n", f"[budget]\n{line}\n", 1)
    path.write_text(text)
    p = load_policy(path)
    assert p.order == order and RenyiFilter(p.epsilon, p.delta, order=p.order).order == order


def test_a_marginal_mix_is_told_to_keep_the_default(tmp_path):
    out = CliRunner().invoke(app, ["policy", "suggest-order", str(_policy(tmp_path)), "--run", "mst:1",
                                   "--run", "aim:0.5"])
    assert out.exit_code == 0, out.output
    assert "keep the default order" in out.output and "(mst ε 1, aim ε 0.5)" in out.output


@pytest.mark.parametrize("run,match", [
    ("mst", "write GENERATOR:EPSILON"),
    ("mst:-1", "EPSILON must be a finite number > 0"),
    ("mst:nan", "EPSILON must be a finite number > 0"),
    ("mst:one", "EPSILON must be a number"),
    ("nope:1", "unknown generator 'nope'"),
    ("dpctgan:1:epochz=3", "epochz"),
    ("dpctgan:1:epochs=3;rm", "not a number"),
    ("dpctgan:1:=3", "key=value"),
    ("dpctgan:1:epochs=0", "epochs"),
])
def test_hostile_runs_are_refused_naming_what_is_wrong(tmp_path, run, match):
    out = CliRunner().invoke(app, ["policy", "suggest-order", str(_policy(tmp_path)), "--run", run])
    assert out.exit_code != 0
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", out.output).split())  # the error box's frame, unwrapped
    assert match in text
