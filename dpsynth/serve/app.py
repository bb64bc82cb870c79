"""The HTTP API (FastAPI; OpenAPI at /openapi.json) and the dashboard's pages.

Roles (from the officer-signed roster): a researcher measures and runs jobs on
the datasets and reads their own jobs and spend; an auditor reads ledgers
(exports, entries, verification, head) and the dashboard; an officer reads what
an auditor does, the roster, every job's metadata, and replaces the
configuration.  No route returns a row, a key, another person's outputs or the
text of an error raised after a charge.

Every response carries `Cache-Control: no-store`.  Measurement and job responses
leave on a grid of `response_quantum_ms` (proofs/threat_model.md §5: latency is a
side channel on n and on the noise; the grid coarsens it, it does not remove it).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
import unicodedata
from typing import Annotated, Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from accountant.errors import (
    ActorCapExceeded,
    BudgetExceeded,
    InvalidReceipt,
    LedgerIntegrityError,
    PolicyViolation,
    RequestConflict,
)
from accountant.ledger.chain import REQUEST_ID
from accountant.ledger.store import LedgerStoreError
from dpsynth.remote.protocol import API_PREFIX

from .auth import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    AuthError,
    Caller,
    authenticate,
    end_session,
    new_login_code,
    open_session,
)
from .config import ConfigError
from .jobs import JobRefused
from .measurements import MeasurementFailed, RequestMismatch
from .summary import ledger_summary, verification

__all__ = ["create_app"]

DASHBOARD = Path(__file__).parent / "dashboard"
# Routes a dashboard session (cookie, GET) may read; everything else needs a signed request.
_COOKIE_ROUTES = ("/me", "/datasets", "/ledgers/")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


# --------------------------------------------------------------------------- request bodies

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


_RID = Field(pattern=REQUEST_ID.pattern, description="idempotency key: a retry with the same id is charged once")
_TEXT = Field(min_length=1, max_length=1000)
_NAME = Field(min_length=1, max_length=200)
# Bidirectional overrides and isolates reorder what an auditor reads (a purpose that displays
# as another); the other format characters (zero-width joiners of emoji) are left alone.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _plain_text(value: str) -> str:
    """Text written into the ledger in a person's words (purpose, generator, run id): no control
    characters (terminal escapes, NUL, line breaks reach every auditor's `ledger` command and
    export), no bidirectional controls, and no leading = + - @ (a formula when an auditor opens
    the CSV export in a spreadsheet)."""
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI), None)
    if bad is not None:
        raise ValueError(f"control or bidirectional-formatting character U+{ord(bad):04X} is not allowed")
    if value.strip()[:1] in ("=", "+", "-", "@"):
        raise ValueError("must not start with = + - @ (a spreadsheet formula in the ledger's CSV export)")
    return value


_Text = Annotated[str, _TEXT, AfterValidator(_plain_text)]
_Name = Annotated[str, _NAME, AfterValidator(_plain_text)]


class MarginalsRequest(_Body):
    request_id: str = _RID
    cliques: list[list[str]] = Field(min_length=1, max_length=5000)
    sigma: float | list[float]
    purpose: _Text
    generator: _Name
    run_id: _Name
    parameters: dict[str, Any] | None = None
    recode: dict[str, list[int]] | None = None


class SelectRequest(_Body):
    request_id: str = _RID
    candidates: list[list[str]] = Field(min_length=1, max_length=5000)
    estimates: list[Any] = Field(min_length=1, max_length=5000)
    epsilon: float
    weights: list[float] | None = None
    offsets: list[float] | None = None
    purpose: _Text
    generator: _Name
    run_id: _Name
    parameters: dict[str, Any] | None = None
    recode: dict[str, list[int]] | None = None


class CountRequest(_Body):
    request_id: str = _RID
    sigma: float
    purpose: _Text
    generator: _Name | None = None
    run_id: _Name | None = None
    parameters: dict[str, Any] | None = None


class JobRequest(_Body):
    request_id: str = _RID
    dataset: str = _NAME
    generator: str = _NAME
    epsilon: float
    parameters: dict[str, Any] = Field(default_factory=dict)
    n_samples: int = Field(ge=1, le=10_000_000)


class ConfigReplacement(_Body):
    config: str = Field(max_length=1_000_000)
    signature: str = Field(max_length=10_000)


class SessionCode(_Body):
    code: str = Field(min_length=20, max_length=100)


_MEASUREMENTS = {"marginals": MarginalsRequest, "select": SelectRequest, "count": CountRequest}


# --------------------------------------------------------------------------- helpers

def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status_code=status,
                        headers={**_SECURITY_HEADERS, **(headers or {})})


class _Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unavailable(exc: LedgerStoreError) -> _Refusal:
    """The ledger's store failed (a restarted database, a killed backend, a commit whose outcome
    was lost): a 503, which clients retry under the same request id; the gate finds a charge that
    did commit and never makes it twice.  The store's own message (host, ledger name) stays in
    the officer's log."""
    import logging
    import secrets

    error_id = secrets.token_hex(6)
    logging.getLogger("dpsynth.serve").error("the ledger is unavailable (error id %s): %s", error_id, exc)
    return _Refusal(503, f"the ledger is unavailable for now (error id {error_id} in the service log); retry "
                         "under the same request id: nothing is charged twice")


def _need(caller: Caller, *roles: str) -> None:
    if not any(caller.person.has(r) for r in roles):
        raise _Refusal(403, f"this needs the role {' or '.join(roles)}")


def _finite(value: Any) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


async def _on_grid(started: float, quantum_ms: int) -> None:
    """Wait until the next multiple of the quantum since the request started."""
    if quantum_ms <= 0:
        return
    q = quantum_ms / 1000.0
    elapsed = time.monotonic() - started
    await asyncio.sleep(math.ceil(max(elapsed, 1e-9) / q) * q - elapsed)


class _BodyLimit:
    """Pure ASGI: read the body once, within the limit, before anything else looks at it (the
    signature covers it); refuse larger bodies with 413; add the security headers.  The limit
    is the configuration's in force (an officer's push takes effect on the next request)."""

    def __init__(self, app: Any, service: Any) -> None:
        self.app = app
        self.service = service

    @property
    def max_body(self) -> int:
        return self.service.config.max_request_bytes

    async def _refuse(self, send: Callable) -> None:
        body = json.dumps({"error": {"status": 413, "message": f"the request body is larger than "
                                                              f"{self.max_body} bytes"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                *[(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()]]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        scope.setdefault("state", {})["body"] = body
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.lower().encode(), v.encode()) for k, v in _SECURITY_HEADERS.items()
                         if k.lower().encode() not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, replay, with_headers)


def _parse(model: type[BaseModel], body: bytes) -> Any:
    """A request body as `model`, after authentication; a refusal names the field, never the value."""
    try:
        return model.model_validate_json(body)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError
        errors = getattr(exc, "errors", lambda: [])()
        first = errors[0] if errors else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        raise _Refusal(422, f"{where or 'body'}: {first.get('msg', 'invalid JSON')}") from None


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def create_app(service: Any) -> FastAPI:
    """The ASGI application over a running `dpsynth.serve.service.Service`."""
    app = FastAPI(title="dpsynth privacy service", version="1", docs_url=None, redoc_url=None,
                  openapi_url=f"{API_PREFIX}/openapi.json",
                  description="Differentially private measurements and synthetic data over governed datasets; "
                              "every request is signed by a person of the officer's roster (dpsynth.remote).")
    app.add_middleware(_BodyLimit, service=service)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the field and the problem; never echo the input back.
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        return _error(422, f"{where or 'body'}: {first.get('msg', 'invalid')}")

    @app.exception_handler(_Refusal)
    async def refused(request: Request, exc: _Refusal) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(AuthError)
    async def unauthenticated(request: Request, exc: AuthError) -> JSONResponse:
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))} if exc.retry_after else None
        return _error(exc.status, exc.message, headers)

    @app.exception_handler(LedgerStoreError)
    async def ledger_unavailable(request: Request, exc: LedgerStoreError) -> JSONResponse:
        refusal = _unavailable(exc)
        return _error(refusal.status, refusal.message)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        import logging
        import secrets

        error_id = secrets.token_hex(6)
        logging.getLogger("dpsynth.serve").exception("request failed (error id %s)", error_id)
        return _error(500, f"internal error (error id {error_id} in the service log)")

    async def caller_of(request: Request) -> Caller:
        route = request.url.path[len(API_PREFIX):] if request.url.path.startswith(API_PREFIX) else ""
        raw = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string") or b""
        target = raw.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        client = request.client.host if request.client else "unknown"
        return await run_in_threadpool(
            authenticate, service, method=request.method, target=target, headers=request.headers,
            cookies=request.cookies, body=request.state.body, client=client,
            cookie_ok=route.startswith(_COOKIE_ROUTES) or route == "/me")

    def dataset(name: str) -> Any:
        d = service.dataset_for(name)
        if d is None:
            raise _Refusal(404, f"no dataset {name!r}")
        return d

    def translate(exc: Exception) -> _Refusal:
        """A refusal the researcher may read (messages of checks made before any charge)."""
        if isinstance(exc, RequestConflict | RequestMismatch):
            return _Refusal(409, str(exc))
        if isinstance(exc, ActorCapExceeded | BudgetExceeded):
            return _Refusal(409, str(exc))
        if isinstance(exc, PolicyViolation):
            return _Refusal(403, str(exc))
        if isinstance(exc, MeasurementFailed):
            return _Refusal(500, str(exc))
        if isinstance(exc, LedgerIntegrityError):
            return _Refusal(503, "the ledger does not verify; the gate is shut until the officer repairs it")
        if isinstance(exc, LedgerStoreError):
            return _unavailable(exc)
        if isinstance(exc, JobRefused):
            return _Refusal(exc.status, str(exc))
        if isinstance(exc, (ValueError, TypeError, KeyError, InvalidReceipt)):
            return _Refusal(400, str(exc).strip("'\""))
        raise exc

    # -- public -------------------------------------------------------------------------------------
    @app.get(f"{API_PREFIX}/health", tags=["public"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service.config.name}

    # -- everyone ---------------------------------------------------------------------------------------
    @app.get(f"{API_PREFIX}/me", tags=["everyone"])
    async def me(request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        p = caller.person

        def spend() -> list[dict[str, Any]]:
            out = []
            for name, d in service.datasets.items():
                cap = service.cap(p, name)
                out.append({"dataset": name, "cap_epsilon": cap, **d.gate.actor_spent(p.name, cap)})
            return out

        return {"name": p.name, "roles": list(p.roles), "key_id": p.key_id,
                "spend": await run_in_threadpool(spend)}

    @app.get(f"{API_PREFIX}/datasets", tags=["everyone"])
    async def datasets(request: Request) -> list[dict[str, Any]]:
        await caller_of(request)
        return [d.public() for d in service.datasets.values()]

    @app.get(f"{API_PREFIX}/datasets/{{name}}", tags=["everyone"])
    async def one_dataset(name: str, request: Request) -> dict[str, Any]:
        await caller_of(request)
        d = dataset(name)
        remaining = await run_in_threadpool(d.gate.remaining)
        return {**d.public(), "fraction_left": remaining / d.gate.filter.budget}

    @app.get(f"{API_PREFIX}/ledgers/{{name}}/head", tags=["everyone"])
    async def head(name: str, request: Request) -> dict[str, Any]:
        await caller_of(request)
        snap = await run_in_threadpool(dataset(name).gate.snapshot)
        return {"ledger_id": snap.metadata.ledger_id, "genesis_hash": snap.metadata.hash, **snap.head.to_dict()}

    @app.get(f"{API_PREFIX}/ledgers/{{name}}/keys", tags=["everyone"])
    async def keys(name: str, request: Request) -> dict[str, Any]:
        await caller_of(request)
        md = dataset(name).gate.metadata
        return {"ledger_public_key": md.ledger_public_key, "ledger_key_id": md.ledger_key_id,
                "officer_public_key": md.officer_public_key, "officer_key_id": md.officer_key_id}

    # -- researchers ---------------------------------------------------------------------------------------
    @app.post(f"{API_PREFIX}/datasets/{{name}}/measurements/{{kind}}", tags=["researcher"],
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "oneOf": [m.model_json_schema() for m in _MEASUREMENTS.values()]}}}}})
    async def measure(name: str, kind: str, request: Request) -> JSONResponse:
        started = time.monotonic()
        caller = await caller_of(request)
        _need(caller, "researcher")
        d = dataset(name)
        model = _MEASUREMENTS.get(kind)
        if model is None:
            raise _Refusal(404, f"no measurement {kind!r} (marginals, select, count)")
        body = _parse(model, request.state.body)
        args = body.model_dump(exclude={"request_id"})
        cap = service.cap(caller.person, name)
        try:
            result = await run_in_threadpool(service.measurements.measure, d, caller.name, cap, kind, args,
                                             body.request_id, service.config.max_cells_per_request)
        except Exception as exc:  # noqa: BLE001 - translated to a refusal or re-raised as internal
            refusal = translate(exc)
            await _on_grid(started, service.config.response_quantum_ms)
            raise refusal from None
        await _on_grid(started, service.config.response_quantum_ms)
        return JSONResponse(result)

    @app.post(f"{API_PREFIX}/jobs", tags=["researcher"], status_code=202, openapi_extra=_schema(JobRequest))
    async def submit(request: Request) -> JSONResponse:
        started = time.monotonic()
        caller = await caller_of(request)
        _need(caller, "researcher")
        body = _parse(JobRequest, request.state.body)
        d = dataset(body.dataset)
        cap = service.cap(caller.person, d.name)
        data = body.model_dump(exclude={"request_id"})
        try:
            job, new = await run_in_threadpool(service.jobs.submit, d, caller.name, cap, data, body.request_id)
        except Exception as exc:  # noqa: BLE001
            refusal = translate(exc)
            await _on_grid(started, service.config.response_quantum_ms)
            raise refusal from None
        await _on_grid(started, service.config.response_quantum_ms)
        return JSONResponse(job.to_public(), status_code=202 if new else 200)

    def visible_job(caller: Caller, job_id: str, *, outputs: bool = False) -> Any:
        job = service.state.job(job_id) if isinstance(job_id, str) and len(job_id) <= 64 else None
        if job is None:
            raise _Refusal(404, "no such job")
        own = job.person == caller.name
        if outputs and not own:
            raise _Refusal(404 if not (caller.person.has("officer") or caller.person.has("auditor")) else 403,
                           "a job's outputs go to the person who ran it only")
        if not own and not (caller.person.has("officer") or caller.person.has("auditor")):
            raise _Refusal(404, "no such job")   # another researcher's job does not exist for you
        return job

    @app.get(f"{API_PREFIX}/jobs", tags=["researcher"])
    async def list_jobs(request: Request) -> list[dict[str, Any]]:
        caller = await caller_of(request)
        everyone = caller.person.has("officer") or caller.person.has("auditor")
        jobs = service.state.jobs(person=None if everyone else caller.name)
        return [j.to_public() for j in jobs]

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}", tags=["researcher"])
    async def get_job(job_id: str, request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        job = visible_job(caller, job_id)
        return {**job.to_public(), **service.jobs.progress(job.id)}

    @app.post(f"{API_PREFIX}/jobs/{{job_id}}/cancel", tags=["researcher"])
    async def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        job = visible_job(caller, job_id)
        if job.person != caller.name and not caller.person.has("officer"):
            raise _Refusal(403, "only the person who ran a job, or an officer, cancels it")
        return (await run_in_threadpool(service.jobs.cancel, job.id)).to_public()

    @app.get(f"{API_PREFIX}/jobs/{{job_id}}/{{output}}", tags=["researcher"])
    async def job_output(job_id: str, output: str, request: Request) -> Response:
        caller = await caller_of(request)
        job = visible_job(caller, job_id, outputs=True)
        names = {"synthetic": "synthetic.csv", "model": "model.dpsynth", "receipts": "receipts.json"}
        path = service.jobs.output(job.id, names.get(output, ""))
        if path is None:
            raise _Refusal(404, f"job {job.id} has no {output!r} (state {job.state})")
        media = {"synthetic": "text/csv", "model": "application/octet-stream", "receipts": "application/json"}
        return FileResponse(path, media_type=media[output], filename=f"{job.id}-{path.name}")

    # -- auditors and officers ----------------------------------------------------------------------------------
    @app.get(f"{API_PREFIX}/ledgers/{{name}}/export", tags=["auditor"])
    async def export(name: str, request: Request) -> PlainTextResponse:
        from accountant.export import to_jsonl

        caller = await caller_of(request)
        _need(caller, "auditor", "officer")
        snap = await run_in_threadpool(dataset(name).gate.snapshot)
        return PlainTextResponse(to_jsonl(snap), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": f'attachment; filename="{name}-ledger.jsonl"'})

    @app.get(f"{API_PREFIX}/ledgers/{{name}}/entries", tags=["auditor"])
    async def entries(name: str, request: Request, after: int = 0, limit: int = 200) -> dict[str, Any]:
        caller = await caller_of(request)
        _need(caller, "auditor", "officer")
        if after < 0 or not 1 <= limit <= 1000:
            raise _Refusal(400, "after >= 0 and 1 <= limit <= 1000")
        snap = await run_in_threadpool(dataset(name).gate.snapshot)
        chosen = [e.to_dict() for e in snap.entries if e.sequence > after][:limit]
        return {"entries": chosen, "total": len(snap.entries)}

    @app.get(f"{API_PREFIX}/ledgers/{{name}}/summary", tags=["auditor"])
    async def summary(name: str, request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        _need(caller, "auditor", "officer")
        d = dataset(name)
        snap = await run_in_threadpool(d.gate.snapshot)
        return await run_in_threadpool(ledger_summary, snap, d.gate.policy)

    @app.get(f"{API_PREFIX}/ledgers/{{name}}/verify", tags=["auditor"])
    async def verify(name: str, request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        _need(caller, "auditor", "officer")
        d = dataset(name)

        def check() -> dict[str, Any]:
            try:
                snap = d.gate.snapshot()
            except Exception as exc:  # noqa: BLE001 - an unreadable ledger is a failed verification
                return {"ok": False, "entries": 0, "problems": [{"sequence": None, "message": str(exc)}],
                        "head": None, "epsilon_filter": None, "summary": f"FAILED: {exc}"}
            return verification(snap, service.officer, d.gate.ledger_public_key)

        return await run_in_threadpool(check)

    @app.get(f"{API_PREFIX}/roster", tags=["officer"])
    async def roster(request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        _need(caller, "officer")
        cfg = service.config
        return {"version": cfg.version, "config_sha256": cfg.sha256,
                "people": [{"name": p.name, "roles": list(p.roles), "key_id": p.key_id, "caps": dict(p.caps)}
                           for p in cfg.people]}

    @app.put(f"{API_PREFIX}/config", tags=["officer"], openapi_extra=_schema(ConfigReplacement))
    async def replace_config(request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        _need(caller, "officer")
        body = _parse(ConfigReplacement, request.state.body)
        try:
            new = await run_in_threadpool(service.replace_config, body.config.encode("utf-8"), body.signature)
        except ConfigError as exc:
            raise _Refusal(400, str(exc)) from None
        return {"version": new.version, "config_sha256": new.sha256, "people": len(new.people)}

    # -- dashboard sessions ---------------------------------------------------------------------------------------
    @app.post(f"{API_PREFIX}/sessions", tags=["auditor"])
    async def new_session(request: Request) -> dict[str, Any]:
        caller = await caller_of(request)
        if caller.via_session:
            raise _Refusal(403, "a dashboard session cannot open another")
        _need(caller, "auditor", "officer")
        code = await run_in_threadpool(new_login_code, service, caller.name)
        return {"login_path": f"/dashboard/#login={code}", "expires_in": 120}

    @app.post("/dashboard/session", include_in_schema=False)
    async def dashboard_login(request: Request) -> JSONResponse:
        try:
            body = _parse(SessionCode, request.state.body)
        except _Refusal:
            return _error(401, "this login code is unknown, used or expired")
        token = await run_in_threadpool(open_session, service, body.code)
        if token is None:
            ok, wait = service.failures.allow(request.client.host if request.client else "unknown")
            return _error(401 if ok else 429, "this login code is unknown, used or expired")
        response = JSONResponse({"ok": True})
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @app.post("/dashboard/logout", include_in_schema=False)
    async def dashboard_logout(request: Request) -> JSONResponse:
        await run_in_threadpool(end_session, service, request.cookies.get(SESSION_COOKIE))
        response = JSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/dashboard/", include_in_schema=False)
    async def dashboard_page() -> Response:
        page = DASHBOARD / "index.html"
        if not page.is_file():
            return _error(404, "the dashboard is not installed")
        return HTMLResponse(page.read_text(), headers={"Content-Security-Policy": _PAGE_CSP})

    @app.get("/dashboard/{asset}", include_in_schema=False)
    async def dashboard_asset(asset: str) -> Response:
        types = {".js": "text/javascript", ".css": "text/css"}
        p = DASHBOARD / asset
        if "/" in asset or ".." in asset or p.suffix not in types or not p.is_file():
            return _error(404, "no such file")
        return Response(p.read_bytes(), media_type=types[p.suffix], headers={"Content-Security-Policy": _PAGE_CSP})

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return Response(status_code=307, headers={"Location": "/dashboard/"})

    return app
