"""CPU seconds of processes from /proc, for the benchmarks that report CPU beside wall time
(a shared machine's wall time says little alone)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["proc_cpu", "postgres_cpu", "postgres_backends"]

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int, *, children: bool = False) -> float:
    """utime + stime (and the reaped children's, if asked) of a process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLK_TCK


def postgres_cpu(server) -> float:
    """CPU seconds of a whole PostgreSQL server (tests/postgres_server.PostgresServer): the
    postmaster, its live children, and the reaped ones (backends that exited)."""
    try:
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")
    total = proc_cpu(postmaster, children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == postmaster:
                total += proc_cpu(int(entry.name))
    return total


def postgres_backends(server) -> int:
    """Client backends connected now (this query's own included)."""
    with server.connect("postgres") as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"
                            ).fetchone()[0]
