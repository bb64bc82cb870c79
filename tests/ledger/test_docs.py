"""The officer's and auditor's guides run as written.

Every ```console block is extracted, in order (officer first, then auditor);
each `$ ` line is a command, run by bash in one temporary directory with
`dpsynth` meaning `python -m dpsynth` from this checkout.  A trailing
`# exits N` comment is the expected exit status (default 0).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "docs" / "officer.md", REPO / "docs" / "auditor.md"]


def documented_commands() -> list[tuple[str, int]]:
    commands = []
    for doc in DOCS:
        for block in re.findall(r"```console\n(.*?)```", doc.read_text(), flags=re.S):
            for line in block.splitlines():
                if line.startswith("$ "):
                    cmd = line[2:]
                    m = re.search(r"\s+# exits (\d+)\s*$", cmd)
                    expected = int(m.group(1)) if m else 0
                    commands.append((cmd[: m.start()] if m else cmd, expected))
    return commands


@pytest.mark.slow
def test_documented_workflow_runs(tmp_path):
    commands = documented_commands()
    assert len(commands) >= 15
    (tmp_path / "data.csv").write_text("age,job\n31,nurse\n45,chef\n28,pilot\n")
    script = [f"dpsynth() {{ {shlex.quote(sys.executable)} -m dpsynth \"$@\"; }}"]
    for i, (cmd, expected) in enumerate(commands):
        script.append(f"{cmd}\nrc=$?\nif [ $rc -ne {expected} ]; then echo {shlex.quote(f'COMMAND {i} FAILED: {cmd}')} "
                      f"\"(exit $rc, expected {expected})\" >&2; exit 99; fi")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "OK: 1 entries verified" in proc.stdout + proc.stderr
    assert "first bad entry #1" in proc.stderr
    page = (tmp_path / "report.html").read_text()
    assert "Verified" in page and "DP-SGD fine-tune" in page
