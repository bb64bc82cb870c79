"""Record and replay (issue 4's deterministic privacy test) on MST, AIM and Independent.

Each generator is fitted on a slice of adult_hd plus a worst-case record, then
replayed on every neighbour (record removed, added twice, replaced) with every
noisy output frozen: same measurements in the same order, each exact answer
moved by at most its declared sensitivity, a verified receipt per measurement,
and byte-identical synthetic rows.  MST runs at a small ε so that its domain
compression (noisy counts under 3σ) really merges categories: the merge must
depend on the noisy counts only.
"""

from __future__ import annotations

import pytest

from dpsynth.generators import AIM, MST, Independent
from dpsynth.testing.replay import record_and_replay

from .marginal_support import adult_hd_slice

COLUMNS = ["age", "workclass", "education-num", "race", "sex", "income>50K"]


@pytest.fixture(scope="module")
def slice_():
    return adult_hd_slice(COLUMNS, rows=300, seed=3)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: MST(epsilon=0.5, iters=200), id="mst"),
    pytest.param(lambda: AIM(epsilon=2.0, degree=2, rounds=8, iters=50, final_iters=100), id="aim"),
    pytest.param(lambda: Independent(epsilon=1.0), id="independent"),
])
def test_marginal_generators_pass_record_and_replay(slice_, make, tmp_path):
    frame, schema = slice_
    report = record_and_replay(make, frame, schema, n_samples=300, directory=tmp_path)
    assert report.ok, report
    # every neighbour was replayed, and the worst-case record moved some answer by its full bound
    assert set(report.max_ratio) == {"add_or_remove_one/remove", "add_or_remove_one/add", "replace_one/replace"}
    assert report.max_ratio["add_or_remove_one/remove"] == pytest.approx(1.0)
    assert all(n > 0 for n in report.measurements.values())


def test_mst_compression_really_merged_something_in_the_replayed_run(slice_, tmp_path):
    # Guard for the test above: at ε = 0.5 on 301 rows the 3σ threshold is well above
    # the rare categories' counts, so the compression path is exercised.
    frame, schema = slice_
    generators = []

    def make():
        g = MST(epsilon=0.5, iters=200)
        generators.append(g)
        return g

    record_and_replay(make, frame, schema, n_samples=50, directory=tmp_path,
                      relations=("add_or_remove_one",))
    assert generators[0].compression.recodes(), "no category was merged: the test lost its point"


def test_aim_with_too_few_rounds_is_refused_before_any_measurement(slice_, tmp_path):
    from accountant.testing import make_test_gate

    from .marginal_support import seeded_table

    frame, schema = slice_
    ledger = make_test_gate(tmp_path, epsilon=2.0, delta=1e-6, frame=frame)
    table = seeded_table(frame, schema, ledger)
    with pytest.raises(ValueError, match="rounds=4 is too few for 6 columns"):
        AIM(epsilon=2.0, rounds=4).fit(table)
    assert ledger.gate.spent_costs() == []
