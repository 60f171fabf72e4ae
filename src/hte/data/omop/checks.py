"""Checks of an OMOP database before a cohort is built from it: every table and column the
builder reads is there, and dates are in order. Each error names the table, the column and
the persons."""

from __future__ import annotations

import pandas as pd

from hte.data.omop.connection import Database, OmopError

MAX_LISTED = 5  # persons named in an error

# table -> columns the builder reads
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": (
        "person_id",
        "gender_concept_id",
        "year_of_birth",
        "month_of_birth",
        "day_of_birth",
        "birth_datetime",
        "race_concept_id",
        "person_source_value",
    ),
    "observation_period": (
        "person_id",
        "observation_period_start_date",
        "observation_period_end_date",
    ),
    "condition_occurrence": ("person_id", "condition_concept_id", "condition_start_date"),
    "drug_exposure": (
        "person_id",
        "drug_concept_id",
        "drug_exposure_start_date",
        "drug_exposure_end_date",
    ),
    "procedure_occurrence": ("person_id", "procedure_concept_id", "procedure_date"),
    "measurement": (
        "person_id",
        "measurement_id",
        "measurement_concept_id",
        "measurement_date",
        "value_as_number",
    ),
    "death": ("person_id", "death_date"),
    "concept": ("concept_id", "concept_name", "vocabulary_id", "concept_code"),
}


def check_tables(db: Database) -> dict[str, set[str]]:
    """Every table and column the builder reads exists; one error lists all that are missing.
    Returns every table of the schema with its columns."""
    present = db.table_columns()
    problems = []
    for table, cols in REQUIRED_COLUMNS.items():
        if table not in present:
            problems.append(f"table {db.table(table)} is missing")
            continue
        missing = [c for c in cols if c not in present[table]]
        if missing:
            problems.append(f"table {db.table(table)} lacks column(s) {', '.join(missing)}")
    if problems:
        raise OmopError(
            f"the database {db.url} is not an OMOP CDM v5.4 the builder can read:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return present


def persons_text(frame: pd.DataFrame, n: int | None = None) -> str:
    n = len(frame) if n is None else n
    shown = ", ".join(
        f"{int(r.person_id)} ({r.person_source_value})" for r in frame.head(MAX_LISTED).itertuples()
    )
    more = f" and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
    return f"person_id {shown}{more}"


def _check_rows(db: Database, sql: str, message: str) -> None:
    bad = db.query(sql)
    if len(bad):
        total = int(bad["n_total"].iloc[0]) if "n_total" in bad.columns else len(bad)
        raise OmopError(f"{message}: {total} row(s), e.g. {persons_text(bad, total)}")


def check_dates(db: Database) -> None:
    """Dates out of order, each an error naming table, column and persons."""
    t = db.table
    _check_rows(
        db,
        f"SELECT o.person_id, p.person_source_value, COUNT(*) OVER () AS n_total "
        f"FROM {t('observation_period')} o LEFT JOIN {t('person')} p ON p.person_id = o.person_id "
        f"WHERE o.observation_period_end_date < o.observation_period_start_date "
        f"ORDER BY o.person_id LIMIT {MAX_LISTED}",
        f"{t('observation_period')}.observation_period_end_date is before "
        "observation_period_start_date",
    )
    _check_rows(
        db,
        f"SELECT d.person_id, p.person_source_value, COUNT(*) OVER () AS n_total "
        f"FROM {t('death')} d JOIN {t('person')} p ON p.person_id = d.person_id "
        f"WHERE d.death_date < CAST(p.birth_datetime AS DATE) "
        f"   OR EXTRACT(YEAR FROM d.death_date) < p.year_of_birth "
        f"ORDER BY d.person_id LIMIT {MAX_LISTED}",
        f"{t('death')}.death_date is before the birth date in {t('person')}",
    )
