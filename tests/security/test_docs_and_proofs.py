"""The constants and claims proofs/*.md state, against the code that carries them (threat
model #13: docs and proofs disagreed with the code).  Citations themselves are checked in
test_proofs.py.
"""

from __future__ import annotations

import math
import re

import pytest

from .citations import ROOT


def _proof(name: str) -> str:
    return (ROOT / "proofs" / name).read_text(encoding="utf-8")


def test_event_size_caps_are_the_ones_the_proof_states():
    from accountant.events import MAX_LEAVES, MAX_NESTING

    text = _proof("accountant.md")
    assert f"`MAX_NESTING` = {MAX_NESTING}" in text
    assert re.search(r"`MAX_LEAVES` = 10[ ,]?000", text) and MAX_LEAVES == 10_000


def test_exponential_mechanism_grid_is_the_one_the_proof_states():
    from dpsynth.noise.exponential_mechanism import GRID_STEPS

    assert "GRID_STEPS = 2^20" in _proof("exponential_mechanism.md") and GRID_STEPS == 2**20


def test_poisson_rate_is_the_one_the_proofs_state():
    for name in ("dpctgan.md", "subsampled_gaussian.md"):
        assert "⌊q·2⁶⁴⌋/2⁶⁴ ≤ q" in _proof(name), name
    import inspect

    from dpsynth.table import dpsgd

    assert "2**64" in inspect.getsource(dpsgd._poisson_threshold)


def test_gnmax_noise_scales_are_stated_per_relation():
    text = _proof("gnmax.md")
    assert "s = σ (add/remove)" in text and "2σ" in text
    # The code's scale: proofs/gnmax.md's table row "s = σ (add/remove); s = 2σ needed under
    # replace-one" is what tests/security/test_mechanisms.py measures on the released votes.
    import inspect

    from dpsynth.table.pate import PateSession

    from dpsynth.table.pate import _vote_sensitivity

    # The coded scale is σ·Δ₂/√2: σ under add/remove (Δ₂ = √2), 2σ under replace-one (Δ₂ = 2√2).
    assert _vote_sensitivity(False) == math.sqrt(2.0) and _vote_sensitivity(True) == 2 * math.sqrt(2.0)
    assert "PateSession" in inspect.getsource(PateSession)


def test_gnmax_proof_states_the_coded_replace_one_noise():
    text = _proof("gnmax.md")
    assert "the code at this commit uses\nσ√2" not in text and "σ√2 (replace-one, as\n   coded)" not in text
    assert "(fails on this commit)" not in text
    assert "is undercharged by a factor 2 under replace-one" not in text


def test_threat_model_marks_nothing_pending_that_the_code_does():
    text = _proof("threat_model.md")
    assert "at this commit they still name the row" not in text
    for row in ("| 7 |", "| 10 |", "| 11 |", "| 12 |"):
        line = next(line for line in text.splitlines() if line.startswith(row))
        assert "**pending**" not in line, row
    assert "`PrivateTable.select_marginal` counts without `check_counts_of_records`" not in text


def test_select_marginal_checks_its_counts_before_release():
    import inspect

    from dpsynth.table import PrivateTable

    assert "check_counts_of_records" in inspect.getsource(PrivateTable.select_marginal)
