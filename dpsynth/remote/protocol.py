"""The wire protocol between a researcher's client and the privacy service.

Every API request is signed with the person's Ed25519 key (registered by the
officer in the service's roster).  The signature covers the service it is meant
for (the `service.name` of the officer's configuration: the audience), the
method, the path with its query string, a time, a random nonce, the person's key
id and the SHA-256 of the body, under its own purpose string (domain separation
from every other signature dpsynth makes):

    dpsynth-request-v2 \\n service \\n METHOD \\n /path?query \\n unix-seconds \\n nonce \\n key-id \\n
    sha256(body)

The service refuses a time more than `MAX_CLOCK_SKEW` seconds away from its own
and a nonce it has seen (it remembers nonces for twice that window), so a
captured request cannot be replayed, and a body cannot be swapped under a
signature.  Nonces are remembered per service, so the audience is what stops a
request captured at one service (or by its operator) from being replayed, within
the time window, to another service that registered the same person's key: the
path alone does not name the service (two services behind one host under
/a/ and /b/ both see /api/v1/...).  No bearer secret ever crosses the wire.

Both sides import this module; it depends on nothing but `accountant.keys`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping

from accountant.keys import Ed25519PrivateKey, Ed25519PublicKey, key_id, sign, signature_is_valid

__all__ = [
    "REQUEST_PURPOSE",
    "MAX_CLOCK_SKEW",
    "HEADER_KEY",
    "HEADER_TIME",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_SERVICE",
    "API_PREFIX",
    "SignedHeaders",
    "canonical_request",
    "sign_request",
    "request_signature_is_valid",
    "new_request_id",
    "encode_answer",
    "decode_answer",
]

REQUEST_PURPOSE = "service-request-v1"
MAX_CLOCK_SKEW = 300
API_PREFIX = "/api/v1"
HEADER_KEY = "x-dpsynth-key"
HEADER_TIME = "x-dpsynth-time"
HEADER_NONCE = "x-dpsynth-nonce"
HEADER_SIGNATURE = "x-dpsynth-signature"
HEADER_SERVICE = "x-dpsynth-service"
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_KEY_ID = re.compile(r"^ed25519:[0-9a-f]{16}$")
_SERVICE = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")   # dpsynth.serve.config.NAME


@dataclass(frozen=True)
class SignedHeaders:
    key: str
    time: int
    nonce: str
    signature: str
    service: str

    def as_dict(self) -> dict[str, str]:
        return {HEADER_KEY: self.key, HEADER_TIME: str(self.time), HEADER_NONCE: self.nonce,
                HEADER_SIGNATURE: self.signature, HEADER_SERVICE: self.service}

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> "SignedHeaders | None":
        """The signing headers, or None when any is missing or malformed."""
        try:
            key, t, nonce, sig, service = (headers.get(h) for h in (HEADER_KEY, HEADER_TIME, HEADER_NONCE,
                                                                    HEADER_SIGNATURE, HEADER_SERVICE))
        except AttributeError:
            return None
        if not all(isinstance(v, str) for v in (key, t, nonce, sig, service)):
            return None
        if not _KEY_ID.match(key) or not _NONCE.match(nonce) or not t.isdigit() or len(t) > 12 or len(sig) > 200 \
                or not _SERVICE.match(service):
            return None
        return cls(key, int(t), nonce, sig, service)


def canonical_request(service: str, method: str, target: str, when: int, nonce: str, key: str,
                      body: bytes) -> bytes:
    """The bytes a request signature covers (see the module docstring)."""
    return "\n".join(("dpsynth-request-v2", service, method.upper(), target, str(int(when)), nonce, key,
                      hashlib.sha256(body).hexdigest())).encode()


def sign_request(key: Ed25519PrivateKey, method: str, target: str, body: bytes, *, service: str,
                 when: int | None = None) -> SignedHeaders:
    """Headers that authenticate one request to `service` (its configured name; a fresh nonce
    each time)."""
    if not isinstance(service, str) or not _SERVICE.match(service):
        raise ValueError(f"service must be a service's name (lower-case letters, digits, '_', '.', '-'), "
                         f"got {service!r}")
    kid = key_id(key)
    t = int(time.time()) if when is None else int(when)
    nonce = secrets.token_hex(16)
    sig = sign(key, REQUEST_PURPOSE, canonical_request(service, method, target, t, nonce, kid, body))
    return SignedHeaders(kid, t, nonce, sig, service)


def request_signature_is_valid(public_key: Ed25519PublicKey, headers: SignedHeaders, method: str, target: str,
                               body: bytes, service: str) -> bool:
    """True when `headers` sign exactly this request to `service` (this service's own name)."""
    if headers.key != key_id(public_key) or headers.service != service:
        return False
    return signature_is_valid(public_key, REQUEST_PURPOSE,
                              canonical_request(service, method, target, headers.time, headers.nonce, headers.key,
                                                body),
                              headers.signature)


def new_request_id() -> str:
    """A fresh idempotency key for one logical request (kept across its retries)."""
    return "r-" + secrets.token_hex(16)


def encode_answer(kind: str, output: Any) -> Any:
    """A released output as JSON, exactly invertible by `decode_answer` (so the service can
    recompute the release commitment of a stored answer)."""
    if kind == "marginals":
        return [{"clique": list(m.clique), "sigma": float(m.sigma), "shape": list(m.values.shape),
                 "values": m.values.reshape(-1).tolist()} for m in output]
    return int(output)


def decode_answer(kind: str, data: Any) -> Any:
    """`encode_answer`'s inverse: a list of NoisyMarginal, or the int of a selection or count."""
    if kind == "marginals":
        import numpy as np

        from dpsynth.table.measurement import NoisyMarginal

        return [NoisyMarginal(tuple(m["clique"]), np.asarray(m["values"], dtype=np.int64).reshape(m["shape"]),
                              float(m["sigma"])) for m in data]
    return int(data)
