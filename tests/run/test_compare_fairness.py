"""`compare(..., sensitive=[...])`: each run's and the baseline's disparities per column; a bad
sensitive column is refused before anything is charged."""

from __future__ import annotations

import pytest

from dpsynth.compare import BASELINE, compare

from .test_compare import governed, tiny


def test_compare_reports_disparities_beside_the_baseline(tmp_path):
    frame, schema = tiny()
    ledger = governed(tmp_path / "l", frame)
    res = compare(frame, schema, gate=ledger.gate, dataset_key=ledger.dataset_key,
                  generators={"independent": {"iters": 30}}, epsilons=[1.0], target="sex", sensitive=["region"],
                  out=tmp_path / "cmp", seed=1, utility_models=["logistic_regression"]).results
    assert "failed" not in set(res["metric"])
    for who in (BASELINE, "independent"):
        metrics = res[res["generator"] == who].set_index("metric")["value"]
        for m in ("tstr_dp_difference_region", "tstr_eo_difference_region"):
            assert 0 <= metrics[m] <= 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(target="sex", sensitive=["nope"]), "sensitive: column 'nope'"),
    (dict(target="sex", sensitive=["sex"]), "sensitive: column 'sex'"),
    (dict(target="sex", sensitive=["age"]), "sensitive: column 'age'"),
    (dict(sensitive=["region"]), "need a target"),
])
def test_bad_sensitive_columns_are_refused_uncharged(tmp_path, kwargs, match):
    frame, schema = tiny()
    ledger = governed(tmp_path / "l", frame)
    with pytest.raises(ValueError, match=match):
        compare(frame, schema, gate=ledger.gate, dataset_key=ledger.dataset_key, generators=["independent"],
                epsilons=[1.0], out=tmp_path / "cmp", **kwargs)
    assert ledger.gate.spent_costs() == []
    assert not (tmp_path / "cmp").exists()
