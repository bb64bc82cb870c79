"""The constants each mechanism's proof rests on, checked where the code carries them
(proofs/gnmax.md, proofs/dpctgan.md, proofs/subsampled_gaussian.md, proofs/marginals.md):
one cell per record, one vote per teacher, clipping, the Poisson rate, noise from the
table's own source and at the proved scale.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from dpsynth.nn import DiscriminatorSpec, TeacherSpec
from dpsynth.table.dpsgd import AccessError
from dpsynth.table.identity import record_keys
from dpsynth.table.sensitivity import (
    SensitivityViolation,
    check_clipped_norms,
    check_counts_of_records,
    check_votes,
)

from .support import governed, ledger_bytes, small_frame, table_on

TINY = DiscriminatorSpec((4,), 0.0)


def _zeros(session) -> dict:
    return {n: torch.zeros(p.shape) for n, p in TINY.build(session.input_dim).named_parameters()}


def test_count_table_not_one_cell_per_record_is_refused():
    check_counts_of_records([np.array([3, 2, 0]), np.array([[1, 4]])], 5, "marginals")
    for tables in ([np.array([3, 3, 0])],            # a record counted in two cells
                   [np.array([3, 1, 0])],            # a record in none
                   [np.array([6, -1, 0])],           # a negative count
                   [np.array([2.5, 2.5, 0.0])],      # not counts (a sum of values)
                   [np.array([3, 2]), np.array([5, 1])]):
        with pytest.raises(SensitivityViolation):
            check_counts_of_records(tables, 5, "marginals")


def test_vote_histogram_not_one_vote_per_teacher_is_refused():
    check_votes(np.array([[2, 1], [0, 3]]), 3)
    for votes in (np.array([[2, 2], [0, 3]]), np.array([[4, -1]]), np.array([[1, 1]])):
        with pytest.raises(SensitivityViolation):
            check_votes(votes, 3)


def test_unclipped_gradient_release_is_refused(tmp_path):
    check_clipped_norms(np.array([0.5, 1.0, 1.0 + 1e-7]), 1.0)
    for norms in (np.array([0.5, 1.01]), np.array([np.nan]), np.array([np.inf])):
        with pytest.raises(SensitivityViolation):
            check_clipped_norms(norms, 1.0)
    # Through the public session: gradients blown up by huge weights still leave as a sum of
    # n terms of norm <= C, plus noise of scale σC.
    ledger = governed(tmp_path / "l")
    table = table_on(ledger, seed=1)
    sigma, clip, n = 1.0, 1.0, 60
    session = table.dpsgd_session(discriminator=TINY, sampling_rate=1.0, noise_multiplier=sigma, steps=2,
                                  max_grad_norm=clip, purpose="huge gradients")
    params = {k: v + 1e3 for k, v in _zeros(session).items()}
    out = torch.cat([t.flatten() for t in session.step(params)])
    d = out.numel()
    assert float(out.norm()) <= n * clip + 6 * sigma * clip * math.sqrt(d)
    session.close()


def test_poisson_rate_above_q_is_refused():
    from dpsynth.table.dpsgd import _poisson_threshold  # the constant proofs/dpctgan.md cites

    rng = random.Random(0)
    qs = [rng.random() for _ in range(2000)] + [1e-12, 2**-64, 2**-65, 0.5, 1 - 2**-53, 1 - 1e-9, 1e-300]
    for q in qs:
        t = _poisson_threshold(q)
        assert t is not None and 0 <= t <= 2**64 and Fraction(t, 2**64) <= Fraction(q), q
    assert _poisson_threshold(1.0) is None  # q = 1: every record


def test_dpsgd_noise_not_from_the_tables_source_is_refused(tmp_path):
    ledger = governed(tmp_path / "l", epsilon=50.0)
    sigma, clip = 2.0, 3.0

    def run(seed: int, disturb: bool) -> np.ndarray:
        table = table_on(ledger, seed=seed)
        # A rate so small that no record is sampled: the output is the noise alone.
        session = table.dpsgd_session(discriminator=TINY, sampling_rate=1e-12, noise_multiplier=sigma, steps=8,
                                      max_grad_norm=clip, purpose="noise only")
        outs = []
        for step in range(session.steps):
            if disturb:  # global random states must not matter
                torch.manual_seed(step)
                np.random.seed(step)
                random.seed(step)
            outs.append(torch.cat([t.flatten() for t in session.step(_zeros(session))]).numpy())
        session.close()
        return np.concatenate(outs)

    a, b, c = run(5, False), run(5, True), run(6, False)
    assert np.array_equal(a, b), "the noise depends on a global random state"
    assert not np.array_equal(a, c), "the noise does not come from the table's source"
    assert abs(float(np.std(a)) / (sigma * clip) - 1) < 0.15, float(np.std(a))


def test_pate_partition_moving_another_teachers_data_is_refused():
    """Teacher = key mod k and each partition is sorted by key: if removing a record leaves
    every other record's key unchanged, every other teacher's data and its order are unchanged."""
    frame = small_frame(40).copy()
    frame.loc[5] = frame.loc[3]  # two identical records
    key = b"k" * 32
    keys = record_keys(frame, key)
    for removed in (0, 17, 39):
        others = record_keys(frame.drop(index=removed).reset_index(drop=True), key)
        assert np.array_equal(others, np.delete(keys, removed)), removed
    for removed in (3, 5):  # removing either copy leaves the same multiset of keys (copies interchangeable)
        others = record_keys(frame.drop(index=removed).reset_index(drop=True), key)
        assert sorted(others.tolist()) == sorted(np.delete(keys, 5).tolist())
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert sorted(record_keys(shuffled, key).tolist()) == sorted(keys.tolist()), "keys depend on row order"
    assert not np.array_equal(record_keys(frame, b"j" * 32), keys)
    with pytest.raises(ValueError):
        record_keys(frame, b"short")


def test_pate_query_beyond_the_plan_is_refused(tmp_path):
    ledger = governed(tmp_path / "l")
    table = table_on(ledger)
    session = table.pate_session(teachers=3, teacher=TeacherSpec((4,), batch_size=8), noise_multiplier=50.0,
                                 queries=3, purpose="three queries")
    dim = session.layout.dim
    before = ledger_bytes(ledger.ledger_path)
    with pytest.raises(AccessError):
        session.votes(np.zeros((4, dim), np.float32))
    assert session.queries_done == 0 and ledger_bytes(ledger.ledger_path) == before
    session.votes(np.zeros((3, dim), np.float32))
    with pytest.raises(AccessError):
        session.votes(np.zeros((1, dim), np.float32))
    assert session.close().kind == "release"


@pytest.mark.parametrize("relation, factor", [("add_or_remove_one", 1.0), ("replace_one", 2.0)])
def test_pate_replace_one_vote_noise_below_two_sigma_is_refused(tmp_path, relation, factor):
    """Replace-one moves the votes by up to 2√2: the noise must be 2σ for GNMaxEvent's ρ."""
    ledger = governed(tmp_path / "l", relation=relation, epsilon=40.0)
    table = table_on(ledger, seed=3)
    sigma, q = 20.0, 500
    session = table.pate_session(teachers=4, teacher=TeacherSpec((4,), batch_size=8), noise_multiplier=sigma,
                                 queries=q, purpose="noise scale")
    votes = session.votes(np.zeros((q, session.layout.dim), np.float32))  # one query, asked q times
    session.close()
    sd = float(np.std(votes[:, 0]))
    assert abs(sd / (factor * sigma) - 1) < 0.15, (relation, sd)
