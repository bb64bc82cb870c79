"""The demo table's public schema: declared, so nothing about it is learned from the data."""

from __future__ import annotations

from dpsynth.schema import Column, Schema

from .data import EDUCATION, INCOME_BANDS, OCCUPATIONS, REGIONS, SATISFACTION

__all__ = ["demo_schema"]


def demo_schema() -> Schema:
    return Schema([
        Column("age", "integer", lower=17, upper=92, bins=15),           # 5-year bins
        Column("sex", "categorical", categories=("Female", "Male")),
        Column("education", "ordinal", categories=EDUCATION),
        Column("occupation", "categorical", categories=OCCUPATIONS, nullable=True),
        Column("hours", "numeric", lower=0, upper=100, bins=20, nullable=True),
        Column("income", "ordinal", categories=INCOME_BANDS),
        Column("region", "categorical", categories=REGIONS),
        Column("married", "boolean"),
        Column("survey_date", "datetime", lower="2015-01-01", upper="2025-01-01", bins=10),
        Column("satisfaction", "ordinal", categories=SATISFACTION),
    ])
