"""The cohort schema: valid cohorts pass whole with canonical dtypes; each rule catches its breakage,
names the column and the rows; every problem is reported at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte.data.columns import DAYS_PER_MONTH
from hte.data.schema import TABLE, CohortValidationError, Problem, validate_cohort


def problems_of(df: pd.DataFrame) -> list[Problem]:
    with pytest.raises(CohortValidationError) as info:
        validate_cohort(df)
    return info.value.problems


def only_problem(df: pd.DataFrame) -> Problem:
    problems = problems_of(df)
    assert len(problems) == 1, problems
    return problems[0]


def with_values(df: pd.DataFrame, column: str, rows: list[int], value: object) -> pd.DataFrame:
    """A copy with `value` written into 0-based `rows` of `column` (as object if needed)."""
    out = df.copy()
    if not isinstance(value, type(out[column].iloc[0])) or out[column].dtype == bool:
        out[column] = out[column].astype(object)
    out.loc[rows, column] = value
    return out


def test_valid_cohort_keeps_every_row_and_gets_canonical_dtypes(cohort):
    out = validate_cohort(cohort)
    assert len(out) == len(cohort)
    assert list(out.columns) == list(cohort.columns)  # true_* and all covariates kept
    assert out["treatment"].tolist() == cohort["treatment"].tolist()
    assert out["death"].dtype == bool and out["crs"].dtype == bool
    assert out["crs_grade"].dtype == "Int64" and out["ecog"].dtype == "Int64"
    assert out["os_months"].dtype == float and out["age"].dtype == float
    assert out["prior_bcma"].dtype == bool
    np.testing.assert_array_equal(out["os_months"], cohort["os_months"])


def test_text_booleans_and_numeric_text_are_read(cohort):
    df = cohort.astype({"death": object, "crs": object, "age": object, "gain_1q": object})
    df["death"] = np.where(cohort["death"], "Yes", "no")
    df["crs"] = np.where(cohort["crs"], 1, 0)
    df["gain_1q"] = np.where(cohort["gain_1q"], "TRUE", "False")
    df["age"] = cohort["age"].map(str)
    df.loc[0, "gain_1q"] = None  # optional covariate: missing allowed, nullable boolean
    out = validate_cohort(df)
    assert out["death"].tolist() == cohort["death"].tolist()
    assert out["crs"].tolist() == cohort["crs"].tolist()
    assert out["gain_1q"].dtype == "boolean" and pd.isna(out["gain_1q"].iloc[0])
    np.testing.assert_allclose(out["age"], cohort["age"])


def test_treatment_case_is_ignored_but_index_is_reset(cohort):
    df = cohort.assign(treatment=cohort["treatment"].str.upper()).set_index(
        pd.Index(range(100, 100 + len(cohort)))
    )
    out = validate_cohort(df)
    assert set(out["treatment"]) == {"cart", "tec"}
    assert out.index.tolist() == list(range(len(cohort)))


@pytest.mark.parametrize(
    ("column", "rows", "value", "rule"),
    [
        ("os_months", [2], -1.5, "os_months must be 0-1200"),
        ("os_months", [3, 7], 1e6, "os_months must be 0-1200"),
        ("ferritin", [4], 1e300, "ferritin must be 0-1000000"),
        ("age", [4], 15.0, "age must be 18-110"),
        ("age", [5, 6], "old", "age must be a finite number (found 'old')"),
        ("age", [1], np.nan, "age must not be missing"),
        ("ecog", [0], 5, "ecog must be 0-4"),
        ("ecog", [0], 1.5, "ecog must be a whole number (found '1.5')"),
        ("iss_stage", [9], 0, "iss_stage must be 1-3"),
        ("prior_lines", [9], -1, "prior_lines must be 0-30"),
        ("bm_plasma_pct", [2], 120.0, "bm_plasma_pct must be 0-100"),
        ("ferritin", [2], -3.0, "ferritin must be 0-1000000"),
        ("sex", [8], "M", "sex must be female or male (found 'M')"),
        ("death", [10], "maybe", "death must be boolean (True/False, 1/0, yes/no) (found 'maybe')"),
        ("crs", [11], None, "crs must not be missing"),
        ("treatment", [12, 13], "CAR-T", "treatment must be cart or tec (found 'CAR-T')"),
    ],
)
def test_each_column_rule_names_column_rule_and_rows(cohort, column, rows, value, rule):
    problem = only_problem(with_values(cohort, column, rows, value))
    assert problem.column == column
    assert problem.rule.startswith(rule)
    assert problem.rows == [r + 1 for r in rows]  # 1-based data rows
    assert problem.n_rows == len(rows)


def test_duplicate_ids_list_every_copy(cohort):
    df = with_values(cohort, "patient_id", [4, 9], cohort.loc[0, "patient_id"])
    problem = only_problem(df)
    assert problem.column == "patient_id"
    assert "must be unique" in problem.rule and "'P000001'" in problem.rule
    assert problem.rows == [1, 5, 10]


def test_example_rows_stop_at_five_but_count_all(cohort):
    problem = only_problem(with_values(cohort, "os_months", list(range(12)), -1.0))
    assert problem.rows == [1, 2, 3, 4, 5] and problem.n_rows == 12


def test_crs_grade_must_agree_with_crs(cohort):
    df = cohort.copy()
    df["crs_grade"] = df["crs_grade"].astype("Int64")
    cart_no_crs = df.index[~df["crs"]][0]
    with_crs = df.index[df["crs"]][0]
    df.loc[cart_no_crs, "crs_grade"] = 2  # graded CRS but crs False
    df.loc[with_crs, "crs_grade"] = 0  # crs True but grade 0
    df.loc[df.index[df["crs"]][1], "crs_grade"] = pd.NA  # grade not recorded: allowed
    problem = only_problem(df)
    assert problem.column == "crs_grade"
    assert problem.rule == "crs_grade must be >= 1 exactly when crs is True"
    assert problem.rows == sorted([cart_no_crs + 1, with_crs + 1])


def test_infusion_day_only_on_cart_rows_and_before_end_of_follow_up(cohort):
    df = cohort.copy()
    tec_row = int(df.index[df["treatment"] == "tec"][0])
    cart_row = int(df.index[df["infusion_day"].notna()][0])
    df.loc[tec_row, "infusion_day"] = 30.0
    df.loc[cart_row, "infusion_day"] = df.loc[cart_row, "os_months"] * DAYS_PER_MONTH + 1.0
    problems = problems_of(df)
    assert [(p.column, p.rows) for p in problems] == [
        ("infusion_day", [tec_row + 1]),
        ("infusion_day", [cart_row + 1]),
    ]
    assert "missing on tec rows" in problems[0].rule
    assert "must not exceed os_months" in problems[1].rule


def test_infusion_on_the_last_day_of_follow_up_is_allowed(cohort):
    df = cohort.copy()
    row = int(df.index[df["infusion_day"].notna()][0])
    df.loc[row, "infusion_day"] = df.loc[row, "os_months"] * DAYS_PER_MONTH
    assert len(validate_cohort(df)) == len(df)


@pytest.mark.parametrize("column", ["patient_id", "treatment", "age"])
def test_missing_required_column(cohort, column):
    problem = only_problem(cohort.drop(columns=column))
    assert problem == Problem(column, f"required column {column} is missing", [], 0)


def test_os_pair_needs_both_columns(cohort):
    problem = only_problem(cohort.drop(columns="death"))
    assert problem.column == "death" and "OS needs both" in problem.rule


def test_no_outcome_at_all(cohort):
    problem = only_problem(cohort.drop(columns=["os_months", "death", "crs", "crs_grade"]))
    assert problem.column == TABLE and "no outcome" in problem.rule


def test_os_only_and_crs_only_cohorts_are_valid(cohort):
    os_only = cohort.drop(columns=["crs", "crs_grade"])
    crs_only = cohort.drop(columns=["os_months", "death", "infusion_day"])
    assert len(validate_cohort(os_only)) == len(validate_cohort(crs_only)) == len(cohort)


def test_one_arm_and_no_deaths_are_table_problems(cohort):
    problems = problems_of(cohort.assign(treatment="cart", infusion_day=np.nan, death=False))
    assert [p.column for p in problems] == ["treatment", "death"]
    assert "only one arm" in problems[0].rule and "50 cart, 0 tec" in problems[0].rule
    assert "no deaths at all" in problems[1].rule
    assert all(p.n_rows == 0 for p in problems)


def test_no_deaths_is_fine_without_os(cohort):
    crs_only = cohort.drop(columns=["os_months", "infusion_day"]).assign(death=False)
    crs_only = crs_only.drop(columns="death")
    assert len(validate_cohort(crs_only)) == len(cohort)


def test_empty_cohort(cohort):
    problem = problems_of(cohort.iloc[:0])[0]
    assert problem.column == TABLE and problem.rule == "cohort has no rows"


def test_every_problem_is_collected_at_once(cohort):
    df = with_values(cohort, "age", [2], "n/a")
    df = with_values(df, "os_months", [5], -2.0)
    df = with_values(df, "treatment", [7], "CAR-T")
    df = with_values(df, "ecog", [9], 7)
    problems = problems_of(df)
    assert {(p.column, tuple(p.rows)) for p in problems} == {
        ("age", (3,)),
        ("os_months", (6,)),
        ("treatment", (8,)),
        ("ecog", (10,)),
    }
    message = str(CohortValidationError(problems))
    assert "4 problem(s)" in message and "os_months must be 0-1200 (row 6)" in message


def test_unreadable_value_is_not_reported_again_as_missing(cohort):
    df = with_values(cohort, "age", [2], "abc")
    df.loc[4, "age"] = None
    problems = problems_of(df)
    assert [(p.rule.split(" (")[0], p.rows) for p in problems] == [
        ("age must be a finite number", [3]),
        ("age must not be missing", [5]),
    ]


def test_validation_never_mutates_the_input(cohort):
    before = cohort.copy()
    validate_cohort(cohort)
    pd.testing.assert_frame_equal(cohort, before)
