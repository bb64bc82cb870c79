"""The officer's and auditor's guides run as written, as one workflow.

Their commands (and the files they write with `<!-- write: PATH -->`) are
extracted in order, officer first, then auditor, by the rules of
tests/doc_commands.py, and run by bash in one temporary directory with
`dpsynth` meaning `python -m dpsynth` from this checkout.  A trailing
`# exits N` comment is the expected exit status (default 0).  The other guides
run in tests/run/test_docs_commands.py.
"""

from __future__ import annotations

import pytest

from tests.doc_commands import DOCS, doc_steps, run_steps


@pytest.mark.slow
def test_documented_workflow_runs(tmp_path):
    steps = doc_steps(DOCS / "officer.md") + doc_steps(DOCS / "auditor.md")
    assert sum(s.kind == "command" for s in steps) >= 18
    (tmp_path / "data.csv").write_text("age,job\n31,nurse\n45,chef\n28,pilot\n")
    proc = run_steps(steps, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "OK: 1 entries verified" in out
    assert "first bad entry #1" in proc.stderr
    assert "job.toml: OK (nothing was measured or charged)" in proc.stdout
    assert "generator.epsilon: 2 exceeds the policy's max_epsilon_per_run 1.5" in proc.stderr
    page = (tmp_path / "report.html").read_text()
    assert "Verified" in page and "DP-SGD fine-tune" in page
