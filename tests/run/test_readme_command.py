"""The README's first command works on a fresh machine: a new virtual environment,
torch, `pip install -e .` of this working tree, then `dpsynth demo`.

It runs exactly the command the README shows (parsed from it, not copied here),
with `bash`, in a copy of the working tree (uncommitted edits included: it tests
what is on disk), with no access to the test runner's packages (no
--system-site-packages, no PYTHONPATH).  pip finds torch and the other
dependencies the way the machine's pip is configured (its wheel folder, index
and cache), so nothing is downloaded twice.  It takes one to a few minutes,
most of it installing torch; it is in the default suite (marked `slow` only as
metadata).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Not part of a fresh checkout (or too big and irrelevant to copy).
_NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache", "build",
                                     "dist", "*.pyc")


def readme_first_command() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the README has no ```bash block"
    lines = [line for line in blocks[0].splitlines() if line.strip()]
    assert len(lines) == 1, "the README's first command is one line"
    return lines[0]


def test_readme_first_command_is_the_demo():
    cmd = readme_first_command()
    assert cmd.startswith("python3 -m venv .venv && ")
    assert cmd.endswith(".venv/bin/dpsynth demo")
    assert "--system-site-packages" not in cmd


@pytest.mark.slow
def test_readme_first_command_runs_in_a_fresh_venv(tmp_path):
    if shutil.which("python3") is None or shutil.which("bash") is None:
        pytest.skip("needs python3 and bash on PATH")
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO, checkout, ignore=_NOT_COPIED, symlinks=True)
    demo_tmp = tmp_path / "tmp"
    demo_tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(TMPDIR=str(demo_tmp), OMP_NUM_THREADS="1")
    # The caller's virtual environment must not be on PATH: `python3` is the machine's.
    if "VIRTUAL_ENV" in os.environ:
        venv_bin = str(Path(os.environ["VIRTUAL_ENV"]) / "bin")
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    t0 = time.perf_counter()
    proc = subprocess.run(["bash", "-c", readme_first_command()], cwd=checkout, env=env, capture_output=True,
                          text=True, timeout=900)
    seconds = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    print(f"README first command: {seconds:.0f} s")

    # A fresh environment: dpsynth is installed from the copy, not found elsewhere.
    venv_python = checkout / ".venv" / "bin" / "python"
    where = subprocess.run([str(venv_python), "-c", "import dpsynth; print(dpsynth.__file__)"], env=env,
                           capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.strip() == str(checkout / "dpsynth" / "__init__.py"), where.stdout + where.stderr

    # What the demo prints: where its outputs are, and the ledger.
    paths = {}
    for label in ("synthetic table", "run report"):
        m = re.search(rf"^{label}: (.+)$", proc.stdout, flags=re.M)
        assert m, f"the demo did not print its {label}\n{proc.stdout[-3000:]}"
        paths[label] = Path(m.group(1))
    m = re.search(r"^model \(with (\d+) receipts\): (.+)$", proc.stdout, flags=re.M)
    assert m and int(m.group(1)) >= 1, proc.stdout[-3000:]
    paths["model"] = Path(m.group(2))
    for label, path in paths.items():
        assert path.is_file() and path.stat().st_size > 0, f"{label}: {path} missing"
        assert demo_tmp in path.parents, f"{label}: {path} is not in the demo's temporary workspace"
    assert "budget epsilon 3 at delta 1e-06" in proc.stdout
    assert re.search(r"^ledger .+ledger\.db: \d+ entries", proc.stdout, flags=re.M), proc.stdout[-3000:]
    assert len(paths["synthetic table"].read_text().splitlines()) == 5001  # header + the demo's 5000 rows

    # The command the demo suggests next verifies the ledger it wrote.
    m = re.search(r"^next: dpsynth (ledger verify .+)$", proc.stdout, flags=re.M)
    assert m, proc.stdout[-2000:]
    verify = subprocess.run([str(checkout / ".venv" / "bin" / "dpsynth"), *m.group(1).split()], env=env,
                            capture_output=True, text=True, cwd=tmp_path)
    assert verify.returncode == 0 and "OK:" in verify.stdout, verify.stdout + verify.stderr
