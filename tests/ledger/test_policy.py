"""Policy parsing, validation (errors name the field) and signatures."""

from __future__ import annotations

import pytest

from accountant.events import NeighbouringRelation
from accountant.keys import load_private_key, load_public_key, write_keypair
from accountant.policy import (
    PolicyError,
    parse_policy,
    read_signature,
    sign_policy_file,
    verify_policy_signature,
)
from accountant.testing import policy_toml

FP = "hmac-sha256:" + "ab" * 32


def _text(**kw):
    args = dict(epsilon=3.0, delta=1e-6, relation="add_or_remove_one", fingerprint=FP, max_records=1000,
                generators=("mst", "aim"))
    args.update(kw)
    return policy_toml(**args)


def test_valid_policy():
    p = parse_policy(_text(order=8.0, max_epsilon_per_run=1.0))
    assert p.epsilon == 3.0 and p.delta == 1e-6 and p.relation is NeighbouringRelation.ADD_OR_REMOVE_ONE
    assert p.order == 8.0 and p.max_epsilon_per_run == 1.0 and p.generators == ("mst", "aim")
    assert p.allows_generator("mst") and not p.allows_generator("dpctgan") and not p.allows_generator(None)


@pytest.mark.parametrize("mutate,field", [
    (lambda t: t + "colour = 'blue'\n", "budget.colour"),
    (lambda t: "extra = 1\n" + t, "extra"),
    (lambda t: t.replace("epsilon = 3.0", "epsilon = 0.0"), "budget.epsilon"),
    (lambda t: t.replace("epsilon = 3.0", "epsilon = -1.0"), "budget.epsilon"),
    (lambda t: t.replace("epsilon = 3.0", "epsilon = inf"), "budget.epsilon"),
    (lambda t: t.replace("epsilon = 3.0\n", ""), "budget.epsilon"),
    (lambda t: t.replace("delta = 1e-06", "delta = 0.001"), "dataset.max_records"),
    (lambda t: t.replace("delta = 1e-06", "delta = 1.5"), "budget.delta"),
    (lambda t: t.replace("add_or_remove_one", "swap_two"), "budget.relation"),
    (lambda t: t.replace(FP, "sha256:abc"), "dataset.fingerprint"),
    (lambda t: t.replace("max_records = 1000", "max_records = 0"), "dataset.max_records"),
    (lambda t: t.replace("max_records = 1000\n", ""), "dataset.max_records"),
    (lambda t: t.replace('generators = ["mst", "aim"]', "generators = []"), "generators"),
    (lambda t: t.replace('officer = "Test Officer"', 'officer = ""'), "officer"),
    (lambda t: t + "order = 1.0\n", "budget.order"),
    (lambda t: t + "max_epsilon_per_run = 5.0\n", "budget.max_epsilon_per_run"),
    (lambda t: t.replace("allow_seeded_noise = true", "allow_seeded_noise = 1"), "allow_seeded_noise"),
    (lambda t: t + "[[", "TOML"),
])
def test_errors_name_the_field(mutate, field):
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        parse_policy(mutate(_text()))


def test_sign_and_verify(tmp_path):
    key_path, pub_path = write_keypair(tmp_path, "officer")
    policy = tmp_path / "policy.toml"
    policy.write_text(_text())
    sig_path = sign_policy_file(policy, load_private_key(key_path))
    assert sig_path.name == "policy.toml.sig"
    sig = read_signature(sig_path)
    verify_policy_signature(policy.read_bytes(), sig, load_public_key(pub_path))
    # One changed byte (even whitespace) and the signature no longer covers it.
    with pytest.raises(PolicyError, match="altered"):
        verify_policy_signature(policy.read_bytes() + b"\n", sig, load_public_key(pub_path))
    _, other_pub = write_keypair(tmp_path, "other")
    with pytest.raises(PolicyError, match="not by the officer key"):
        verify_policy_signature(policy.read_bytes(), sig, load_public_key(other_pub))


def test_invalid_policy_is_not_signed(tmp_path):
    key_path, _ = write_keypair(tmp_path, "officer")
    policy = tmp_path / "policy.toml"
    policy.write_text(_text().replace("epsilon = 3.0", "epsilon = 0.0"))
    with pytest.raises(PolicyError, match="budget.epsilon"):
        sign_policy_file(policy, load_private_key(key_path))
