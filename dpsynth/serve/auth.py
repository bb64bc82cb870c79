"""Who is asking: signed requests (the API) and dashboard sessions (the browser).

A request is authenticated by its Ed25519 signature (dpsynth.remote.protocol):
the key id names a person of the roster, the time is within MAX_CLOCK_SKEW of
the service's clock, the nonce is new, and the signature covers this service's
name (the audience: a request signed for another service is refused), the method,
the exact path and query, the time, the nonce and the body's SHA-256.

A browser cannot hold a person's key, so the dashboard is opened through a
one-time login code that a signed request asks for (`POST /api/v1/sessions`, for
officers and auditors): the code lives two minutes, is used once, and buys an
HttpOnly, SameSite=Strict session cookie that is accepted for GET requests of the
read-only routes only.  Codes and session tokens are kept as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from dpsynth.remote.protocol import MAX_CLOCK_SKEW, SignedHeaders, request_signature_is_valid

__all__ = ["Caller", "AuthError", "authenticate", "new_login_code", "open_session", "SESSION_COOKIE",
           "SESSION_SECONDS", "LOGIN_CODE_SECONDS"]

SESSION_COOKIE = "dpsynth_session"
SESSION_SECONDS = 8 * 3600
LOGIN_CODE_SECONDS = 120


class AuthError(Exception):
    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Caller:
    person: Any                  # dpsynth.serve.config.Person
    via_session: bool            # a dashboard cookie, not a signed request

    @property
    def name(self) -> str:
        return self.person.name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate(service: Any, *, method: str, target: str, headers: Any, cookies: Any, body: bytes,
                 client: str, cookie_ok: bool) -> Caller:
    """The caller of a request, or AuthError (401 / 429).  Every failure costs the client
    address a token of its failure bucket, so guessing is slow."""
    signed = SignedHeaders.parse(headers)
    config = service.config
    if signed is None:
        token = cookies.get(SESSION_COOKIE) if cookie_ok and method == "GET" else None
        if token:
            name = service.state.session_person(_digest(token))
            person = config.person(name) if name is not None else None
            if person is not None and (person.has("officer") or person.has("auditor")):
                return _limited(service, Caller(person, via_session=True))
        _failed(service, client)
        raise AuthError(401, "this request is not signed (see dpsynth.remote.ServiceClient)")
    person = config.person_by_key(signed.key)
    if person is None:
        _failed(service, client)
        raise AuthError(401, "the key that signed this request is not in the service's roster")
    if signed.service != config.name:
        _failed(service, client)
        raise AuthError(401, f"this request was signed for the service {signed.service!r}, not for this one "
                             f"({config.name!r})")
    if abs(time.time() - signed.time) > MAX_CLOCK_SKEW:
        _failed(service, client)
        raise AuthError(401, f"the request's time is more than {MAX_CLOCK_SKEW} s from the service's clock")
    if not request_signature_is_valid(person.public_key, signed, method, target, body, config.name):
        _failed(service, client)
        raise AuthError(401, "the request's signature does not verify")
    if not service.state.use_nonce(signed.key, signed.nonce, 2 * MAX_CLOCK_SKEW):
        _failed(service, client)
        raise AuthError(401, "this request was seen before (a nonce is used once)")
    return _limited(service, Caller(person, via_session=False))


def _limited(service: Any, caller: Caller) -> Caller:
    ok, wait = service.limiter.allow(caller.name)
    if not ok:
        raise AuthError(429, "too many requests; slow down", retry_after=wait)
    return caller


def _failed(service: Any, client: str) -> None:
    ok, wait = service.failures.allow(client)
    if not ok:
        raise AuthError(429, "too many failed requests from this address", retry_after=wait)


def new_login_code(service: Any, person: str) -> str:
    code = secrets.token_urlsafe(32)
    service.state.add_login_code(_digest(code), person, LOGIN_CODE_SECONDS)
    return code


def open_session(service: Any, code: str) -> str | None:
    """A session token for a valid, unused login code (the code is used up)."""
    if not isinstance(code, str) or not 20 <= len(code) <= 100:
        return None
    person = service.state.take_login_code(_digest(code))
    if person is None:
        return None
    token = secrets.token_urlsafe(32)
    service.state.add_session(_digest(token), person, SESSION_SECONDS)
    return token


def end_session(service: Any, token: str | None) -> None:
    if token:
        service.state.end_session(_digest(token))
