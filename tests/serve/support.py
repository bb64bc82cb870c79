"""A team setting for the service tests: the demo workspace, the service in-process (TestClient)
or as a real `dpsynth serve` process on a free port, and a signed client per person."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from accountant.keys import load_public_key
from dpsynth.remote import ServiceClient
from dpsynth.serve.team_demo import make_team_workspace

__all__ = ["team_workspace", "in_process", "LiveService", "free_port", "PEOPLE"]

PEOPLE = ("olivia", "alice", "bob", "audrey")


def team_workspace(folder: Path, **kwargs: Any) -> dict[str, Path]:
    return make_team_workspace(folder, n_rows=kwargs.pop("n_rows", 600), response_quantum_ms=kwargs.pop(
        "response_quantum_ms", 0), **kwargs)


@contextmanager
def in_process(paths: dict[str, Path]) -> Iterator[tuple[Any, Any, dict[str, ServiceClient]]]:
    """(the Service, its TestClient, a client per person) — everything in this process."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from fastapi.testclient import TestClient
    from dpsynth.serve.app import create_app
    from dpsynth.serve.startup import start_service

    service = start_service(paths["config"], load_public_key(paths["officer_pub"]))
    try:
        with TestClient(create_app(service)) as http:
            clients = {name: ServiceClient("http://testserver", paths[f"{name}_key"], session=http, retries=0)
                       for name in PEOPLE}
            yield service, http, clients
    finally:
        service.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveService:
    """`dpsynth serve` in a child process (SIGKILL-able), on a free port."""

    def __init__(self, paths: dict[str, Path], port: int | None = None) -> None:
        self.paths = paths
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = paths["root"] / f"serve-{self.port}.log"

    def start(self, timeout: float = 60.0) -> "LiveService":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dpsynth", "serve", str(self.paths["config"]), "--officer-key",
                 str(self.paths["officer_pub"]), "--port", str(self.port), "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        import httpx

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dpsynth serve exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"dpsynth serve did not start: {self.log.read_text()[-2000:]}")

    def client(self, name: str, **kwargs: Any) -> ServiceClient:
        return ServiceClient(self.url, self.paths[f"{name}_key"], **kwargs)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> "LiveService":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
