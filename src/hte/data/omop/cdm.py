"""The OMOP CDM v5.4 tables hte reads and writes: names, columns and types (from the v5.4 DDL).

Only the clinical tables a myeloma cohort needs (person, observation_period, drug_exposure,
procedure_occurrence, condition_occurrence, measurement, death) and the vocabulary's concept table.
Types are written so that the same DDL runs on DuckDB and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

# (column, SQL type, NOT NULL) in the order of the v5.4 DDL
_INT, _DATE, _TS, _NUM = "INTEGER", "DATE", "TIMESTAMP", "NUMERIC"


def _vc(n: int) -> str:
    return f"VARCHAR({n})"


TABLES: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "person": (
        ("person_id", _INT, True),
        ("gender_concept_id", _INT, True),
        ("year_of_birth", _INT, True),
        ("month_of_birth", _INT, False),
        ("day_of_birth", _INT, False),
        ("birth_datetime", _TS, False),
        ("race_concept_id", _INT, True),
        ("ethnicity_concept_id", _INT, True),
        ("location_id", _INT, False),
        ("provider_id", _INT, False),
        ("care_site_id", _INT, False),
        ("person_source_value", _vc(50), False),
        ("gender_source_value", _vc(50), False),
        ("gender_source_concept_id", _INT, False),
        ("race_source_value", _vc(50), False),
        ("race_source_concept_id", _INT, False),
        ("ethnicity_source_value", _vc(50), False),
        ("ethnicity_source_concept_id", _INT, False),
    ),
    "observation_period": (
        ("observation_period_id", _INT, True),
        ("person_id", _INT, True),
        ("observation_period_start_date", _DATE, True),
        ("observation_period_end_date", _DATE, True),
        ("period_type_concept_id", _INT, True),
    ),
    "condition_occurrence": (
        ("condition_occurrence_id", _INT, True),
        ("person_id", _INT, True),
        ("condition_concept_id", _INT, True),
        ("condition_start_date", _DATE, True),
        ("condition_start_datetime", _TS, False),
        ("condition_end_date", _DATE, False),
        ("condition_end_datetime", _TS, False),
        ("condition_type_concept_id", _INT, True),
        ("condition_status_concept_id", _INT, False),
        ("stop_reason", _vc(20), False),
        ("provider_id", _INT, False),
        ("visit_occurrence_id", _INT, False),
        ("visit_detail_id", _INT, False),
        ("condition_source_value", _vc(50), False),
        ("condition_source_concept_id", _INT, False),
        ("condition_status_source_value", _vc(50), False),
    ),
    "drug_exposure": (
        ("drug_exposure_id", _INT, True),
        ("person_id", _INT, True),
        ("drug_concept_id", _INT, True),
        ("drug_exposure_start_date", _DATE, True),
        ("drug_exposure_start_datetime", _TS, False),
        ("drug_exposure_end_date", _DATE, True),
        ("drug_exposure_end_datetime", _TS, False),
        ("verbatim_end_date", _DATE, False),
        ("drug_type_concept_id", _INT, True),
        ("stop_reason", _vc(20), False),
        ("refills", _INT, False),
        ("quantity", _NUM, False),
        ("days_supply", _INT, False),
        ("sig", "TEXT", False),
        ("route_concept_id", _INT, False),
        ("lot_number", _vc(50), False),
        ("provider_id", _INT, False),
        ("visit_occurrence_id", _INT, False),
        ("visit_detail_id", _INT, False),
        ("drug_source_value", _vc(50), False),
        ("drug_source_concept_id", _INT, False),
        ("route_source_value", _vc(50), False),
        ("dose_unit_source_value", _vc(50), False),
    ),
    "procedure_occurrence": (
        ("procedure_occurrence_id", _INT, True),
        ("person_id", _INT, True),
        ("procedure_concept_id", _INT, True),
        ("procedure_date", _DATE, True),
        ("procedure_datetime", _TS, False),
        ("procedure_end_date", _DATE, False),
        ("procedure_end_datetime", _TS, False),
        ("procedure_type_concept_id", _INT, True),
        ("modifier_concept_id", _INT, False),
        ("quantity", _INT, False),
        ("provider_id", _INT, False),
        ("visit_occurrence_id", _INT, False),
        ("visit_detail_id", _INT, False),
        ("procedure_source_value", _vc(50), False),
        ("procedure_source_concept_id", _INT, False),
        ("modifier_source_value", _vc(50), False),
    ),
    "measurement": (
        ("measurement_id", _INT, True),
        ("person_id", _INT, True),
        ("measurement_concept_id", _INT, True),
        ("measurement_date", _DATE, True),
        ("measurement_datetime", _TS, False),
        ("measurement_time", _vc(10), False),
        ("measurement_type_concept_id", _INT, True),
        ("operator_concept_id", _INT, False),
        ("value_as_number", _NUM, False),
        ("value_as_concept_id", _INT, False),
        ("unit_concept_id", _INT, False),
        ("range_low", _NUM, False),
        ("range_high", _NUM, False),
        ("provider_id", _INT, False),
        ("visit_occurrence_id", _INT, False),
        ("visit_detail_id", _INT, False),
        ("measurement_source_value", _vc(50), False),
        ("measurement_source_concept_id", _INT, False),
        ("unit_source_value", _vc(50), False),
        ("unit_source_concept_id", _INT, False),
        ("value_source_value", _vc(50), False),
        ("measurement_event_id", _INT, False),
        ("meas_event_field_concept_id", _INT, False),
    ),
    "death": (
        ("person_id", _INT, True),
        ("death_date", _DATE, True),
        ("death_datetime", _TS, False),
        ("death_type_concept_id", _INT, False),
        ("cause_concept_id", _INT, False),
        ("cause_source_value", _vc(50), False),
        ("cause_source_concept_id", _INT, False),
    ),
    "concept": (
        ("concept_id", _INT, True),
        ("concept_name", _vc(255), True),
        ("domain_id", _vc(20), True),
        ("vocabulary_id", _vc(20), True),
        ("concept_class_id", _vc(20), True),
        ("standard_concept", _vc(1), False),
        ("concept_code", _vc(50), True),
        ("valid_start_date", _DATE, True),
        ("valid_end_date", _DATE, True),
        ("invalid_reason", _vc(1), False),
    ),
}

# NUMERIC without precision is a double-width decimal on PostgreSQL but DECIMAL(18,3) on DuckDB,
# which would round lab values; DuckDB gets DOUBLE instead.
_DUCKDB_TYPES = {_NUM: "DOUBLE"}


@dataclass(frozen=True)
class Domain:
    """Where one concept domain's events live: table, concept column, date column."""

    table: str
    concept_column: str
    date_column: str


DOMAINS: dict[str, Domain] = {
    "condition": Domain("condition_occurrence", "condition_concept_id", "condition_start_date"),
    "drug": Domain("drug_exposure", "drug_concept_id", "drug_exposure_start_date"),
    "procedure": Domain("procedure_occurrence", "procedure_concept_id", "procedure_date"),
    "measurement": Domain("measurement", "measurement_concept_id", "measurement_date"),
}


def columns(table: str) -> list[str]:
    """Column names of a CDM table in DDL order."""
    return [c for c, _, _ in TABLES[table]]


def create_table_sql(table: str, dialect: str, schema: str | None = None) -> str:
    """CREATE TABLE statement of one CDM table for ``dialect`` ("duckdb" or "postgresql")."""
    types = _DUCKDB_TYPES if dialect == "duckdb" else {}
    lines = [
        f"    {name} {types.get(kind, kind)}{' NOT NULL' if not_null else ''}"
        for name, kind, not_null in TABLES[table]
    ]
    qualified = f"{schema}.{table}" if schema else table
    return f"CREATE TABLE {qualified} (\n" + ",\n".join(lines) + "\n)"
