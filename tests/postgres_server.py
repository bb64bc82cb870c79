"""A throwaway PostgreSQL server for the tests (and benchmarks/ledger_throughput.py).

`PostgresServer.start()` runs `initdb` into a fresh folder under the system temp
directory and starts the server with `pg_ctl start -w`, listening only on a Unix
socket in that folder (no TCP port, so parallel pytest-xdist workers, each with its own
server, never collide).  As root (initdb refuses root) both run as the `postgres`
system user through `runuser`, and the folder belongs to it.  fsync stays on: the
ledger store refuses a server without it.

The binaries are found through `$DPSYNTH_PG_BINDIR`, `pg_config --bindir`, `initdb` on
PATH or /usr/lib/postgresql/*/bin.  Without them the tests FAIL (they do not skip):
CI installs PostgreSQL (.ci/run).  Set DPSYNTH_SKIP_POSTGRES=1 to skip them on
purpose on a machine without it.

Pytest fixtures (imported by tests/conftest.py): `postgres_server` (one server per
test process, stopped at the end of the session) and `pg_ledger_url` (a URL naming a
fresh, empty ledger in the server's test database).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bindir", "fresh_ledger_name", "PASSWORD_USER", "PASSWORD",
           "PASSWORD_DATABASE", "TEST_DATABASE"]

TEST_DATABASE = "dpsynth_test"
PASSWORD_USER = "ledger_pw_user"          # a role that must give a password (scram-sha-256)
PASSWORD = "Pw-" + secrets.token_hex(8)   # its password, for the tests that look for leaks
PASSWORD_DATABASE = "dpsynth_pw"          # a database that role owns
_PORT = 5432                              # names the socket file only (no TCP listener)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here, or they could not start a server."""


def _version_key(path: str) -> tuple:
    return tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[./]", path) if x.isdigit())


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, or None."""
    candidates: list[str] = []
    env = os.environ.get("DPSYNTH_PG_BINDIR")
    if env:
        candidates.append(env)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            candidates.append(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                             timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for c in candidates:
        if c and all((Path(c) / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return Path(c)
    return None


class PostgresServer:
    """One running server in its own folder; `stop()` removes the folder."""

    def __init__(self, bindir: Path, base: Path, owner: str | None) -> None:
        self.bindir = bindir
        self.base = base                     # holds the socket; data/ is the cluster
        self.data = base / "data"
        self.log = base / "server.log"
        self.owner = owner                   # run as this user (when we are root)
        self.port = _PORT

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def start(cls, *, max_connections: int = 100, database: str = TEST_DATABASE) -> "PostgresServer":
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found (looked at "
                "$DPSYNTH_PG_BINDIR, pg_config --bindir, PATH and /usr/lib/postgresql/*/bin). The PostgreSQL "
                "ledger tests need them: apt-get install postgresql (CI's .ci/run does), or set "
                "DPSYNTH_SKIP_POSTGRES=1 to skip those tests on purpose.")
        owner = None
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root, and initdb refuses root: the tests run the server as "
                                          "the 'postgres' system user, which does not exist here (installing "
                                          "Debian's postgresql package creates it)") from None
            owner = "postgres"
        base = Path(tempfile.mkdtemp(prefix="dpsynth-pg-"))
        server = cls(bindir, base, owner)
        try:
            if owner is not None:
                shutil.chown(base, owner, owner)
            server._run("initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                        "--locale=C", "--no-sync", "--no-instructions")
            with open(server.data / "postgresql.conf", "a") as fh:
                fh.write(f"\nlisten_addresses = ''\nunix_socket_directories = '{base}'\nport = {_PORT}\n"
                         f"max_connections = {int(max_connections)}\nfsync = on\nsynchronous_commit = on\n"
                         "shared_buffers = 32MB\nlogging_collector = off\n")
            (server.data / "pg_hba.conf").write_text(
                f"local all {PASSWORD_USER} scram-sha-256\nlocal all all trust\n")
            server.pg_ctl("start", "-w", "-t", "60", "-l", str(server.log))
            with server.connect("postgres") as conn:
                conn.execute(f"CREATE DATABASE {database}")
                conn.execute(f"CREATE ROLE {PASSWORD_USER} LOGIN PASSWORD '{PASSWORD}'")
                conn.execute(f"CREATE DATABASE {PASSWORD_DATABASE} OWNER {PASSWORD_USER}")
        except BaseException as exc:
            server.stop()
            if isinstance(exc, (subprocess.CalledProcessError, OSError)):
                raise PostgresUnavailable(f"could not start a throwaway PostgreSQL server in {base}: {exc}\n"
                                          f"{getattr(exc, 'stderr', '') or ''}{server._log_tail()}") from None
            raise
        return server

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / tool), *args]
        if self.owner is not None:
            cmd = ["runuser", "-u", self.owner, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)

    def pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), *args)

    def restart(self, mode: str = "fast") -> None:
        """`pg_ctl restart -m MODE`: every session is ended, as after a server restart ("fast"),
        or the server crashes and recovers ("immediate")."""
        self.pg_ctl("restart", "-m", mode, "-w", "-t", "60", "-l", str(self.log))

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.pg_ctl("stop", "-m", "immediate", "-w", "-t", "60")
        except (OSError, subprocess.SubprocessError):
            pass
        shutil.rmtree(self.base, ignore_errors=True)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text()[-2000:]
        except OSError:
            return ""

    # -- addresses ----------------------------------------------------------------------------
    def dsn(self, database: str = TEST_DATABASE, *, user: str = "postgres", password: str | None = None) -> str:
        auth = user if password is None else f"{user}:{quote(password, safe='')}"
        return f"postgresql://{auth}@/{database}?host={quote(str(self.base), safe='/')}&port={self.port}"

    def url(self, ledger: str, database: str = TEST_DATABASE, **kwargs) -> str:
        return f"{self.dsn(database, **kwargs)}#ledger={ledger}"

    def connect(self, database: str = TEST_DATABASE):
        """A superuser connection (autocommit): what an attacker with the database has."""
        import psycopg

        return psycopg.connect(self.dsn(database), autocommit=True)


_names = itertools.count(1)


def fresh_ledger_name(prefix: str = "t") -> str:
    return f"{prefix}{os.getpid()}_{next(_names)}_{secrets.token_hex(3)}"


# -- pytest fixtures (tests/conftest.py imports them) -----------------------------------------------
try:
    import pytest
except ImportError:  # pragma: no cover - the benchmark imports this module without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def postgres_server():
        """A throwaway PostgreSQL server for this test process (one per xdist worker)."""
        if os.environ.get("DPSYNTH_SKIP_POSTGRES"):
            pytest.skip("DPSYNTH_SKIP_POSTGRES is set")
        try:
            server = PostgresServer.start()
        except PostgresUnavailable as exc:
            pytest.fail(str(exc), pytrace=False)
        yield server
        server.stop()

    @pytest.fixture
    def pg_ledger_url(postgres_server):
        """A postgresql:// URL naming a fresh ledger (not yet initialised)."""
        return postgres_server.url(fresh_ledger_name())
