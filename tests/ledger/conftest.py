"""Fixtures for the ledger tests: a real gate in a temporary directory."""

from __future__ import annotations

import pytest

from accountant.testing import make_test_gate


@pytest.fixture
def ledger(tmp_path):
    tl = make_test_gate(tmp_path, epsilon=1.0, delta=1e-6)
    yield tl
    tl.gate.close()
