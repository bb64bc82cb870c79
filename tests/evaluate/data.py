"""Loaders for the shared benchmark tables the evaluation tests use (skip when absent)."""

from __future__ import annotations

import json
from functools import lru_cache

import pandas as pd

from dpsynth.evaluate import ColumnSpec
from tests.conftest import shared_path

ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country", "income",
]
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
# Public ranges (from the UCI documentation's attribute descriptions, rounded out), not read off the data.
ADULT_BOUNDS = {
    "age": (17, 90), "fnlwgt": (0, 1_500_000), "education-num": (1, 16),
    "capital-gain": (0, 100_000), "capital-loss": (0, 5_000), "hours-per-week": (1, 99),
}


def coded(name: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """An integer-coded table and its domain, e.g. ``coded("adult_hd")``."""
    folder = shared_path("data", name)
    csv = next(folder.glob("*.csv"))
    domain_file = next(folder.glob("*-domain.json"))
    return _read_coded(str(csv), str(domain_file))


@lru_cache(maxsize=None)
def _read_coded(csv: str, domain_file: str) -> tuple[pd.DataFrame, dict[str, int]]:
    with open(domain_file) as f:
        domain = json.load(f)
    return pd.read_csv(csv), domain


def adult_raw() -> tuple[pd.DataFrame, pd.DataFrame, ColumnSpec]:
    """UCI Adult train and test (mixed types) and their column spec (target ``income``)."""
    folder = shared_path("data", "adult", "raw")
    return (*_read_adult(str(folder)), adult_spec())


@lru_cache(maxsize=None)
def _read_adult(folder: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    read = dict(names=ADULT_COLUMNS, skipinitialspace=True, na_values="?")
    train = pd.read_csv(f"{folder}/adult.data", **read)
    test = pd.read_csv(f"{folder}/adult.test", skiprows=1, **read)
    test["income"] = test["income"].str.rstrip(".")
    return train, test


def adult_spec() -> ColumnSpec:
    return ColumnSpec(
        categorical=[c for c in ADULT_COLUMNS if c not in ADULT_NUMERIC],
        numeric=ADULT_NUMERIC,
        target="income",
        bounds=ADULT_BOUNDS,
    )
