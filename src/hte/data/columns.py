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


# How the named covariates are shown: name -> (label, short label, unit). ``label`` heads a form
# field or a table row ("ECOG performance status"); ``short`` fits inside a subgroup rule
# ("ECOG >= 2"); ``unit`` follows a value. Other columns are named by ``covariate_label``.
COVARIATE_LABELS: dict[str, tuple[str, str, str | None]] = {
    "age": ("Age", "age", "years"),
    "sex": ("Sex", "sex", None),
    "race": ("Race", "race", None),
    "ecog": ("ECOG performance status", "ECOG", None),
    "iss_stage": ("ISS stage", "ISS stage", None),
    "prior_lines": ("Prior lines of therapy", "prior lines", None),
    "high_risk_cytogenetics": ("High-risk cytogenetics", "high-risk cytogenetics", None),
    "gain_1q": ("Gain or amplification of 1q", "gain(1q)", None),
    "extramedullary": ("Extramedullary disease", "extramedullary", None),
    "prior_asct": ("Prior autologous stem-cell transplant", "prior ASCT", None),
    "penta_refractory": ("Penta-refractory disease", "penta-refractory", None),
    "ldh_high": ("LDH above the upper limit of normal", "high LDH", None),
    "prior_bcma": ("Prior BCMA-directed therapy", "prior BCMA therapy", None),
    "rapid_progression": ("Rapid progression", "rapid progression", None),
    "bm_plasma_pct": ("Bone-marrow plasma cells", "BM plasma cells %", "%"),
    "ferritin": ("Ferritin", "ferritin", "ng/mL"),
    "crp": ("C-reactive protein", "CRP", "mg/L"),
    "crcl": ("Creatinine clearance", "CrCl", "mL/min"),
    "years_since_diagnosis": ("Time since diagnosis", "years since diagnosis", "years"),
}


def covariate_label(name: str) -> tuple[str, str | None]:
    """(label, unit) of a covariate: the table above, else the column name in words."""
    if name in COVARIATE_LABELS:
        label, _, unit = COVARIATE_LABELS[name]
        return label, unit
    return name.replace("_", " ").capitalize(), None


def covariate_short_label(name: str) -> str:
    """The short label of a covariate for rule text ("ECOG"), else the column name in words."""
    if name in COVARIATE_LABELS:
        return COVARIATE_LABELS[name][1]
    return name.replace("_", " ")


# Columns that are outcomes or post-baseline: never used as covariates.
OUTCOME_COLUMNS = (OS_MONTHS, DEATH, CRS, CRS_GRADE)
POST_BASELINE_COLUMNS = (INFUSION_DAY,)
# Simulated truth (potential outcomes and true effects): estimators never see these.
TRUTH_PREFIX = "true_"
# (target, horizon in months) -> the simulated cohort's true CATE column (hte.data.simulate
# writes them; docs/methods.md, "Estimands"). Targets as in hte.vocabulary.
TRUE_CATE_COLUMNS: dict[tuple[str, float | None], str] = {
    ("survival", 12.0): "true_cate_surv12",
    ("rmst", 24.0): "true_cate_rmst24",
    ("crs", None): "true_cate_crs",
    ("crs_g3", None): "true_cate_crs_g3",
}


def covariate_columns(columns: list[str] | tuple[str, ...]) -> list[str]:
    """Columns of a cohort usable as baseline covariates: everything that is not an id,
    treatment, outcome, post-baseline variable or simulated truth, in the order given."""
    excluded = {PATIENT_ID, TREATMENT, *OUTCOME_COLUMNS, *POST_BASELINE_COLUMNS}
    return [c for c in columns if c not in excluded and not c.startswith(TRUTH_PREFIX)]
