"""The privacy officer's budget policy: a signed TOML file.

Layout (every key not listed here is an error)::

    officer = "Ada Officer"                 # who is accountable for this budget
    generators = ["mst", "aim"]             # allowed generator names; "*" allows any
    allow_seeded_noise = false              # optional; true only for test ledgers
    allow_custom_code = false               # optional: may researchers run their own code on
                                            # the rows (each entry records the code's hash)?
    ledger_id = "0f…"                       # optional: the one ledger this policy governs
                                            # (`dpsynth ledger new-id`); init then uses it

    [dataset]
    name = "adult"
    fingerprint = "hmac-sha256:…"          # accountant.fingerprint.fingerprint_table
    max_records = 50000                     # public upper bound on the number of records n

    [budget]
    epsilon = 3.0
    delta = 1e-6                            # must be < 1 / max_records
    relation = "add_or_remove_one"          # or "replace_one"
    order = 8.0                             # optional: pin the filter order α*
    delta_reserve = 5e-7                    # optional (default 0): part of delta set aside for
                                            # approximate mechanisms (0 <= delta_reserve < delta)
    max_epsilon_per_run = 1.0               # optional per-run cap

The signature is *detached*: ``policy.toml.sig`` holds a small JSON document
with the SHA-256 of the policy file's exact bytes, the officer's key id and
public key, and an Ed25519 signature over that hash.  Signing the exact bytes
(not a re-serialisation) means the officer signs what they read.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .events import NeighbouringRelation
from .fingerprint import FINGERPRINT_PREFIX
from .keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    key_id,
    public_key_pem,
    sign,
    signature_is_valid,
)
from .ledger.hashing import sha256_hex
from .orders import MIN_CONVERSION_ORDER

__all__ = [
    "Policy",
    "PolicyError",
    "PolicySignature",
    "parse_policy",
    "load_policy",
    "policy_hash",
    "sign_policy",
    "sign_policy_file",
    "verify_policy_signature",
    "read_signature",
    "signature_path_for",
    "render_policy",
    "is_ledger_id",
    "new_ledger_id",
]

SIGNATURE_PURPOSE = "policy-v1"
WILDCARD = "*"


class PolicyError(ValueError):
    """The policy is malformed, invalid, unsigned or altered; the message names the field."""


@dataclass(frozen=True)
class Policy:
    """A validated budget policy.  Construct with `parse_policy` / `load_policy`."""

    officer: str
    dataset_name: str
    dataset_fingerprint: str
    max_records: int
    epsilon: float
    delta: float
    relation: NeighbouringRelation
    generators: tuple[str, ...]
    order: float | None = None
    max_epsilon_per_run: float | None = None
    allow_seeded_noise: bool = False
    delta_reserve: float = 0.0
    allow_custom_code: bool = False
    ledger_id: str | None = None
    source_sha256: str = field(default="", compare=False)

    def allows_generator(self, name: str | None) -> bool:
        if WILDCARD in self.generators:
            return True
        return name is not None and name in self.generators

    def summary(self) -> dict[str, Any]:
        """Plain-JSON view (for the ledger metadata and reports)."""
        return {
            "officer": self.officer,
            "dataset": {"name": self.dataset_name, "fingerprint": self.dataset_fingerprint,
                        "max_records": self.max_records},
            "budget": {"epsilon": self.epsilon, "delta": self.delta, "relation": self.relation.value,
                       "order": self.order, "max_epsilon_per_run": self.max_epsilon_per_run,
                       "delta_reserve": self.delta_reserve},
            "generators": list(self.generators),
            "allow_seeded_noise": self.allow_seeded_noise,
            "allow_custom_code": self.allow_custom_code,
            "ledger_id": self.ledger_id,
        }


_TOP = {"officer", "generators", "allow_seeded_noise", "allow_custom_code", "ledger_id", "dataset", "budget"}
LEDGER_ID_DIGITS = 32
_DATASET = {"name", "fingerprint", "max_records"}
_BUDGET = {"epsilon", "delta", "relation", "order", "max_epsilon_per_run", "delta_reserve"}


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in data:
        raise PolicyError(f"missing table [{key}]")
    value = data[key]
    if not isinstance(value, Mapping):
        raise PolicyError(f"{key} must be a table ([{key}]), got {type(value).__name__}")
    return value


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        names = ", ".join(f"{where}{k}" for k in extra)
        raise PolicyError(f"unknown key(s): {names} (allowed: {', '.join(sorted(allowed))})")


def _string(data: Mapping[str, Any], key: str, where: str) -> str:
    if key not in data:
        raise PolicyError(f"missing {where}{key}")
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where}{key} must be a non-empty string")
    return value.strip()


def _number(data: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> float | None:
    if key not in data:
        if required:
            raise PolicyError(f"missing {where}{key}")
        return None
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PolicyError(f"{where}{key} must be a finite number, got {value!r}")
    return float(value)


def parse_policy(text: str | bytes) -> Policy:
    """Parse and fully validate policy TOML; raises PolicyError naming the field."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"policy is not valid TOML: {exc}") from None
    _unknown(data, _TOP, "")
    officer = _string(data, "officer", "")

    ds = _table(data, "dataset")
    _unknown(ds, _DATASET, "dataset.")
    name = _string(ds, "name", "dataset.")
    fingerprint = _string(ds, "fingerprint", "dataset.")
    if not fingerprint.startswith(FINGERPRINT_PREFIX) or len(fingerprint) != len(FINGERPRINT_PREFIX) + 64:
        raise PolicyError(
            f"dataset.fingerprint must be '{FINGERPRINT_PREFIX}' followed by 64 hex digits "
            "(compute it with `dpsynth policy fingerprint`)"
        )
    try:
        int(fingerprint[len(FINGERPRINT_PREFIX):], 16)
    except ValueError:
        raise PolicyError("dataset.fingerprint must end in 64 hex digits") from None
    if "max_records" not in ds:
        raise PolicyError("missing dataset.max_records (a public upper bound on the number of records)")
    n = ds["max_records"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PolicyError(f"dataset.max_records must be an integer >= 1, got {n!r}")

    b = _table(data, "budget")
    _unknown(b, _BUDGET, "budget.")
    epsilon = _number(b, "epsilon", "budget.")
    if not epsilon > 0:
        raise PolicyError(f"budget.epsilon must be > 0, got {epsilon!r}")
    delta = _number(b, "delta", "budget.")
    if not 0 < delta < 1:
        raise PolicyError(f"budget.delta must satisfy 0 < delta < 1, got {delta!r}")
    if not delta < 1.0 / n:
        raise PolicyError(
            f"budget.delta = {delta!r} must be below 1/dataset.max_records = {1.0 / n!r} "
            "(a larger delta allows releasing a whole record outright)"
        )
    relation_text = b.get("relation", None)
    if relation_text is None:
        raise PolicyError("missing budget.relation (add_or_remove_one or replace_one)")
    try:
        relation = NeighbouringRelation(relation_text)
    except ValueError:
        allowed = ", ".join(r.value for r in NeighbouringRelation)
        raise PolicyError(f"budget.relation must be one of {allowed}, got {relation_text!r}") from None
    order = _number(b, "order", "budget.", required=False)
    if order is not None and not order >= MIN_CONVERSION_ORDER:
        raise PolicyError(f"budget.order must be >= {MIN_CONVERSION_ORDER}, got {order!r}")
    reserve = _number(b, "delta_reserve", "budget.", required=False)
    if reserve is None:
        reserve = 0.0
    if not 0 <= reserve < delta:
        raise PolicyError(f"budget.delta_reserve must satisfy 0 <= delta_reserve < budget.delta = {delta!r}, "
                          f"got {reserve!r}")
    cap = _number(b, "max_epsilon_per_run", "budget.", required=False)
    if cap is not None and not 0 < cap:
        raise PolicyError(f"budget.max_epsilon_per_run must be > 0, got {cap!r}")
    if cap is not None and cap > epsilon:
        raise PolicyError(f"budget.max_epsilon_per_run = {cap!r} exceeds budget.epsilon = {epsilon!r}")

    if "generators" not in data:
        raise PolicyError('missing generators (a list of allowed generator names, or ["*"])')
    gens = data["generators"]
    if not isinstance(gens, list) or not gens or not all(isinstance(g, str) and g.strip() for g in gens):
        raise PolicyError("generators must be a non-empty list of names")
    seeded = data.get("allow_seeded_noise", False)
    if not isinstance(seeded, bool):
        raise PolicyError(f"allow_seeded_noise must be true or false, got {seeded!r}")
    custom = data.get("allow_custom_code", False)
    if not isinstance(custom, bool):
        raise PolicyError(f"allow_custom_code must be true or false, got {custom!r}")
    ledger_id = data.get("ledger_id")
    if ledger_id is not None and not is_ledger_id(ledger_id):
        raise PolicyError(f"ledger_id must be {LEDGER_ID_DIGITS} lower-case hex digits "
                          "(make one with `dpsynth ledger new-id`)")

    policy = Policy(
        officer=officer, dataset_name=name, dataset_fingerprint=fingerprint, max_records=n,
        epsilon=epsilon, delta=delta, relation=relation, generators=tuple(g.strip() for g in gens),
        order=order, max_epsilon_per_run=cap, allow_seeded_noise=seeded, delta_reserve=reserve,
        allow_custom_code=custom, ledger_id=ledger_id, source_sha256=sha256_hex(raw),
    )
    _check_filter(policy)
    return policy


def is_ledger_id(value: Any) -> bool:
    """A ledger id: 32 lower-case hex digits (128 random bits)."""
    return (isinstance(value, str) and len(value) == LEDGER_ID_DIGITS
            and all(c in "0123456789abcdef" for c in value))


def new_ledger_id() -> str:
    """128 random bits from the operating system's CSPRNG, as 32 hex digits."""
    import secrets

    return secrets.token_hex(LEDGER_ID_DIGITS // 2)


def _check_filter(policy: Policy) -> None:
    from .filter import RenyiFilter

    try:
        RenyiFilter(policy.epsilon, policy.delta, order=policy.order, delta_reserve=policy.delta_reserve)
    except ValueError as exc:
        raise PolicyError(f"budget.order: {exc}") from None


def load_policy(path: str | os.PathLike) -> Policy:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy {p}: {exc.strerror}") from None
    try:
        return parse_policy(raw)
    except PolicyError as exc:
        raise PolicyError(f"{p}: {exc}") from None


def policy_hash(raw: bytes) -> str:
    """SHA-256 (hex) of the policy file's exact bytes: what entries and signatures bind."""
    return sha256_hex(raw)


@dataclass(frozen=True)
class PolicySignature:
    """A detached policy signature (the content of ``policy.toml.sig``)."""

    policy_sha256: str
    officer_key_id: str
    officer_public_key: str
    signature: str
    algorithm: str = "ed25519"

    def to_dict(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "policy_sha256": self.policy_sha256,
                "officer_key_id": self.officer_key_id, "officer_public_key": self.officer_public_key,
                "signature": self.signature}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PolicySignature":
        keys = {"algorithm", "policy_sha256", "officer_key_id", "officer_public_key", "signature"}
        if not isinstance(d, Mapping) or set(d) != keys:
            raise PolicyError(f"a policy signature must have exactly the fields {sorted(keys)}")
        if d["algorithm"] != "ed25519":
            raise PolicyError(f"signature.algorithm must be ed25519, got {d['algorithm']!r}")
        return cls(policy_sha256=d["policy_sha256"], officer_key_id=d["officer_key_id"],
                   officer_public_key=d["officer_public_key"], signature=d["signature"])


def sign_policy(raw: bytes, key: Ed25519PrivateKey) -> PolicySignature:
    """Validate the policy, then sign the SHA-256 of its exact bytes."""
    parse_policy(raw)
    digest = policy_hash(raw)
    return PolicySignature(policy_sha256=digest, officer_key_id=key_id(key),
                           officer_public_key=public_key_pem(key),
                           signature=sign(key, SIGNATURE_PURPOSE, digest.encode()))


def signature_path_for(policy_path: str | os.PathLike) -> Path:
    p = Path(policy_path)
    return p.with_name(p.name + ".sig")


def sign_policy_file(policy_path: str | os.PathLike, key: Ed25519PrivateKey,
                     out: str | os.PathLike | None = None) -> Path:
    raw = Path(policy_path).read_bytes()
    try:
        sig = sign_policy(raw, key)
    except PolicyError as exc:
        raise PolicyError(f"{policy_path}: {exc}") from None
    out_path = Path(out) if out is not None else signature_path_for(policy_path)
    out_path.write_text(json.dumps(sig.to_dict(), indent=2, sort_keys=True) + "\n")
    return out_path


def read_signature(path: str | os.PathLike) -> PolicySignature:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise PolicyError(f"cannot read policy signature {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise PolicyError(f"policy signature {path} is not JSON: {exc}") from None
    return PolicySignature.from_dict(data)


def verify_policy_signature(raw: bytes, sig: PolicySignature, officer_key: Ed25519PublicKey) -> None:
    """Raise PolicyError unless `sig` is the officer's valid signature of exactly `raw`."""
    digest = policy_hash(raw)
    if sig.policy_sha256 != digest:
        raise PolicyError("policy was altered after signing (its SHA-256 differs from the signed one)")
    if sig.officer_key_id != key_id(officer_key):
        raise PolicyError(
            f"policy was signed by key {sig.officer_key_id}, not by the officer key {key_id(officer_key)}"
        )
    if not signature_is_valid(officer_key, SIGNATURE_PURPOSE, digest.encode(), sig.signature):
        raise PolicyError("policy signature does not verify under the officer's public key")


def render_policy(*, epsilon: float, delta: float, relation: str, fingerprint: str, max_records: int,
                generators: Sequence[str] = ("*",), order: float | None = None,
                  max_epsilon_per_run: float | None = None, allow_seeded_noise: bool = False,
                  officer: str = "Test Officer", dataset_name: str = "test-dataset",
                  delta_reserve: float | None = None, allow_custom_code: bool | None = None,
                  ledger_id: str | None = None) -> str:
    """Policy TOML text with the given settings (validate it with `parse_policy`)."""
    lines = [
        f"officer = {json.dumps(officer, ensure_ascii=False)}",
        "generators = " + json.dumps(list(generators), ensure_ascii=False),
        f"allow_seeded_noise = {'true' if allow_seeded_noise else 'false'}",
    ]
    if allow_custom_code is not None:
        lines.append(f"allow_custom_code = {'true' if allow_custom_code else 'false'}")
    if ledger_id is not None:
        lines.append(f'ledger_id = "{ledger_id}"')
    lines += [
        "",
        "[dataset]",
        f"name = {json.dumps(dataset_name, ensure_ascii=False)}",
        f'fingerprint = "{fingerprint}"',
        f"max_records = {max_records}",
        "",
        "[budget]",
        f"epsilon = {float(epsilon)!r}",
        f"delta = {float(delta)!r}",
        f'relation = "{relation}"',
    ]
    if order is not None:
        lines.append(f"order = {float(order)!r}")
    if max_epsilon_per_run is not None:
        lines.append(f"max_epsilon_per_run = {float(max_epsilon_per_run)!r}")
    if delta_reserve is not None:
        lines.append(f"delta_reserve = {float(delta_reserve)!r}")
    return "\n".join(lines) + "\n"
