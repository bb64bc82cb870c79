"""Event construction, validation, and neighbouring relations."""

from __future__ import annotations

import pytest

from accountant import (
    ComposedEvent,
    DiscreteGaussianEvent,
    GaussianEvent,
    GNMaxEvent,
    NeighbouringRelation,
    PoissonSubsampledGaussianEvent,
    RDPAccountant,
    SelfComposedEvent,
    event_from_json,
)

REPLACE = NeighbouringRelation.REPLACE_ONE


def test_poisson_subsampling_is_refused_under_replace_one():
    with pytest.raises(ValueError, match="add_or_remove_one only"):
        PoissonSubsampledGaussianEvent(0.01, 1.0, 10, relation=REPLACE)


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: GaussianEvent(0), "noise_multiplier"),
        (lambda: GaussianEvent(-1.0), "noise_multiplier"),
        (lambda: GaussianEvent(float("inf")), "noise_multiplier"),
        (lambda: GaussianEvent(float("nan")), "noise_multiplier"),
        (lambda: DiscreteGaussianEvent(1.0, 0), "l2_sensitivity"),
        (lambda: PoissonSubsampledGaussianEvent(1.5, 1.0, 10), "sampling_rate"),
        (lambda: PoissonSubsampledGaussianEvent(0.1, 1.0, 0), "steps"),
        (lambda: GNMaxEvent(10.0, 0), "queries"),
        (lambda: SelfComposedEvent(GaussianEvent(1.0), 0), "count"),
    ],
)
def test_bad_parameters_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_types_are_checked():
    with pytest.raises(TypeError, match="steps"):
        PoissonSubsampledGaussianEvent(0.1, 1.0, 2.5)
    with pytest.raises(TypeError, match="noise_multiplier"):
        GaussianEvent("1.0")
    with pytest.raises(TypeError):
        GaussianEvent(True)


def test_composition_refuses_mixed_relations():
    with pytest.raises(ValueError, match="mixes"):
        ComposedEvent((GaussianEvent(1.0), GaussianEvent(1.0, relation=REPLACE)))


def test_accountant_refuses_foreign_relation():
    with pytest.raises(ValueError, match="replace_one"):
        RDPAccountant().compose(GaussianEvent(1.0, relation=REPLACE))
    assert RDPAccountant(relation=REPLACE).compose(GaussianEvent(1.0, relation=REPLACE)).rho == 0.5


def test_ints_become_floats_so_json_is_canonical():
    assert GaussianEvent(2).to_json() == GaussianEvent(2.0).to_json()
    assert GaussianEvent(2).to_json() == '{"noise_multiplier":2.0,"relation":"add_or_remove_one","type":"gaussian"}'


@pytest.mark.parametrize(
    "text,msg",
    [
        ('{"type":"nope"}', "unknown event type"),
        ('{"type":"gaussian"}', "missing"),
        ('{"type":"gaussian","noise_multiplier":1.0,"extra":1}', "unknown field"),
        ('{"type":"gaussian","noise_multiplier":1.0,"relation":"sideways"}', "relation"),
        ("[1,2]", "JSON object"),
        ("{not json", "does not parse"),
    ],
)
def test_bad_json(text, msg):
    with pytest.raises((ValueError, TypeError), match=msg):
        event_from_json(text)


def test_accountant_validates_delta_and_count():
    acc = RDPAccountant().compose(GaussianEvent(1.0))
    for bad in (0, 1, -1e-5, float("nan")):
        with pytest.raises(ValueError, match="delta"):
            acc.get_epsilon(bad)
    with pytest.raises(ValueError, match="count"):
        acc.compose(GaussianEvent(1.0), count=0)


def test_mixed_curve_uses_grid_and_zcdp_uses_closed_form():
    acc = RDPAccountant().compose(GaussianEvent(5.0))
    assert acc.is_zcdp
    acc.compose(PoissonSubsampledGaussianEvent(0.01, 1.0, 100))
    assert not acc.is_zcdp
    eps, order = acc.get_epsilon_and_order(1e-5)
    assert order in set(acc.orders.tolist())
    assert 0 < eps < 10
