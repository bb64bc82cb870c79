"""Shared fixtures for the marginal-generator tests: a slice of the AIM-paper Adult."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED

ADULT_HD = SHARED / "data" / "adult_hd"


def adult_hd_slice(columns: list[str], rows: int | None = None, seed: int = 0):
    """(frame, schema) for some columns of adult_hd, each declared categorical over
    its published domain (adult-domain.json, a public fact)."""
    from dpsynth.schema import Column, Schema

    if not ADULT_HD.is_dir():
        pytest.skip(f"needs the shared benchmark data at {ADULT_HD} (absent outside the project setting)")
    domain = json.loads((ADULT_HD / "adult-domain.json").read_text())
    frame = pd.read_csv(ADULT_HD / "adult.csv", usecols=columns)[columns]
    if rows is not None and rows < len(frame):
        frame = frame.sample(rows, random_state=seed).reset_index(drop=True)
    schema = Schema([Column(c, "categorical", categories=list(range(domain[c]))) for c in columns])
    return frame, schema


def seeded_table(frame, schema, ledger, seed: int = 0):
    """A seeded PrivateTable on a test ledger made with make_test_gate(frame=frame)."""
    from dpsynth.noise.randomness import SeededRandomSource
    from dpsynth.table import PrivateTable

    return PrivateTable(frame, schema, ledger.gate, dataset_key=ledger.dataset_key,
                        random_source=SeededRandomSource(seed))
