"""The service's configuration: a TOML file the privacy officer signs.

It names the governed datasets (their data, schema, dataset key, signed policy,
ledger and ledger key — files on the service's machine, never sent anywhere), the
roster of people (name, roles, public key, per-person caps) and the service's
limits.  The service starts only under a configuration whose detached signature
(`CONFIG.sig`) verifies under the officer key it was started with, and accepts a
replacement only if it is signed by the same key and carries a higher `version`
(an old roster cannot be replayed to restore a removed person).

    [service]
    name = "acme-privacy"
    version = 1
    state = "state"                 # jobs, results, nonces (relative to this file)
    workers = 2                     # jobs run at once
    max_request_bytes = 8_000_000
    requests_per_minute = 600       # per person
    response_quantum_ms = 50        # measurement responses leave on a 50 ms grid
    max_cells_per_request = 10_000_000   # cells of all marginals one measurement may count

    [[datasets]]
    name = "adult"
    data = "data/adult.csv"
    schema = "data/adult.schema.toml"
    dataset_key = "keys/adult.dataset.key"
    policy = "adult-policy.toml"    # signature: adult-policy.toml.sig
    ledger = "adult-ledger.db"      # or postgresql://host/db#ledger=adult
    ledger_key = "keys/adult-ledger.key"
    default_cap = 1.0               # ε a person may spend on this dataset unless their entry says

    [[people]]
    name = "alice"
    roles = ["researcher"]          # officer, researcher, auditor
    public_key = "people/alice.pub"
    caps = { adult = 0.5 }
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from accountant.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    KeyFileError,
    key_id,
    load_public_key,
    public_key_from_pem,
    sign,
    signature_is_valid,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "ServiceConfig", "DatasetConfig", "Person", "ROLES", "parse_config", "load_config",
           "sign_config_file", "config_signature_path", "verify_config_signature", "CONFIG_PURPOSE"]

CONFIG_PURPOSE = "service-config-v1"
ROLES = ("officer", "researcher", "auditor")
NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")
MAX_CONFIG_BYTES = 1_000_000
# The cells of all the marginals one measurement counts (a request names columns, not cells:
# 5,000 cliques of 10 columns each are a few kilobytes of JSON and terabytes of noise).
MAX_CELLS_PER_REQUEST = 10_000_000
MAX_MARGINAL_CELLS = 50_000_000   # dpsynth.table.queries.MAX_MARGINAL_CELLS (one marginal)


class ConfigError(ValueError):
    """The configuration is malformed, unsigned, or signed by another key; names the field."""


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    data: Path
    schema: Path
    dataset_key: Path
    policy: Path
    policy_signature: Path
    ledger: str                 # a file path (SQLite) or a postgresql:// URL
    ledger_key: Path
    default_cap: float | None


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...]
    public_key: Ed25519PublicKey = field(repr=False)
    key_id: str
    caps: Mapping[str, float]

    def has(self, role: str) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    version: int
    state: Path
    workers: int
    max_request_bytes: int
    requests_per_minute: int
    response_quantum_ms: int
    max_cells_per_request: int
    datasets: tuple[DatasetConfig, ...]
    people: tuple[Person, ...]
    raw: bytes = field(repr=False)
    base: Path = field(repr=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def dataset(self, name: str) -> DatasetConfig | None:
        return next((d for d in self.datasets if d.name == name), None)

    def person_by_key(self, kid: str) -> Person | None:
        return next((p for p in self.people if p.key_id == kid), None)

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)

    def cap(self, person: Person, dataset: str) -> float | None:
        """The person's ε cap on the dataset: their own entry, else the dataset's default."""
        if dataset in person.caps:
            return person.caps[dataset]
        d = self.dataset(dataset)
        return None if d is None else d.default_cap


# --------------------------------------------------------------------------- parsing

def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{key}] must be a table")
    return value


def _unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _int(data: Mapping[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}.{key}: must be an integer in [{low}, {high}], got {value!r}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise ConfigError(f"{where}: must be a name of lower-case letters, digits, '_', '.', '-' (starting with a "
                          f"letter, at most 63), got {value!r}")
    return value


def _path(data: Mapping[str, Any], key: str, where: str, base: Path) -> Path:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: a path is required")
    p = Path(value)
    return p if p.is_absolute() else (base / p)


def _cap(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{where}: must be a finite epsilon > 0, got {value!r}")
    return float(value)


def _dataset(data: Any, i: int, base: Path) -> DatasetConfig:
    where = f"datasets[{i}]"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a table")
    _unknown(data, {"name", "data", "schema", "dataset_key", "policy", "policy_signature", "ledger", "ledger_key",
                    "default_cap"}, where)
    name = _name(data.get("name"), f"{where}.name")
    ledger = data.get("ledger")
    if not isinstance(ledger, str) or not ledger.strip():
        raise ConfigError(f"{where}.ledger: a ledger path or postgresql:// URL is required")
    if not ledger.startswith(("postgresql://", "postgres://")) and not Path(ledger).is_absolute():
        ledger = str(base / ledger)
    policy = _path(data, "policy", where, base)
    sig = _path(data, "policy_signature", where, base) if "policy_signature" in data else \
        policy.with_name(policy.name + ".sig")
    cap = data.get("default_cap")
    return DatasetConfig(name=name, data=_path(data, "data", where, base), schema=_path(data, "schema", where, base),
                         dataset_key=_path(data, "dataset_key", where, base), policy=policy, policy_signature=sig,
                         ledger=ledger, ledger_key=_path(data, "ledger_key", where, base),
                         default_cap=None if cap is None else _cap(cap, f"{where}.default_cap"))


def _person(data: Any, i: int, base: Path, datasets: set[str]) -> Person:
    where = f"people[{i}]"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a table")
    _unknown(data, {"name", "roles", "public_key", "caps"}, where)
    name = _name(data.get("name"), f"{where}.name")
    roles = data.get("roles")
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles) or len(set(roles)) != len(roles):
        raise ConfigError(f"{where}.roles: a non-empty list of distinct roles from {', '.join(ROLES)}, got {roles!r}")
    pk = data.get("public_key")
    if not isinstance(pk, str) or not pk.strip():
        raise ConfigError(f"{where}.public_key: a PEM public key or the path of one is required")
    try:
        if pk.lstrip().startswith("-----BEGIN"):
            key = public_key_from_pem(pk)
        else:
            p = Path(pk)
            key = load_public_key(p if p.is_absolute() else base / p)
    except KeyFileError as exc:
        raise ConfigError(f"{where}.public_key: {exc}") from None
    caps_raw = data.get("caps", {})
    if not isinstance(caps_raw, Mapping):
        raise ConfigError(f"{where}.caps: must be a table {{dataset = epsilon}}")
    caps = {}
    for ds, value in caps_raw.items():
        if ds not in datasets:
            raise ConfigError(f"{where}.caps.{ds}: no dataset of that name")
        caps[ds] = _cap(value, f"{where}.caps.{ds}")
    return Person(name=name, roles=tuple(roles), public_key=key, key_id=key_id(key), caps=caps)


def parse_config(raw: bytes, base: str | os.PathLike) -> ServiceConfig:
    """Parse and check a configuration's text (paths relative to `base`); ConfigError names the field."""
    base = Path(base)
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"the configuration is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}") from None
    _unknown(data, {"service", "datasets", "people"}, "config")
    svc = _table(data, "service")
    _unknown(svc, {"name", "version", "state", "workers", "max_request_bytes", "requests_per_minute",
                   "response_quantum_ms", "max_cells_per_request"}, "service")
    name = _name(svc.get("name", "dpsynth"), "service.name")
    version = _int(svc, "version", "service", 1, 1, 2 ** 53)
    datasets_raw = data.get("datasets", [])
    if not isinstance(datasets_raw, list) or not datasets_raw:
        raise ConfigError("datasets: at least one [[datasets]] table is required")
    datasets = tuple(_dataset(d, i, base) for i, d in enumerate(datasets_raw))
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"datasets: the name {next(n for n in names if names.count(n) > 1)!r} is used twice")
    people_raw = data.get("people", [])
    if not isinstance(people_raw, list) or not people_raw:
        raise ConfigError("people: at least one [[people]] table is required (the roster)")
    people = tuple(_person(p, i, base, set(names)) for i, p in enumerate(people_raw))
    for attr, what in (("name", "name"), ("key_id", "public key")):
        seen: dict[str, int] = {}
        for i, p in enumerate(people):
            v = getattr(p, attr)
            if v in seen:
                raise ConfigError(f"people[{i}]: the same {what} as people[{seen[v]}] (each person has their own)")
            seen[v] = i
    state = Path(svc.get("state", "state")) if isinstance(svc.get("state", "state"), str) else None
    if state is None:
        raise ConfigError("service.state: must be a path")
    return ServiceConfig(
        name=name, version=version, state=state if state.is_absolute() else base / state,
        workers=_int(svc, "workers", "service", 2, 1, 64),
        max_request_bytes=_int(svc, "max_request_bytes", "service", 8_000_000, 1024, 256_000_000),
        requests_per_minute=_int(svc, "requests_per_minute", "service", 600, 1, 1_000_000),
        response_quantum_ms=_int(svc, "response_quantum_ms", "service", 50, 0, 10_000),
        max_cells_per_request=_int(svc, "max_cells_per_request", "service", MAX_CELLS_PER_REQUEST, 1,
                                   MAX_MARGINAL_CELLS),
        datasets=datasets, people=people, raw=raw, base=base)


# --------------------------------------------------------------------------- signatures

def config_signature_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sig")


def _signature_record(raw: bytes, key: Ed25519PrivateKey) -> dict[str, str]:
    digest = hashlib.sha256(raw).hexdigest()
    return {"algorithm": "ed25519", "config_sha256": digest, "officer_key_id": key_id(key),
            "signature": sign(key, CONFIG_PURPOSE, digest.encode())}


def sign_config_file(path: str | os.PathLike, key: Ed25519PrivateKey, out: str | os.PathLike | None = None) -> Path:
    """Check the configuration, then write its detached signature (CONFIG.sig)."""
    p = Path(path)
    raw = p.read_bytes()
    parse_config(raw, p.parent)
    out_path = Path(out) if out is not None else config_signature_path(p)
    out_path.write_text(json.dumps(_signature_record(raw, key), indent=2, sort_keys=True) + "\n")
    return out_path


def verify_config_signature(raw: bytes, signature_text: str | bytes, officer: Ed25519PublicKey) -> None:
    """Raise ConfigError unless `signature_text` is the officer's signature of exactly `raw`."""
    try:
        sig = json.loads(signature_text)
    except (ValueError, TypeError):
        raise ConfigError("the configuration's signature is not JSON") from None
    fields = {"algorithm", "config_sha256", "officer_key_id", "signature"}
    if not isinstance(sig, dict) or set(sig) != fields or not all(isinstance(v, str) for v in sig.values()):
        raise ConfigError(f"the configuration's signature must have exactly the fields {sorted(fields)}")
    digest = hashlib.sha256(raw).hexdigest()
    if sig["algorithm"] != "ed25519":
        raise ConfigError("the configuration's signature must be ed25519")
    if sig["config_sha256"] != digest:
        raise ConfigError("the configuration was changed after it was signed (its SHA-256 differs)")
    if sig["officer_key_id"] != key_id(officer):
        raise ConfigError(f"the configuration was signed by {sig['officer_key_id']}, not by the officer key the "
                          f"service trusts ({key_id(officer)})")
    if not signature_is_valid(officer, CONFIG_PURPOSE, digest.encode(), sig["signature"]):
        raise ConfigError("the configuration's signature does not verify under the officer key")


def load_config(path: str | os.PathLike, officer: Ed25519PublicKey,
                signature: str | os.PathLike | None = None) -> ServiceConfig:
    """Read, verify (under the pinned officer key) and parse a signed configuration file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror}") from None
    sig_path = Path(signature) if signature is not None else config_signature_path(p)
    try:
        sig = sig_path.read_text()
    except OSError:
        raise ConfigError(f"{p} is not signed: no {sig_path.name} beside it (the officer signs it with "
                          "`dpsynth serve sign-config`)") from None
    verify_config_signature(raw, sig, officer)
    return parse_config(raw, p.parent)
