"""`ServiceClient`: a person's signed connection to a dpsynth privacy service.

    from dpsynth.remote import ServiceClient
    client = ServiceClient("https://privacy.example.org", key="keys/alice.key")
    table = client.table("adult")                    # a RemoteTable: the marginal path
    job = client.submit_job("adult", "mst", epsilon=0.5, n_samples=10_000)
    client.wait(job["id"]); client.download(job["id"], "synthetic", "adult-synthetic.csv")

Every request is signed (dpsynth.remote.protocol) for the service it is meant
for: its configured name, given as `service=` (pin it when you hold keys for more
than one service) or read once from the service's public `/health`.  A request
that changes
anything carries an idempotency key, kept across retries: a request whose
response was lost (a dropped connection, a timeout, a restarted service) is sent
again with the same key and the service charges it once.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

from accountant.keys import Ed25519PrivateKey, load_private_key

from .protocol import API_PREFIX, new_request_id, sign_request

__all__ = ["ServiceClient", "ServiceError"]

_RETRY_STATUS = (502, 503, 504)


class ServiceError(RuntimeError):
    """The service refused or failed a request: `status` and its message (which never holds
    private values)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ServiceClient:
    def __init__(self, url: str, key: str | os.PathLike | Ed25519PrivateKey, *, timeout: float = 300.0,
                 retries: int = 6, session: Any = None, service: str | None = None) -> None:
        import httpx

        self.url = url.rstrip("/")
        self._key = key if isinstance(key, Ed25519PrivateKey) else load_private_key(key)
        self._http = session if session is not None else httpx.Client(base_url=self.url, timeout=timeout)
        self.retries = retries
        self._service = service

    @property
    def service(self) -> str:
        """The name of the service the requests are signed for (the audience): as given, or
        read once from its public `/health`."""
        if self._service is None:
            import httpx

            delay = 0.2
            for attempt in range(self.retries + 1):
                try:
                    response = self._http.get(API_PREFIX + "/health")
                    if response.status_code == 200:
                        self._service = str(response.json()["service"])
                        break
                except (httpx.TransportError, OSError, ValueError, KeyError, TypeError):
                    pass
                if attempt == self.retries:
                    raise ServiceError(503, f"cannot read the service's name from {self.url}{API_PREFIX}/health "
                                            "(give it as ServiceClient(..., service=NAME))")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        return self._service

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "ServiceClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the transport ------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                params: Mapping[str, Any] | None = None, raw: bool = False) -> Any:
        """Send one signed request (retried with the same body on connection failures and
        502-504); returns the decoded JSON, or the bytes with `raw`."""
        import httpx

        target = API_PREFIX + path
        if params:
            target += "?" + str(httpx.QueryParams({k: v for k, v in params.items() if v is not None}))
        content = b"" if body is None else json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        service = self.service
        delay = 0.2
        for attempt in range(self.retries + 1):
            headers = sign_request(self._key, method, target, content, service=service).as_dict()
            if content:
                headers["content-type"] = "application/json"
            try:
                response = self._http.request(method, target, content=content or None, headers=headers)
            except (httpx.TransportError, OSError):
                if attempt == self.retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if response.status_code in _RETRY_STATUS and attempt < self.retries:
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if response.status_code == 429 and attempt < self.retries:
                time.sleep(min(float(response.headers.get("retry-after", "1")), 30.0))
                continue
            if response.status_code >= 400:
                try:
                    message = response.json()["error"]["message"]
                except (ValueError, KeyError, TypeError):
                    message = response.text[:500]
                raise ServiceError(response.status_code, message)
            return response.content if raw else response.json()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- everyone ---------------------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return self.request("GET", "/me")

    def datasets(self) -> list[dict[str, Any]]:
        return self.request("GET", "/datasets")

    def dataset(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/datasets/{name}")

    def head(self, dataset: str) -> dict[str, Any]:
        return self.request("GET", f"/ledgers/{dataset}/head")

    def ledger_keys(self, dataset: str) -> dict[str, Any]:
        return self.request("GET", f"/ledgers/{dataset}/keys")

    # -- researchers ------------------------------------------------------------------------------
    def table(self, dataset: str) -> Any:
        """A `RemoteTable` on the dataset: marginals, selection and counts, charged to you."""
        from .table import RemoteTable

        return RemoteTable(self, dataset)

    def measure(self, dataset: str, kind: str, args: Mapping[str, Any], request_id: str | None = None) -> dict:
        body = {**args, "request_id": request_id or new_request_id()}
        return self.request("POST", f"/datasets/{dataset}/measurements/{kind}", body)

    def submit_job(self, dataset: str, generator: str, *, epsilon: float, n_samples: int,
                   parameters: Mapping[str, Any] | None = None, request_id: str | None = None) -> dict[str, Any]:
        return self.request("POST", "/jobs", {"dataset": dataset, "generator": generator, "epsilon": epsilon,
                                              "n_samples": n_samples, "parameters": dict(parameters or {}),
                                              "request_id": request_id or new_request_id()})

    def jobs(self) -> list[dict[str, Any]]:
        return self.request("GET", "/jobs")

    def job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/jobs/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.request("POST", f"/jobs/{job_id}/cancel")

    def wait(self, job_id: str, timeout: float = 3600.0, poll: float = 0.5) -> dict[str, Any]:
        """Poll until the job is finished; returns its record (raises TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout} s")
            time.sleep(poll)

    def download(self, job_id: str, output: str, path: str | os.PathLike) -> Path:
        """Write a finished job's `synthetic` table, sealed `model` or `receipts` to `path`."""
        data = self.request("GET", f"/jobs/{job_id}/{output}", raw=True)
        p = Path(path)
        p.write_bytes(data)
        return p

    # -- auditors and officers ---------------------------------------------------------------------
    def export(self, dataset: str) -> str:
        return self.request("GET", f"/ledgers/{dataset}/export", raw=True).decode()

    def entries(self, dataset: str, after: int = 0, limit: int = 200) -> dict[str, Any]:
        return self.request("GET", f"/ledgers/{dataset}/entries", params={"after": after, "limit": limit})

    def summary(self, dataset: str) -> dict[str, Any]:
        return self.request("GET", f"/ledgers/{dataset}/summary")

    def verify(self, dataset: str) -> dict[str, Any]:
        return self.request("GET", f"/ledgers/{dataset}/verify")

    def login_path(self) -> str:
        """A one-time dashboard login path (officers and auditors; valid two minutes)."""
        return self.request("POST", "/sessions")["login_path"]

    def roster(self) -> dict[str, Any]:
        return self.request("GET", "/roster")

    def replace_config(self, config_text: str, signature_text: str) -> dict[str, Any]:
        return self.request("PUT", "/config", {"config": config_text, "signature": signature_text})
