"""The marginal benchmark's harness: timeouts become DNF, peak RSS is the child's, ratios are ours/peer.

Fast (a few seconds): the children are tiny Python one-liners, not generators.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "marginal_adult_hd.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("marginal_adult_hd", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_a_child_past_its_timeout_is_killed_and_flagged(bench, tmp_path):
    res = bench.run_child([sys.executable, "-c", "import time; time.sleep(60)"], timeout=0.5,
                          log=tmp_path / "log")
    assert res["timed_out"] is True
    assert res["rc"] == -9  # SIGKILL
    assert res["wall_s"] < 30


def test_peak_rss_is_the_childs_own(bench, tmp_path):
    # The child touches 300 MiB; the parent (pytest) is not counted.
    code = "import numpy as np; a = np.ones(300 * 2**20 // 8); print(a.sum())"
    res = bench.run_child([sys.executable, "-c", code], timeout=60, log=tmp_path / "log")
    assert res["rc"] == 0 and not res["timed_out"]
    assert 300 <= res["peak_rss_mb"] < 300 + 400
    assert (tmp_path / "log").read_text().strip() == str(float(300 * 2**20 // 8))


def test_children_get_two_threads(bench, tmp_path):
    code = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    res = bench.run_child([sys.executable, "-c", code], timeout=60, log=tmp_path / "log")
    assert res["rc"] == 0
    assert (tmp_path / "log").read_text().split() == ["2", "2"]


def _record(impl, status="ok", time=None, tvd3=None, wall=None):
    r = {"impl": impl, "method": "mst", "epsilon": 1.0, "seed": 0, "status": status, "wall_s": wall or time,
         "peak_rss_mb": 100.0, "cpu_s": time}
    if status == "ok":
        r.update(fit_sample_s=time, tvd_1way=0.01, tvd_2way=0.05, tvd_3way=tvd3, workload_error_3way=tvd3)
    return r


def test_summary_ratios_are_ours_over_peer(bench):
    results = {"runs": {"a": _record("ours", time=10.0, tvd3=0.08),
                        "b": _record("mbi", time=160.0, tvd3=0.10),
                        "c": _record("snsynth", status="DNF", wall=600.0)}}
    md = bench.render_markdown(results)
    mbi_row = next(line for line in md.splitlines() if line.startswith("| mst | 1 | mbi |"))
    cells = [c.strip() for c in mbi_row.strip("|").split("|")]
    assert cells[-3:] == ["0.062", "0.062", "0.800"]  # 10/160, 10/160, 0.08/0.10
    sn_row = next(line for line in md.splitlines() if line.startswith("| mst | 1 | snsynth |"))
    assert "DNF (> 600 s)" in sn_row and "< 0.017" in sn_row  # ours took 10 s, the peer > 600 s


def test_missing_peer_is_skipped_not_failed(bench, tmp_path):
    class Args:
        mbi_python = None
        mbi_repo = None
        snsynth_python = str(tmp_path / "no-such-python")
        python = sys.executable

    for impl in ("mbi", "snsynth"):
        cmd, why = bench.build_command(bench.RunSpec(impl, "mst", 1.0, 0), Args, tmp_path / "d.csv",
                                       tmp_path / "d.json", tmp_path / "o.csv", tmp_path / "m.json")
        assert cmd is None and "Python" in why
