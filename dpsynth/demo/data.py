"""A realistic mixed-type demo table, drawn from a known model (so nothing real is in it).

The model is a small Bayesian network over ten columns, a caricature of a
labour-force survey:

    region ──────────────────────────────┐
    age ─┬─> married                     │
         ├─> education ─┬─> occupation ─┬┴─> hours ─┐
    sex ─┴──────────────┴───────────────┘           ├─> income
         age, education, occupation, region ────────┘
    survey_date (independent, with a seasonal pattern)

Columns: age (integer 17–90), sex, education (ordinal), occupation (categorical,
about 2 % missing), hours (numeric, about 3 % missing), income (ordinal bands),
region, married (boolean), survey_date (datetime), and satisfaction (ordinal,
driven by hours and income).  `demo_table(n, seed)` is deterministic in `seed`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["demo_table", "EDUCATION", "OCCUPATIONS", "INCOME_BANDS", "REGIONS", "SATISFACTION"]

EDUCATION = ("Primary", "Secondary", "Vocational", "Bachelor", "Master", "Doctorate")
OCCUPATIONS = ("Clerical", "Craft", "Farming", "Management", "Professional", "Sales", "Service", "Transport")
INCOME_BANDS = ("<25k", "25-50k", "50-100k", ">100k")
REGIONS = ("Capital", "North", "South", "East", "West")
SATISFACTION = ("Low", "Medium", "High")

# Occupation given education: rows follow EDUCATION, columns OCCUPATIONS (relative weights).
_OCCUPATION_GIVEN_EDUCATION = np.array([
    [2, 6, 5, 0.2, 0.1, 3, 7, 6],
    [5, 5, 2, 0.8, 0.5, 6, 6, 5],
    [3, 8, 2, 1, 1, 3, 3, 5],
    [6, 1, 0.5, 4, 7, 5, 2, 1],
    [3, 0.5, 0.2, 6, 9, 2, 1, 0.5],
    [1, 0.1, 0.1, 3, 12, 0.5, 0.3, 0.1],
])
# Occupations men and women are drawn to (multiplies the weights above), same column order.
_OCCUPATION_SEX = {"Male": np.array([0.7, 1.8, 1.3, 1.2, 1.0, 0.9, 0.6, 1.9]),
                   "Female": np.array([1.5, 0.3, 0.6, 0.8, 1.0, 1.1, 1.5, 0.2])}
_BASE_HOURS = dict(zip(OCCUPATIONS, (38, 42, 48, 46, 41, 37, 32, 44)))
_OCCUPATION_PAY = dict(zip(OCCUPATIONS, (0.0, 0.1, -0.4, 0.9, 0.8, 0.1, -0.5, 0.0)))
_REGION_PAY = dict(zip(REGIONS, (0.5, 0.0, -0.3, -0.1, 0.1)))


def _choice(rng: np.random.Generator, labels, probs: np.ndarray) -> np.ndarray:
    """One draw per row from row-wise probabilities."""
    probs = probs / probs.sum(axis=1, keepdims=True)
    u = rng.random(len(probs))[:, None]
    idx = (probs.cumsum(axis=1) < u).sum(axis=1)
    return np.asarray(labels, dtype=object)[np.minimum(idx, len(labels) - 1)]


def demo_table(n: int = 5000, seed: int = 0) -> pd.DataFrame:
    """`n` rows drawn from the demo model with `np.random.default_rng(seed)`."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    region = rng.choice(np.asarray(REGIONS, dtype=object), size=n, p=[0.3, 0.2, 0.2, 0.15, 0.15])
    age = np.clip(np.round(17 + rng.gamma(3.0, 8.0, size=n)), 17, 90).astype(int)
    sex = rng.choice(np.asarray(("Female", "Male"), dtype=object), size=n, p=[0.51, 0.49])
    married = rng.random(n) < 1 / (1 + np.exp(-(age - 32) / 6)) * 0.7

    # Education: older cohorts less schooled; the youngest not finished yet.
    level = 1.6 + 0.9 * (region == "Capital") - 0.012 * np.maximum(age - 35, 0) + rng.normal(0, 1.1, n)
    level = np.where(age < 22, np.minimum(level, 2.0), level)
    education = np.asarray(EDUCATION, dtype=object)[np.clip(np.round(level), 0, len(EDUCATION) - 1).astype(int)]

    edu_idx = np.array([EDUCATION.index(e) for e in education])
    weights = _OCCUPATION_GIVEN_EDUCATION[edu_idx] * np.stack([_OCCUPATION_SEX[s] for s in sex])
    occupation = _choice(rng, OCCUPATIONS, weights)

    base = np.array([_BASE_HOURS[o] for o in occupation], dtype=float)
    hours = base - 4.0 * (sex == "Female") - 6.0 * (age > 62) + rng.normal(0, 6, n)
    hours = np.clip(np.round(hours, 1), 1, 99)

    pay = (0.45 * edu_idx + np.array([_OCCUPATION_PAY[o] for o in occupation])
           + np.array([_REGION_PAY[r] for r in region]) + 0.03 * (hours - 40)
           + 0.9 * np.exp(-((age - 50) / 15) ** 2) - 0.25 * (sex == "Female") + rng.logistic(0, 0.55, n))
    income = np.asarray(INCOME_BANDS, dtype=object)[np.digitize(pay, [1.0, 1.9, 2.9])]

    inc_idx = np.digitize(pay, [1.0, 1.9, 2.9])
    mood = 0.35 * inc_idx - 0.04 * (hours - 40) + 0.3 * married + rng.normal(0, 0.8, n)
    satisfaction = np.asarray(SATISFACTION, dtype=object)[np.digitize(mood, [0.2, 1.0])]

    # Survey dates 2015-2024, more interviews in spring and autumn.
    days = rng.integers(0, 3653, size=n)
    month = (days % 365) // 30
    keep = rng.random(n) < np.where(np.isin(month, (2, 3, 8, 9)), 1.0, 0.6)
    days = np.where(keep, days, rng.integers(0, 3653, size=n))
    survey_date = (pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")

    frame = pd.DataFrame({
        "age": age, "sex": sex, "education": education, "occupation": occupation, "hours": hours,
        "income": income, "region": region, "married": married, "survey_date": survey_date,
        "satisfaction": satisfaction,
    })
    frame.loc[rng.random(n) < 0.02, "occupation"] = None
    frame.loc[rng.random(n) < 0.03, "hours"] = np.nan
    return frame
