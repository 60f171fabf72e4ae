"""The cohort schema (docs/methods.md, "Data schema"): declared once, checked with pandera, every problem collected.

A cohort is one row per patient at time zero. ``validate_cohort`` coerces each known column to its
canonical dtype (text booleans, numeric text, treatment codes), then checks types, ranges, allowed
values, uniqueness and the cross-column rules, and raises one ``CohortValidationError`` that lists
every problem found. Rows are never dropped: the cohort comes back whole or not at all.
Row numbers in problems are 1-based data rows (the first row after a CSV header is row 1).

The pieces: problems and the error (``hte.data.problems``), dtype coercion (``hte.data.coerce``),
the rules beyond dtypes (``hte.data.schema_rules``); this module declares the columns
(``SPECS``) and runs the checks in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pandas as pd

from hte.data.coerce import coerce_column
from hte.data.column_rules import (
    MAX_LEVELS,
    all_missing_issue,
    free_column_issues,
    nested_issue,
    unsafe_text_issue,
)
from hte.data.column_spec import ColumnSpec
from hte.data.columns import (
    BOOLEAN_COVARIATES,
    CRS,
    CRS_GRADE,
    DEATH,
    INFUSION_DAY,
    OS_MONTHS,
    PATIENT_ID,
    TREATMENT,
    TREATMENT_CODES,
    covariate_columns,
)
from hte.data.problems import (
    TABLE,
    CohortValidationError,
    Found,
    Problem,
    describe_rows,
    row_positions,
)
from hte.data.schema_rules import presence_problems, schema_problems, table_problems

# Problem, CohortValidationError, describe_rows and TABLE are read from here by users and tests.
__all__ = [
    "ALWAYS_REQUIRED",
    "SPECS",
    "TABLE",
    "CohortValidationError",
    "ColumnSpec",
    "Problem",
    "column_notes",
    "describe_rows",
    "specs_with_ranges",
    "validate_cohort",
]


def _specs() -> dict[str, ColumnSpec]:
    """Every known column. Upper bounds are generous physiological limits (far beyond any
    patient, so a real value is never refused) that stop corrupt or unit-confused values such as
    ferritin 1e300 from reaching a model; a cohort declares its own ranges in its column map."""
    specs = [
        ColumnSpec(PATIENT_ID, "id", nullable=False, unique=True),
        ColumnSpec(TREATMENT, "treatment", nullable=False, allowed=TREATMENT_CODES),
        # follow-up 0 (death or censoring on the day of the decision) is allowed here; the
        # day-zero rule (hte.data.day_zero) moves it to a small offset before any fit
        ColumnSpec(OS_MONTHS, "float", nullable=False, minimum=0, maximum=1200, unit="months"),
        ColumnSpec(DEATH, "bool", nullable=False),
        ColumnSpec(CRS, "bool", nullable=False),
        ColumnSpec(CRS_GRADE, "int", minimum=0, maximum=5),
        ColumnSpec(INFUSION_DAY, "float", minimum=0, maximum=36_500, unit="days"),
        ColumnSpec("age", "float", nullable=False, minimum=18, maximum=110, unit="years"),
        ColumnSpec("sex", "category", allowed=("female", "male")),
        ColumnSpec("race", "category"),
        ColumnSpec("ecog", "int", minimum=0, maximum=4),
        ColumnSpec("iss_stage", "int", minimum=1, maximum=3),
        ColumnSpec("prior_lines", "int", minimum=0, maximum=30),
        ColumnSpec("bm_plasma_pct", "float", minimum=0, maximum=100, unit="%"),
        ColumnSpec("ferritin", "float", minimum=0, maximum=1_000_000, unit="ng/mL"),
        ColumnSpec("crp", "float", minimum=0, maximum=1_000, unit="mg/L"),
        ColumnSpec("crcl", "float", minimum=0, maximum=500, unit="mL/min"),
        ColumnSpec("years_since_diagnosis", "float", minimum=0, maximum=80, unit="years"),
        *(ColumnSpec(name, "bool") for name in BOOLEAN_COVARIATES),
    ]
    return {s.name: s for s in specs}


SPECS: dict[str, ColumnSpec] = _specs()
ALWAYS_REQUIRED = (PATIENT_ID, TREATMENT, "age")
# Columns whose range a cohort may declare (covariates; ids, codes and outcomes keep theirs).
_FIXED_RANGES = (PATIENT_ID, TREATMENT, OS_MONTHS, DEATH, CRS, CRS_GRADE, INFUSION_DAY)

Ranges = Mapping[str, tuple[float | None, float | None]]


def specs_with_ranges(ranges: Ranges | None = None) -> dict[str, ColumnSpec]:
    """The schema's column specs with a cohort's own covariate ranges (``ranges``: column ->
    (min, max), None = unbounded) in place of the defaults. A range for a column the schema does
    not name makes it a checked number. Outcome, id and code columns keep their rules."""
    specs = dict(SPECS)
    for name, (lo, hi) in (ranges or {}).items():
        if name in _FIXED_RANGES:
            raise ValueError(f"the range of {name} is fixed by the schema; only covariates")
        base = specs.get(name, ColumnSpec(name, "float"))
        if base.kind not in ("float", "int"):
            raise ValueError(f"{name} is not a number ({base.kind}); it has no range")
        specs[name] = replace(base, minimum=lo, maximum=hi, min_exclusive=False)
    return specs


# --------------------------------------------------------------------------------------------
# The checks, in order


def validate_cohort(
    df: pd.DataFrame, *, ranges: Ranges | None = None, max_levels: int = MAX_LEVELS
) -> pd.DataFrame:
    """Check a cohort against the schema and return it with canonical dtypes, every row kept.

    Raises ``CohortValidationError`` listing every problem found (column, rule, example rows).
    Known columns come back as: patient_id and treatment str ("cart"/"tec"), os_months and
    float covariates float64, death/crs bool, crs_grade and integer covariates Int64, boolean
    covariates bool (nullable "boolean" where values are missing). Other columns are kept as given
    but checked (``hte.data.column_rules``: not all missing, one value per cell, no decimal
    commas or text among numbers, text with at most ``max_levels`` distinct values).
    ``ranges`` replaces the schema's covariate ranges (a cohort's own, from its column map).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_cohort needs a pandas DataFrame; got {type(df).__name__}")
    found = presence_problems(df.columns, ALWAYS_REQUIRED, SPECS)
    if len(df) == 0:
        found.insert(0, Found(TABLE, "cohort has no rows", np.array([], dtype=int)))
        raise CohortValidationError([f.to_problem() for f in found])
    duplicated = df.columns[df.columns.duplicated()].unique()
    if len(duplicated):
        found += [
            Found(str(c), "column appears more than once", np.array([], dtype=int))
            for c in duplicated
        ]
        raise CohortValidationError([f.to_problem() for f in found])

    specs = specs_with_ranges(ranges)
    out = df.reset_index(drop=True)
    unreadable: dict[str, np.ndarray] = {}
    nested: list[str] = []
    for name in map(str, out.columns):
        issue = nested_issue(name, out[name])
        if issue is not None:
            found.append(Found(issue.column, issue.rule, issue.positions, issue.hint))
            unreadable[name] = issue.positions
            nested.append(name)
    covariates = covariate_columns([str(c) for c in out.columns])
    free = [c for c in covariates if c not in specs and c not in unreadable]
    for issue in free_column_issues(out, free, max_levels):
        found.append(Found(issue.column, issue.rule, issue.positions, issue.hint))
    for name in covariates:
        text_column = name not in specs or specs[name].kind == "category"
        issue = unsafe_text_issue(name, out[name]) if text_column else None
        if issue is not None and name not in unreadable:
            found.append(Found(issue.column, issue.rule, issue.positions, issue.hint))
        issue = all_missing_issue(name, out[name]) if name in specs else None
        if issue is not None and specs[name].nullable:
            found.append(Found(issue.column, issue.rule, np.array([], dtype=int), issue.hint))
    for name, spec in specs.items():
        if name not in out.columns or name in unreadable:
            continue
        values, bad, rule = coerce_column(spec, out[name])
        out[name] = values
        if bad.any():
            unreadable[name] = row_positions(bad)
            found.append(Found(name, rule, unreadable[name]))

    for item in schema_problems(out.drop(columns=nested), specs):
        if item.rule == f"{item.column} must not be missing" and item.column in unreadable:
            # unreadable values were already reported as such, not again as missing
            item.positions = np.setdiff1d(item.positions, unreadable[item.column])
            if not len(item.positions):
                continue
        found.append(item)
    found += table_problems(out, set(unreadable))
    if found:
        order = {name: i for i, name in enumerate([TABLE, *out.columns])}
        found.sort(key=lambda f: order.get(f.column, -1))
        raise CohortValidationError([f.to_problem() for f in found])
    return out


def column_notes(columns: pd.Index | list[str], column_map: object | None = None) -> list[str]:
    """Notes on an accepted cohort: columns that look like a known column under another name
    (so they would be used unchecked), columns the map excluded, and true_* columns (ignored by
    runs on a file: truth metrics are for simulated cohorts)."""
    from hte.data.column_rules import rename_suggestions
    from hte.data.columns import TRUTH_PREFIX

    names = [str(c) for c in columns]
    notes = rename_suggestions(names, list(SPECS))
    excluded = list(getattr(column_map, "exclude", []) or [])
    if excluded:
        notes.append(f"left out by the column map (exclude): {', '.join(excluded)}")
    truth = [c for c in names if c.startswith(TRUTH_PREFIX)]
    if truth:
        notes.append(
            f"{len(truth)} true_* column(s) are ignored: never covariates, and a run on a file "
            "does not compute truth metrics from them (evaluation.truth_metrics: auto)"
        )
    return notes
