"""Record and replay: a correct generator passes; every canary is caught by the right check."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from accountant.events import NeighbouringRelation
from accountant.testing import make_test_gate
from dpsynth.noise.randomness import SecureRandomSource, SeededRandomSource
from dpsynth.schema import Column, Schema
from dpsynth.testing.recording import RecordingRefused, RecordingTable, ReplayTable
from dpsynth.testing.replay import (ReplayFailure, neighbours, other_record, record_and_replay,
                                    worst_case_record)

from . import toys
from .support import SCHEMA, small_frame

FRAME = small_frame(n=40)


def _fails(make, check, schema=SCHEMA, frame=FRAME, **kwargs):
    with pytest.raises(ReplayFailure) as info:
        record_and_replay(make, frame, schema, **kwargs)
    assert check in info.value.report.checks_failed(), info.value
    return info.value.report


def test_correct_generator_passes_every_neighbour(tmp_path):
    report = record_and_replay(toys.ToyIndependent, FRAME, SCHEMA, directory=tmp_path)
    assert report.ok
    assert report.measurements == {"add_or_remove_one": 1, "replace_one": 1}
    assert set(report.max_ratio) == {"add_or_remove_one/remove", "add_or_remove_one/add", "replace_one/replace"}
    # the worst-case target really moves the marginals by the declared bound
    assert report.max_ratio["add_or_remove_one/remove"] == pytest.approx(1.0)
    assert report.max_ratio["replace_one/replace"] == pytest.approx(1.0)  # √2 measured / √2 declared


def test_worst_case_record_is_rare_everywhere_and_partner_differs():
    target = worst_case_record(SCHEMA, FRAME)
    assert target["colour"] == "blue"  # declared, never seen
    assert target["size"] in (0.0, 10.0)  # an outer edge: beyond every value of the data
    assert target["count"] in (0, 5)
    other = other_record(SCHEMA, FRAME, target)
    assert all(other[k] != target[k] for k in target)
    d, nbrs = neighbours(FRAME, target, other, NeighbouringRelation.ADD_OR_REMOVE_ONE)
    assert len(d) == len(FRAME) + 1 and len(nbrs["remove"]) == len(FRAME) and len(nbrs["add"]) == len(FRAME) + 2


def test_c1_domain_read_from_data_is_caught():
    _fails(toys.DomainFromData, "output")


def test_c1_bounds_read_from_data_are_caught():
    _fails(lambda: toys.BoundsFromData("size"), "output")


def test_c2_unnoised_frequencies_are_caught():
    _fails(toys.UnnoisedFrequencies, "output")


def test_c3_wrong_declared_sensitivity_is_caught():
    report = _fails(toys.WrongSensitivity, "sensitivity")
    assert "output" not in report.checks_failed()  # the released value itself was frozen


def test_c4_read_outside_a_charged_measurement_is_caught():
    _fails(toys.UnchargedRead, "uncharged")


def test_c6_reused_receipt_is_caught():
    _fails(toys.ReusedReceipt, "output")


def test_c10_data_dependent_control_flow_is_caught():
    _fails(toys.DataDependentFlow, "divergence")


class AddRemoveSensitivityEverywhere:
    """C3 in the table: claims the add/remove L2 bound under replace-one too."""

    def _l2_unit(self):
        return 1.0


class ChargesHalfTheBatch:
    """The ledger entry covers only the first clique of a batch."""

    def _charge(self, spec, **kwargs):
        half = type(spec)(spec.kind, spec.query, spec.events[:1], spec.sensitivity, spec.norm)
        return super()._charge(half, **kwargs)


class NeverCharges:
    """C4 in the table: a measurement that fakes its receipt instead of charging."""

    def _charge(self, spec, **kwargs):
        fake = SimpleNamespace(entry_hash="0" * 64, sequence=0, event="{}", run_id=kwargs.get("run_id"),
                               kind="charge", refs=[])
        self._receipts.append(fake)
        return fake


class TwoMarginals(toys.ToyIndependent):
    def _measure(self, table):
        names = table.schema.names
        return table.measure_marginals([(names[0],), (names[1], names[2])], [2.0, 3.0], purpose="toy",
                                       generator="toy", run_id="toy-run")

    def fit(self, table):
        self.schema = table.schema
        ms = self._measure(table)
        self.probs = []
        for j, n in enumerate(table.schema.names):
            p = np.ones(table.domain[n])
            self.probs.append(p / p.sum())
        return self


def test_table_level_wrong_sensitivity_is_caught():
    report = _fails(toys.ToyIndependent, "sensitivity", mixins=[AddRemoveSensitivityEverywhere],
                    relations=[NeighbouringRelation.REPLACE_ONE])
    assert any("1.41421" in p.message for p in report.problems)


def test_table_level_partial_charge_is_caught():
    _fails(TwoMarginals, "ledger", mixins=[ChargesHalfTheBatch])


def test_table_level_missing_charge_is_caught():
    _fails(toys.ToyIndependent, "ledger", mixins=[NeverCharges])


class LearnsItsSchema(toys.ToyIndependent):
    """Correct: learns categories and bins through the gate, then measures."""

    def fit(self, table):
        table.learn_schema(8.0, 1e-7, ranges={"size": (0.0, 10.0)}, bins=3, generator="toy", run_id="toy-run")
        return super().fit(table)


def test_schema_learning_passes_replay_with_a_brand_new_key():
    schema = Schema([Column("colour", "categorical"), Column("size", "numeric"), Column("flag", "boolean")])
    frame = small_frame(n=300)[["colour", "size", "flag"]]
    report = record_and_replay(LearnsItsSchema, frame, schema, epsilon=200.0)
    assert report.ok
    kinds = [r.measurement.kind for r in report.records["add_or_remove_one"]]
    assert kinds == ["keys", "quantiles", "marginals"]


def test_recording_tables_refuse_secure_sources_and_production_ledgers(tmp_path):
    test_ledger = make_test_gate(tmp_path / "t", epsilon=5.0, frame=FRAME)
    test_gate = test_ledger.gate
    prod = make_test_gate(tmp_path / "p", epsilon=5.0, allow_seeded_noise=False, frame=FRAME)
    prod_gate = prod.gate
    with pytest.raises(RecordingRefused):
        RecordingTable(FRAME, SCHEMA, test_gate, random_source=SecureRandomSource(),
                       dataset_key=test_ledger.dataset_key)
    with pytest.raises(RecordingRefused):
        RecordingTable(FRAME, SCHEMA, prod_gate, random_source=SeededRandomSource(0), dataset_key=prod.dataset_key)
    with pytest.raises(RecordingRefused):
        ReplayTable(FRAME, SCHEMA, prod_gate, recording=[], random_source=SeededRandomSource(0),
                    dataset_key=prod.dataset_key)
    with pytest.raises(TypeError):
        RecordingTable(FRAME, SCHEMA, test_gate)  # no default source: a seeded one must be chosen
