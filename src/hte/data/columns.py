"""Canonical column names of a cohort (docs/methods.md, "Data schema"), shared by every layer.

One row per patient at time zero (the treatment decision). Treatment is coded ``"cart"`` / ``"tec"``
in data files and 1 / 0 inside estimators (1 = CAR-T).
"""

from __future__ import annotations

PATIENT_ID = "patient_id"
TREATMENT = "treatment"
OS_MONTHS = "os_months"
DEATH = "death"
CRS = "crs"
CRS_GRADE = "crs_grade"
INFUSION_DAY = "infusion_day"

CART = "cart"
TEC = "tec"
TREATMENT_CODES = (CART, TEC)

DAYS_PER_MONTH = 365.25 / 12.0
WEEKS_PER_MONTH = DAYS_PER_MONTH / 7.0

# Named baseline covariates, measured at or before time zero. All optional except age.
BOOLEAN_COVARIATES = (
    "high_risk_cytogenetics",
    "gain_1q",
    "extramedullary",
    "prior_asct",
    "penta_refractory",
    "ldh_high",
    "prior_bcma",
    "rapid_progression",
)
CATEGORICAL_COVARIATES = ("sex", "race")
INTEGER_COVARIATES = ("ecog", "iss_stage", "prior_lines")
CONTINUOUS_COVARIATES = (
    "age",
    "bm_plasma_pct",
    "ferritin",
    "crp",
    "crcl",
    "years_since_diagnosis",
)
NAMED_COVARIATES = (
    CONTINUOUS_COVARIATES + INTEGER_COVARIATES + BOOLEAN_COVARIATES + CATEGORICAL_COVARIATES
)
REQUIRED_COVARIATES = ("age",)

# Columns that are outcomes or post-baseline: never used as covariates.
OUTCOME_COLUMNS = (OS_MONTHS, DEATH, CRS, CRS_GRADE)
POST_BASELINE_COLUMNS = (INFUSION_DAY,)
# Simulated truth (potential outcomes and true effects): estimators never see these.
TRUTH_PREFIX = "true_"


def covariate_columns(columns: list[str] | tuple[str, ...]) -> list[str]:
    """Columns of a cohort usable as baseline covariates: everything that is not an id,
    treatment, outcome, post-baseline variable or simulated truth, in the order given."""
    excluded = {PATIENT_ID, TREATMENT, *OUTCOME_COLUMNS, *POST_BASELINE_COLUMNS}
    return [c for c in columns if c not in excluded and not c.startswith(TRUTH_PREFIX)]
