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

__all__ = ["team_workspace", "in_process", "LiveService", "free_port", "PEOPLE", "SERVICE", "add_researchers",
           "rewrite_config", "read_snapshot", "cpu_seconds"]

PEOPLE = ("olivia", "alice", "bob", "audrey")
SERVICE = "dpsynth-demo"          # the demo configuration's service.name (what requests are signed for)


def team_workspace(folder: Path, *, ledger_url: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The demo team in `folder`; with `ledger_url` (postgresql://...#ledger=NAME) the dataset's
    ledger is created there under the demo policy and the configuration names it, and
    paths["ledger"] is that URL (read_snapshot and check_ledger take either)."""
    paths: dict[str, Any] = make_team_workspace(folder, n_rows=kwargs.pop("n_rows", 600),
                                                response_quantum_ms=kwargs.pop("response_quantum_ms", 0),
                                                ledger=ledger_url, **kwargs)
    if ledger_url is not None:
        from accountant.gate import init_ledger

        init_ledger(ledger_url, paths["policy"], officer_key=paths["officer_key"], ledger_key=paths["ledger_pub"])
        # The demo's SQLite ledger is not the served one: remove it so nothing reads it by mistake.
        Path(paths["ledger"]).unlink()
        paths["ledger"] = ledger_url
    return paths


def _toml() -> Any:
    try:
        import tomllib
    except ImportError:  # pragma: no cover
        import tomli as tomllib
    return tomllib


def rewrite_config(paths: dict[str, Path], change: Any, *, out: Path | None = None, sign: bool = True) -> Path:
    """Load the team's configuration, let `change(cfg)` edit the dict, write it (over the file
    unless `out`) and sign it with the officer's key."""
    import tomli_w

    from accountant.keys import load_private_key
    from dpsynth.serve.config import sign_config_file

    cfg = _toml().loads(paths["config"].read_text())
    change(cfg)
    target = out or paths["config"]
    target.write_text(tomli_w.dumps(cfg))
    if sign:
        sign_config_file(target, load_private_key(paths["officer_key"]))
    return target


def add_researchers(paths: dict[str, Path], n: int, *, cap: float | None = None, prefix: str = "r") -> list[str]:
    """Register `n` more researchers (keys in people/, caps on the demo dataset) and re-sign the
    configuration; returns their names (their keys are paths[f"{name}_key"])."""
    from accountant.keys import write_keypair

    names = [f"{prefix}{i:02d}" for i in range(n)]
    people = paths["root"] / "people"
    entries = []
    for name in names:
        key, _ = write_keypair(people, name, overwrite=True)
        paths[f"{name}_key"] = key
        entry: dict[str, Any] = {"name": name, "roles": ["researcher"], "public_key": f"people/{name}.pub"}
        if cap is not None:
            entry["caps"] = {"demo": cap}
        entries.append(entry)
    rewrite_config(paths, lambda cfg: cfg["people"].extend(entries))
    return names


def read_snapshot(location: Any) -> Any:
    """The ledger as stored (a SQLite path, or a postgresql:// URL)."""
    try:
        from accountant.ledger.open_store import open_store
    except ImportError:
        from accountant.ledger.sqlite import SQLiteLedgerStore as open_store  # type: ignore[assignment]
    store = open_store(location if isinstance(location, str) and "://" in location else Path(location))
    try:
        return store.snapshot()
    finally:
        store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            clients = {name: ServiceClient("http://testserver", paths[f"{name}_key"], session=http, retries=0,
                                           service=service.config.name)
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
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"dpsynth serve exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/api/v1/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"dpsynth serve did not start: {self.log.read_text()[-2000:]}")

    def client(self, name: str, **kwargs: Any) -> ServiceClient:
        kwargs.setdefault("service", SERVICE)
        return ServiceClient(self.url, self.paths[f"{name}_key"], **kwargs)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the running service process has used so far."""
        return cpu_seconds(self.pid)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self, timeout: float = 60.0) -> "LiveService":
        """SIGKILL (if running), then start again on the same port."""
        self.kill()
        return self.start(timeout)

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
