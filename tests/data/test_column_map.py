"""Column maps: renames, treatment codes compared as text, follow-up units converted to months."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte.data.column_map import ColumnMap, ColumnMapError
from hte.data.columns import DAYS_PER_MONTH
from hte.data.schema import CohortValidationError, validate_cohort


@pytest.fixture
def export(cohort) -> pd.DataFrame:
    """The fixture cohort as a user's export might name it."""
    return cohort.rename(
        columns={"patient_id": "ID", "treatment": "arm", "os_months": "os_time", "death": "dead"}
    )


RENAMES = {"ID": "patient_id", "arm": "treatment", "os_time": "os_months", "dead": "death"}


@pytest.mark.parametrize(
    ("codes", "as_data"),
    [
        ({1: "cart", 0: "tec"}, {"cart": 1, "tec": 0}),  # ints in YAML and in the file
        ({"1": "cart", "0": "tec"}, {"cart": 1.0, "tec": 0.0}),  # text codes, float column
        ({"CAR-T": "cart", "Tec": "tec"}, {"cart": "car-t ", "tec": "TEC"}),  # case, spaces
    ],
)
def test_treatment_codes_map_to_cart_and_tec(export, codes, as_data):
    raw = export.copy()
    expected = raw["arm"].copy()
    raw["arm"] = raw["arm"].map(as_data)
    out = ColumnMap(columns=RENAMES, treatment_codes=codes).apply(raw)
    assert out["treatment"].tolist() == expected.tolist()
    assert len(validate_cohort(out)) == len(raw)


def test_unmapped_codes_pass_through_and_fail_validation(export):
    raw = export.copy()
    raw["arm"] = raw["arm"].map({"cart": "CAR-T", "tec": "Tec"})
    raw.loc[3, "arm"] = "placebo"
    out = ColumnMap(columns=RENAMES, treatment_codes={"CAR-T": "cart", "Tec": "tec"}).apply(raw)
    assert out.loc[3, "treatment"] == "placebo"
    with pytest.raises(CohortValidationError) as info:
        validate_cohort(out)
    (problem,) = info.value.problems
    assert problem.column == "treatment" and problem.rows == [4] and "'placebo'" in problem.rule


@pytest.mark.parametrize(
    ("unit", "days_per_unit"), [("days", 1.0), ("weeks", 7.0), ("years", 365.25)]
)
def test_follow_up_converted_to_months(export, unit, days_per_unit):
    raw = export.copy()
    months = raw["os_time"].copy()
    raw["os_time"] = months * DAYS_PER_MONTH / days_per_unit  # the same follow-up in `unit`
    out = ColumnMap(columns=RENAMES, time_unit=unit).apply(raw)
    np.testing.assert_allclose(out["os_months"], months, rtol=1e-12)  # float round-off only
    np.testing.assert_array_equal(out["infusion_day"], raw["infusion_day"])  # stays in days


def test_renamed_column_missing_from_file_is_named(export):
    cmap = ColumnMap(columns={**RENAMES, "Age_years": "age"})
    with pytest.raises(CohortValidationError) as info:
        cmap.apply(export.copy().drop(columns="age"))
    (problem,) = info.value.problems
    assert problem.column == "Age_years" and "not in the file" in problem.rule


def test_rename_onto_an_existing_column_is_refused(export):
    raw = export.copy().assign(age_at_dx=60.0)
    with pytest.raises(CohortValidationError, match="which the file has too"):
        ColumnMap(columns={**RENAMES, "age_at_dx": "age"}).apply(raw)


def test_apply_keeps_rows_and_leaves_input_alone(export):
    raw = export.copy()
    before = raw.copy()
    out = ColumnMap(columns=RENAMES, time_unit="days").apply(raw)
    assert len(out) == len(raw)
    pd.testing.assert_frame_equal(raw, before)


def test_from_yaml_reads_int_keys_and_units(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(
        "columns:\n  ID: patient_id\ntreatment_codes:\n  1: cart\n  0: tec\ntime_unit: weeks\n"
    )
    cmap = ColumnMap.from_yaml(path)
    assert cmap.treatment_codes == {"1": "cart", "0": "tec"}
    assert cmap.columns == {"ID": "patient_id"} and cmap.time_unit == "weeks"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("colums:\n  ID: patient_id\n", "colums"),
        ("time_unit: fortnights\n", "time_unit"),
        ("treatment_codes:\n  1: chemo\n", "treatment_codes.1"),
        ("columns:\n  a: age\n  b: age\n", "several columns are renamed to age"),
        ("- just\n- a list\n", "must be a mapping"),
        ("columns: [unclosed\n", "not valid YAML"),
    ],
)
def test_from_yaml_errors_name_the_bad_key(tmp_path, text, named):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(ColumnMapError, match=named.replace(".", r"\.")):
        ColumnMap.from_yaml(path)


def test_from_yaml_missing_file(tmp_path):
    with pytest.raises(ColumnMapError, match="cannot read column map"):
        ColumnMap.from_yaml(tmp_path / "nope.yaml")
