"""Issue 17: the README's Python snippets run as written, in the folder where
`dpsynth demo --workspace demo` put its files (the README says so)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_python_snippets_run_as_written(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3
    env = dict(os.environ, PYTHONPATH=str(REPO), DPSYNTH_HOME=str(tmp_path / "home"), DPSYNTH_TRUST="")
    demo = subprocess.run([sys.executable, "-m", "dpsynth", "demo", "--workspace", "demo", "--rows", "800",
                           "--no-progress"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr[-2000:]
    for i, block in enumerate(blocks):
        script = tmp_path / f"readme_{i}.py"
        script.write_text(block)
        done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"README python block {i}:\n{block}\n{done.stderr[-3000:]}"
    assert list((tmp_path / "home" / "ledgers").glob("*/ledger.db"))  # synthesize's personal ledger
