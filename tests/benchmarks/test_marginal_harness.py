"""The marginal benchmark's harness: timeouts become DNF, peak RSS is the child's, ratios are ours/peer.

Fast (a few seconds): the children are tiny Python one-liners, not generators.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "marginal.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("marginal_bench", SCRIPT)
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
    # The child touches 300 MiB; the parent (pytest), made larger than that first, is not
    # counted (wait4's ru_maxrss would start from the parent's peak at fork).
    import numpy as np

    ballast = np.ones(500 * 2**20 // 8)
    code = "import numpy as np; a = np.ones(300 * 2**20 // 8); print(a.sum())"
    res = bench.run_child([sys.executable, "-c", code], timeout=60, log=tmp_path / "log")
    assert ballast.sum() > 0
    assert res["rc"] == 0 and not res["timed_out"]
    assert 300 <= res["peak_rss_mb"] < 300 + 400
    assert (tmp_path / "log").read_text().strip() == str(float(300 * 2**20 // 8))


def test_children_get_two_threads(bench, tmp_path):
    code = "import os; print(os.environ['OMP_NUM_THREADS'], os.environ['MKL_NUM_THREADS'])"
    res = bench.run_child([sys.executable, "-c", code], timeout=60, log=tmp_path / "log")
    assert res["rc"] == 0
    assert (tmp_path / "log").read_text().split() == ["2", "2"]


def _record(impl, status="ok", time=None, tvd3=None, wall=None, dataset="adult_hd"):
    r = {"impl": impl, "method": "mst", "epsilon": 1.0, "seed": 0, "status": status, "wall_s": wall or time,
         "peak_rss_mb": 100.0, "cpu_s": time, "dataset": dataset}
    if status == "ok":
        r.update(fit_sample_s=time, tvd_1way=0.01, tvd_2way=0.05, tvd_3way=tvd3, workload_error_3way=tvd3)
    return r


def test_summary_ratios_are_ours_over_peer(bench):
    results = {"runs": {"a": _record("ours", time=10.0, tvd3=0.08),
                        "b": _record("mbi", time=160.0, tvd3=0.10),
                        "c": _record("snsynth", status="DNF", wall=600.0)}}
    md = bench.render_markdown(results)
    mbi_row = next(line for line in md.splitlines() if line.startswith("| adult_hd | 1 | mst | mbi |"))
    cells = [c.strip() for c in mbi_row.strip("|").split("|")]
    assert cells[-3:] == ["0.062", "0.062", "0.800"]  # 10/160, 10/160, 0.08/0.10
    sn_row = next(line for line in md.splitlines() if line.startswith("| adult_hd | 1 | mst | snsynth |"))
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


def test_ratios_compare_runs_on_the_same_dataset_only(bench):
    results = {"runs": {"a": _record("ours", time=10.0, tvd3=0.08, dataset="adult_hd"),
                        "b": _record("mbi", time=160.0, tvd3=0.10, dataset="adult_hd"),
                        "c": _record("ours", time=1.0, tvd3=0.02, dataset="nltcs"),
                        "d": _record("mbi", time=4.0, tvd3=0.04, dataset="nltcs")},
               "references": {"nltcs": {"resample": {"tvd_1way": 0.001, "tvd_2way": 0.002, "tvd_3way": 0.003},
                                        "independent": {"tvd_1way": 0.001, "tvd_2way": 0.1, "tvd_3way": 0.2}}}}
    rows = bench.render_markdown(results).splitlines()
    nltcs_mbi = next(line for line in rows if line.startswith("| nltcs | 1 | mst | mbi |"))
    assert [c.strip() for c in nltcs_mbi.strip("|").split("|")][-3:] == ["0.250", "0.250", "0.500"]  # 1/4, .02/.04
    adult_mbi = next(line for line in rows if line.startswith("| adult_hd | 1 | mst | mbi |"))
    assert [c.strip() for c in adult_mbi.strip("|").split("|")][-3:] == ["0.062", "0.062", "0.800"]
    refs = [line for line in rows if line.startswith("| nltcs |") and "(reference)" in line]
    assert len(refs) == 2 and "resample" in refs[0] and "0.2000" in refs[1]  # resample first, then independent
    assert rows.index(refs[0]) > rows.index(nltcs_mbi)  # reference rows close their dataset's block


def test_old_adult_hd_results_are_migrated_to_dataset_keys(bench, tmp_path):
    import json

    old = {"benchmark": "marginal_adult_hd",
           "runs": {"mbi/mst/eps=1/seed=0": {k: v for k, v in _record("mbi", time=5.0, tvd3=0.1).items()
                                             if k != "dataset"}}}
    path = tmp_path / "marginal.json"
    path.write_text(json.dumps(old))
    results = bench.load_results(path)
    assert list(results["runs"]) == ["adult_hd/mbi/mst/eps=1/seed=0"]
    assert results["runs"]["adult_hd/mbi/mst/eps=1/seed=0"]["dataset"] == "adult_hd"
    assert bench.RunSpec("mbi", "mst", 1.0, 0).key == "adult_hd/mbi/mst/eps=1/seed=0"  # the new runs' key
    assert bench.RunSpec("mbi", "mst", 1.0, 0, "nltcs").key == "nltcs/mbi/mst/eps=1/seed=0"


def test_children_are_told_their_dataset(bench, tmp_path):
    class Args:
        python = sys.executable

    cmd, _ = bench.build_command(bench.RunSpec("ours", "mst", 1.0, 0, "titanic_hd"), Args, tmp_path / "d.csv",
                                 tmp_path / "d.json", tmp_path / "o.csv", tmp_path / "m.json")
    assert cmd[cmd.index("--dataset") + 1] == "titanic_hd"


def test_reference_rows_bracket_a_table(bench):
    # A resample keeps every dependence up to sampling noise; independent columns lose them all.
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 4000)
    real = pd.DataFrame({"a": a, "b": (a + (rng.random(4000) < 0.1)) % 3, "c": rng.integers(0, 2, 4000)})
    refs = bench.reference_scores(real, {"a": 3, "b": 3, "c": 2})
    assert refs["resample"]["tvd_2way"] < 0.05 < refs["independent"]["tvd_2way"]
