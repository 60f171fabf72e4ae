"""Look-ahead is impossible, and bad databases or specs fail with messages naming table, column, rows."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from hte.data.omop.build import build_cohort
from hte.data.omop.connection import OmopError, connect
from hte.data.omop.vocabulary import concept_ids

SPEC = "configs/cohort_omop.yaml"


@pytest.fixture
def ehr(small_ehr, tmp_path):
    """A private copy of the small synthetic EHR to edit."""
    path = tmp_path / "ehr.duckdb"
    shutil.copy(small_ehr[0], path)
    return path


def _sql(path, *statements):
    with connect(f"duckdb:///{path}") as db:
        for s in statements:
            db.execute(s)


def _index_of(path, source_value):
    with connect(f"duckdb:///{path}") as db:
        row = db.query(
            "SELECT p.person_id, MIN(x.d) AS index_date FROM person p JOIN ("
            " SELECT person_id, procedure_date AS d FROM procedure_occurrence"
            f" WHERE procedure_concept_id = {concept_ids()['apheresis']}"
            " UNION ALL SELECT person_id, drug_exposure_start_date FROM drug_exposure"
            f" WHERE drug_concept_id = {concept_ids()['teclistamab']}) x"
            f" ON x.person_id = p.person_id WHERE p.person_source_value = '{source_value}'"
            " GROUP BY p.person_id"
        )
    return int(row["person_id"].iloc[0]), row["index_date"].iloc[0]


def test_lab_one_day_after_time_zero_never_enters(ehr):
    before = build_cohort(f"duckdb:///{ehr}", SPEC).cohort.set_index("patient_id")
    pid, index = _index_of(ehr, "P000001")
    ferritin = concept_ids()["ferritin"]
    emd = concept_ids()["emd"]
    _sql(
        ehr,
        "INSERT INTO measurement (measurement_id, person_id, measurement_concept_id, "
        "measurement_date, measurement_type_concept_id, value_as_number) VALUES "
        f"(99999991, {pid}, {ferritin}, DATE '{index}' + 1, 32817, 123456)",
        "INSERT INTO condition_occurrence (condition_occurrence_id, person_id, "
        "condition_concept_id, condition_start_date, condition_type_concept_id) VALUES "
        f"(99999992, {pid}, {emd}, DATE '{index}' + 1, 32817)",
    )
    after = build_cohort(f"duckdb:///{ehr}", SPEC).cohort.set_index("patient_id")
    assert after.loc["P000001", "ferritin"] != 123456
    assert after.loc["P000001", "ferritin"] == pytest.approx(
        before.loc["P000001", "ferritin"], nan_ok=True
    )
    assert after.loc["P000001", "extramedullary"] == before.loc["P000001", "extramedullary"]
    # the same lab on the index day does enter (the window includes time zero)
    _sql(
        ehr,
        "INSERT INTO measurement (measurement_id, person_id, measurement_concept_id, "
        "measurement_date, measurement_type_concept_id, value_as_number) VALUES "
        f"(99999993, {pid}, {ferritin}, DATE '{index}', 32817, 4321)",
    )
    assert (
        build_cohort(f"duckdb:///{ehr}", SPEC)
        .cohort.set_index("patient_id")
        .loc["P000001", "ferritin"]
        == 4321
    )


def test_missing_table_named(ehr):
    _sql(ehr, "DROP TABLE measurement")
    with pytest.raises(OmopError, match=r"table measurement is missing"):
        build_cohort(f"duckdb:///{ehr}", SPEC)


def test_missing_column_named(ehr):
    _sql(ehr, "ALTER TABLE death DROP COLUMN death_date")
    with pytest.raises(OmopError, match=r"table death lacks column\(s\) death_date"):
        build_cohort(f"duckdb:///{ehr}", SPEC)


def test_concept_set_with_no_matches(ehr, tmp_path):
    spec = yaml.safe_load(open(SPEC))
    spec["concept_sets"]["teclistamab"]["concepts"] = [
        {"vocabulary": "RxNorm", "name": "no such drug"}
    ]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(OmopError) as err:
        build_cohort(f"duckdb:///{ehr}", path)
    text = str(err.value)
    assert "'teclistamab' matched no rows of drug_exposure.drug_concept_id" in text
    assert "no concept with this code in the concept table" in text


def test_optional_codes_without_rows_reported(ehr):
    result = build_cohort(f"duckdb:///{ehr}", SPEC)
    unmatched = {r["concept"] for r in result.concepts.unmatched}
    assert "RxNorm 10432 (thalidomide)" in unmatched  # the synthetic EHR never gives it
    assert any("thalidomide" in n for n in result.notes)


def test_dates_out_of_order_named(ehr):
    pid, _ = _index_of(ehr, "P000002")
    _sql(
        ehr,
        "UPDATE observation_period SET observation_period_end_date = "
        f"observation_period_start_date - 1 WHERE person_id = {pid}",
    )
    with pytest.raises(
        OmopError,
        match=rf"observation_period.observation_period_end_date is "
        rf"before observation_period_start_date: 1 row\(s\), e.g. person_id "
        rf"{pid} \(P000002\)",
    ):
        build_cohort(f"duckdb:///{ehr}", SPEC)


def test_death_before_time_zero_named(ehr):
    pid, index = _index_of(ehr, "P000003")
    _sql(
        ehr,
        f"DELETE FROM death WHERE person_id = {pid}",
        f"INSERT INTO death (person_id, death_date) VALUES ({pid}, DATE '{index}' - 10)",
    )
    with pytest.raises(
        OmopError, match=rf"death.death_date is before time zero.*{pid} \(P000003\)"
    ):
        build_cohort(f"duckdb:///{ehr}", SPEC)


def test_two_decisions_named_or_first(ehr, tmp_path):
    pid, index = _index_of(ehr, "P000001")
    ids = concept_ids()
    _sql(
        ehr,
        "INSERT INTO procedure_occurrence (procedure_occurrence_id, person_id, "
        "procedure_concept_id, procedure_date, procedure_type_concept_id) VALUES "
        f"(99999994, {pid}, {ids['apheresis']}, DATE '{index}' + 40, 32817)",
        "INSERT INTO drug_exposure (drug_exposure_id, person_id, drug_concept_id, "
        "drug_exposure_start_date, drug_exposure_end_date, drug_type_concept_id) VALUES "
        f"(99999995, {pid}, {ids['teclistamab']}, DATE '{index}' + 40, DATE '{index}' + 40, 32817)",
    )
    with pytest.raises(
        OmopError,
        match=rf"two treatment decisions.*procedure_date.*"
        rf"drug_exposure_start_date.*person_id {pid} \(P000001\)",
    ):
        build_cohort(f"duckdb:///{ehr}", SPEC)
    spec = yaml.safe_load(open(SPEC))
    spec["two_decisions"] = "first"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = build_cohort(f"duckdb:///{ehr}", path)
    assert any("decisions for both arms" in n for n in result.notes)
    assert result.cohort.set_index("patient_id").loc["P000001", "treatment"] in ("cart", "tec")


def test_bad_spec_names_key(tmp_path):
    spec = yaml.safe_load(open(SPEC))
    del spec["concept_sets"]["crs"]
    spec["crs_window_days"] = 0
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(OmopError) as err:
        build_cohort("duckdb:///:memory:", path)
    assert "crs_window_days" in str(err.value)


def test_unknown_database_url():
    with pytest.raises(OmopError, match="unknown database"):
        connect("mysql://x")
    with pytest.raises(OmopError, match="no such DuckDB database"):
        build_cohort("duckdb:////nonexistent/ehr.duckdb", SPEC)


def test_not_a_duckdb_file(tmp_path):
    path = tmp_path / "cohort.duckdb"
    path.write_text("patient_id,treatment\nP1,cart\n")
    with pytest.raises(OmopError, match=rf"cannot open DuckDB database {path}"):
        build_cohort(f"duckdb:///{path}", SPEC)


def test_data_cut_censors_and_excludes(ehr, tmp_path):
    full = build_cohort(f"duckdb:///{ehr}", SPEC)
    spec = yaml.safe_load(open(SPEC))
    spec["data_cut"] = "2023-01-01"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    cut = build_cohort(f"duckdb:///{ehr}", path)
    att = cut.attrition
    assert att.n_in - sum(s.excluded for s in att.steps) == att.n_out
    assert att.steps[-1].excluded > 0  # time zero after the cut: not observed
    kept = full.cohort.set_index("patient_id").loc[cut.cohort["patient_id"]]
    # follow-up can only shrink, deaths after the cut become censored, no CRS after the cut
    assert (cut.cohort["os_months"].to_numpy() <= kept["os_months"].to_numpy() + 1e-9).all()
    assert (cut.cohort["death"].to_numpy() <= kept["death"].to_numpy()).all()
    assert (cut.cohort["crs"].to_numpy() <= kept["crs"].to_numpy()).all()
    assert cut.cohort["death"].sum() < kept["death"].sum()


def test_descendants_through_concept_ancestor(ehr):
    """A CDM records clinical drugs, not ingredients: with concept_ancestor the ingredient's
    descendants match, and the cohort is the same as with ingredient-level rows."""
    before = build_cohort(f"duckdb:///{ehr}", SPEC).cohort
    dara = concept_ids()["daratumumab"]
    vial = 2_100_000_001  # a clinical drug under daratumumab
    _sql(
        ehr,
        "INSERT INTO concept VALUES (2100000001, 'daratumumab 20 MG/ML Injectable Solution', "
        "'Drug', 'RxNorm', 'Clinical Drug', 'S', 'local-dara-vial', DATE '1970-01-01', "
        "DATE '2099-12-31', NULL)",
        f"UPDATE drug_exposure SET drug_concept_id = {vial} WHERE drug_concept_id = {dara}",
    )
    blind = build_cohort(f"duckdb:///{ehr}", SPEC)  # no concept_ancestor: the vials are missed
    assert blind.attrition.steps[2].excluded > 2  # daratumumab-only patients look untreated
    assert any("no concept_ancestor table" in n for n in blind.notes)
    _sql(
        ehr,
        "CREATE TABLE concept_ancestor (ancestor_concept_id INTEGER, descendant_concept_id "
        "INTEGER, min_levels_of_separation INTEGER, max_levels_of_separation INTEGER)",
        f"INSERT INTO concept_ancestor VALUES ({dara}, {dara}, 0, 0), ({dara}, {vial}, 1, 1)",
    )
    after = build_cohort(f"duckdb:///{ehr}", SPEC)
    pd.testing.assert_frame_equal(after.cohort, before)
    assert not any("concept_ancestor" in n for n in after.notes)
