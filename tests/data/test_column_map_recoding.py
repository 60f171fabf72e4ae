"""Column maps that recode values, convert lab units, declare a cohort's own ranges, exclude
columns and read decimal commas; and validate's hints that suggest them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from hte.data.column_map import UNIT_FACTORS, ColumnMap, ColumnMapError
from hte.data.load import load_cohort
from hte.data.schema import CohortValidationError, column_notes, validate_cohort


def _problems(df: pd.DataFrame, **kwargs):
    with pytest.raises(CohortValidationError) as info:
        validate_cohort(df, **kwargs)
    return {p.column: p for p in info.value.problems}


def test_values_recode_sex_and_booleans_yaml_style(cohort, tmp_path):
    raw = cohort.copy()
    raw["sex"] = raw["sex"].map({"male": 1, "female": 2})
    raw["prior_asct"] = np.where(cohort["prior_asct"], "Y", "N")
    raw.loc[0, "prior_asct"] = "unknown"
    path = tmp_path / "map.yaml"
    path.write_text(
        'values:\n  sex: {1: male, 2: female}\n  prior_asct: {"Y": true, "N": false, unknown: null}\n',
        encoding="utf-8",
    )
    out = validate_cohort(ColumnMap.from_yaml(path).apply(raw))
    assert out["sex"].tolist() == cohort["sex"].tolist()
    assert pd.isna(out.loc[0, "prior_asct"])
    assert out["prior_asct"].iloc[1:].astype(bool).tolist() == cohort["prior_asct"][1:].tolist()


def test_unquoted_yes_no_keys_match_yes_no_text(cohort):
    raw = cohort.assign(ldh_high=np.where(cohort["ldh_high"], "Yes", "No"))
    # YAML reads `yes: true` as {True: True}; the map matches the words yes/no/y/n as well
    m = ColumnMap.model_validate({"values": {"ldh_high": {True: True, False: False}}})
    out = validate_cohort(m.apply(raw))
    assert out["ldh_high"].tolist() == cohort["ldh_high"].tolist()


def test_values_keyed_by_the_file_name_of_a_renamed_column(cohort):
    raw = cohort.rename(columns={"sex": "SEX"}).assign(
        SEX=cohort["sex"].map({"male": "M", "female": "F"})
    )
    m = ColumnMap(columns={"SEX": "sex"}, values={"SEX": {"M": "male", "F": "female"}})
    assert set(m.values) == {"sex"}
    assert validate_cohort(m.apply(raw))["sex"].tolist() == cohort["sex"].tolist()


@pytest.mark.parametrize(
    ("column", "unit", "factor"),
    [("ferritin", "pmol/L", 1 / 2.247), ("crp", "mg/dL", 10.0), ("crcl", "mL/s", 60.0)],
)
def test_units_convert_to_the_schema_unit(cohort, column, unit, factor):
    raw = cohort.assign(**{column: cohort[column] / factor})  # the lab as the other unit has it
    out = validate_cohort(ColumnMap(units={column: unit}).apply(raw))
    np.testing.assert_allclose(out[column], cohort[column], rtol=1e-12)
    assert UNIT_FACTORS[column][unit.casefold()] == pytest.approx(factor)


def test_published_unit_factors():
    # ferritin 1 ug/L = 2.247 pmol/L (MW ~ 450 kDa per 24-mer); CRP 1 mg/L = 9.524 nmol/L
    assert 1000.0 * UNIT_FACTORS["ferritin"]["pmol/l"] == pytest.approx(445.0, abs=0.1)
    assert 95.24 * UNIT_FACTORS["crp"]["nmol/l"] == pytest.approx(10.0, abs=1e-3)


@pytest.mark.parametrize(
    ("units", "message"),
    [
        ({"ferritin": "furlongs"}, "unknown unit 'furlongs'"),
        ({"albumin": "g/dL"}, "no named units for albumin"),
        ({"ferritin": 2.0}, "give the unit by name"),
        ({"albumin": -1.0}, "a factor must be a finite number > 0"),
    ],
)
def test_bad_units_are_refused(units, message):
    with pytest.raises(ValidationError, match=message):
        ColumnMap(units=units)


def test_declared_ranges_replace_the_schema_defaults(cohort):
    young = cohort.copy()
    young.loc[[3, 7], "age"] = [13.0, 16.0]
    assert "age must be 18-110" in str(_problems(young)["age"])
    m = ColumnMap.model_validate({"ranges": {"age": {"min": 12, "max": 90}}})
    out = validate_cohort(m.apply(young), ranges=m.range_bounds())
    assert out.loc[3, "age"] == 13.0
    young.loc[5, "age"] = 95.0
    assert "age must be 12-90 (row 6)" in str(_problems(young, ranges=m.range_bounds())["age"])


def test_a_range_for_a_new_column_makes_it_a_checked_number(cohort):
    df = cohort.assign(cd4=np.linspace(10, 500, len(cohort)))
    df.loc[2, "cd4"] = -5.0
    assert "cd4 must be 0-5000 (row 3)" in str(_problems(df, ranges={"cd4": (0, 5000)})["cd4"])


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"os_months": [0, 10]}, "fixed by the schema"),
        ({"sex": [0, 1]}, "not a number"),
        ({"age": [90, 18]}, "min 90.0 is above max 18.0"),
        ({"age": {"low": 1}}, "unknown key"),
    ],
)
def test_bad_ranges_are_refused(ranges, message):
    with pytest.raises(ValidationError, match=message):
        ColumnMap.model_validate({"ranges": ranges})


def test_exclude_drops_a_free_text_column_that_validation_refuses(cohort):
    df = cohort.assign(notes=[f"free text {i}" for i in range(len(cohort))])
    assert "too many categories" in str(_problems(df)["notes"])
    out = validate_cohort(ColumnMap(exclude=["notes"]).apply(df))
    assert "notes" not in out.columns and len(out) == len(df)
    assert any(
        "exclude" in n and "notes" in n
        for n in column_notes(out.columns, ColumnMap(exclude=["notes"]))
    )


def test_decimal_commas_read_when_declared(cohort):
    df = cohort.astype({"ferritin": object})
    df["ferritin"] = [f"{v:.2f}".replace(".", ",") for v in cohort["ferritin"]]
    df["albumin"] = [f"{3 + i / 100:.2f}".replace(".", ",") for i in range(len(df))]
    problems = _problems(df)
    assert "decimal comma" in str(problems["ferritin"]) and "decimal comma" in str(
        problems["albumin"]
    )
    out = validate_cohort(ColumnMap(decimal=",").apply(df))
    np.testing.assert_allclose(out["ferritin"], cohort["ferritin"].round(2))
    assert out["albumin"].dtype == float


def test_rename_and_recode_hints(cohort):
    df = cohort.rename(columns={"age": "Age", "ecog": "ECOG"})
    df["sex"] = cohort["sex"].map({"male": "M", "female": "F"})
    problems = _problems(df)
    assert problems["age"].hint == "did you mean 'Age'? map it: columns: {Age: age}"
    assert "values: {sex: {F: female, M: male}}" in problems["sex"].rule
    fine = cohort.rename(columns={"ecog": "ECOG"})
    assert any("did you mean 'ECOG'" in n for n in column_notes(fine.columns))


def test_load_cohort_applies_map_ranges_and_max_levels(cohort_factory, tmp_path):
    cohort = cohort_factory(200)
    df = cohort.assign(site=[f"s{i % 55}" for i in range(len(cohort))])  # 55 levels > 50
    df.loc[0, "age"] = 15.0
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    with pytest.raises(CohortValidationError):
        load_cohort(path)
    m = ColumnMap.model_validate({"ranges": {"age": [12, 110]}, "max_levels": 60})
    assert len(load_cohort(path, m)) == len(df)


def test_map_errors_name_the_key(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("units: {ferritin: furlongs}\n", encoding="utf-8")
    with pytest.raises(ColumnMapError, match=r"units\.ferritin: unknown unit 'furlongs'"):
        ColumnMap.from_yaml(path)
