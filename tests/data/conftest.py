"""A small valid cohort for data-layer tests, shaped like the synthetic cohort the simulator writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte.data.columns import BOOLEAN_COVARIATES, DAYS_PER_MONTH


def make_cohort(n: int = 50, seed: int = 0) -> pd.DataFrame:
    """A valid ~n-row cohort: both arms, deaths and censoring, CRS with grades, CAR-T infusion days
    (some CAR-T patients never infused), every named covariate and a few `true_*` columns."""
    rng = np.random.default_rng(seed)
    treatment = np.where(np.arange(n) % 2 == 0, "cart", "tec")
    os_months = rng.uniform(1.0, 36.0, n)
    crs_grade = rng.integers(0, 4, n)
    infusion = rng.uniform(20.0, 60.0, n)
    infusion = np.minimum(infusion, os_months * DAYS_PER_MONTH)  # infused before death/censoring
    never_infused = np.arange(n) % 10 == 4  # every fifth CAR-T patient died waiting
    infusion = np.where((treatment == "cart") & ~never_infused, infusion, np.nan)
    df = pd.DataFrame(
        {
            "patient_id": [f"P{i:06d}" for i in range(1, n + 1)],
            "treatment": treatment,
            "os_months": os_months,
            "death": np.arange(n) % 3 != 0,
            "crs": crs_grade >= 1,
            "crs_grade": crs_grade,
            "infusion_day": infusion,
            "age": rng.uniform(40.0, 85.0, n),
            "sex": rng.choice(["female", "male"], n),
            "race": rng.choice(["white", "black", "asian", "other"], n),
            "ecog": rng.integers(0, 3, n),
            "iss_stage": rng.integers(1, 4, n),
            "prior_lines": rng.integers(3, 9, n),
            "bm_plasma_pct": rng.uniform(0.0, 90.0, n),
            "ferritin": rng.uniform(50.0, 900.0, n),
            "crp": rng.uniform(0.0, 40.0, n),
            "crcl": rng.uniform(30.0, 120.0, n),
            "years_since_diagnosis": rng.uniform(1.0, 12.0, n),
        }
    )
    for name in BOOLEAN_COVARIATES:
        df[name] = rng.random(n) < 0.3
    df["true_cate_os_12"] = rng.normal(0.05, 0.02, n)
    df["true_p_crs_cart"] = rng.uniform(0.5, 0.9, n)
    return df


@pytest.fixture
def cohort() -> pd.DataFrame:
    return make_cohort()


@pytest.fixture
def cohort_factory():
    """make_cohort itself, for tests that need another size or seed (importing conftest by name
    is fragile when several test folders have one)."""
    return make_cohort
