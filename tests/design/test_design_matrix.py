"""Design matrix: covariate choice, encodings, transform consistency, unseen levels, missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte.design.design_matrix import DesignEncoder, build_design_matrix, treatment_array


def _cohort() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["p1", "p2", "p3", "p4", "p5"],
            "treatment": ["cart", "tec", "tec", "cart", "tec"],
            "os_months": [10.0, 3.0, 7.5, 20.0, 1.0],
            "death": [True, True, False, False, True],
            "crs": [True, False, False, True, False],
            "infusion_day": [50.0, np.nan, np.nan, 60.0, np.nan],
            "true_cate_rmst": [1.0, 2, 3, 4, 5],
            "age": [60.0, 72.0, 55.0, 68.0, 80.0],
            "ecog": pd.array([0, 1, 2, 1, 0], dtype="Int64"),
            "prior_asct": pd.array([True, False, True, True, False], dtype="boolean"),
            "sex": ["male", "female", "male", "female", "female"],
            "race": ["white", "black", "asian", "white", "white"],
        }
    )


def test_selects_covariates_and_encodes():
    dm = build_design_matrix(_cohort())
    assert dm.feature_names == [
        "age",
        "ecog",
        "prior_asct",
        "sex_male",
        "race_black",
        "race_white",
    ]  # reference levels (first in sorted order): sex female, race asian
    for never in ("patient_id", "treatment", "os_months", "death", "crs", "infusion_day"):
        assert never not in dm.X.columns
    assert all(dtype == np.float64 for dtype in dm.X.dtypes)
    np.testing.assert_array_equal(dm.X["prior_asct"], [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(dm.X["sex_male"], [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(dm.X["race_white"], [1, 0, 0, 1, 1])
    np.testing.assert_array_equal(dm.X["race_black"], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(dm.X["ecog"], [0, 1, 2, 1, 0])
    assert dm.missing_columns == [] and not dm.has_missing


def test_transform_new_patients_matches_fit():
    cohort = _cohort()
    dm = build_design_matrix(cohort, covariates=["age", "sex", "race"])
    # One new patient whose levels cover only part of the fitted ones: same columns, same coding.
    new = pd.DataFrame({"age": [66.0], "sex": ["male"], "race": ["black"], "extra": [1]})
    Xn = dm.transform(new)
    assert list(Xn.columns) == dm.feature_names
    np.testing.assert_array_equal(Xn.iloc[0], [66.0, 1.0, 1.0, 0.0])
    pd.testing.assert_frame_equal(dm.transform(cohort), dm.X)


def test_unseen_level_and_missing_column_errors():
    dm = build_design_matrix(_cohort(), covariates=["age", "race"])
    new = pd.DataFrame({"age": [66.0, 70.0], "race": ["white", "martian"]})
    with pytest.raises(ValueError, match=r"'race' has level\(s\) \['martian'\] in rows \[2\]"):
        dm.transform(new)
    with pytest.raises(ValueError, match=r"lacks covariates the encoding needs: \['race'\]"):
        dm.transform(new[["age"]])


def test_forbidden_and_unknown_covariates():
    with pytest.raises(ValueError, match=r"\['os_months', 'true_cate_rmst'\] cannot be covariates"):
        build_design_matrix(_cohort(), covariates=["age", "os_months", "true_cate_rmst"])
    with pytest.raises(ValueError, match=r"\['weight'\] are not columns"):
        build_design_matrix(_cohort(), covariates=["age", "weight"])
    with pytest.raises(ValueError, match="impute"):
        build_design_matrix(_cohort(), impute="mean")


def test_missing_values_kept_and_reported():
    cohort = _cohort()
    cohort["age"] = [60.0, np.nan, 55.0, 68.0, 80.0]
    cohort["prior_asct"] = pd.array([True, pd.NA, True, True, False], dtype="boolean")
    cohort["race"] = ["white", None, "asian", "white", "white"]
    dm = build_design_matrix(cohort)
    assert dm.missing_columns == ["age", "prior_asct", "race"]
    assert dm.has_missing and "kept as NaN" in dm.describe_missing()
    assert np.isnan(dm.X.loc[1, "age"]) and np.isnan(dm.X.loc[1, "prior_asct"])
    assert np.isnan(dm.X.loc[1, "race_white"])
    assert dm.imputed == {}


def test_median_imputation_adds_indicators():
    cohort = _cohort()
    cohort["age"] = [60.0, np.nan, 55.0, 68.0, 80.0]  # median of observed = 64
    cohort["race"] = ["white", "black", None, "white", "white"]
    dm = build_design_matrix(cohort, impute="median")
    assert not dm.has_missing
    assert dm.feature_names == [
        "age",
        "age_missing",
        "ecog",
        "prior_asct",
        "sex_male",
        "race_white",
        "race_missing",
    ]
    assert dm.X.loc[1, "age"] == 64.0
    np.testing.assert_array_equal(dm.X["age_missing"], [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(dm.X["race_missing"], [0, 0, 1, 0, 0])
    assert dm.X.loc[2, "race_white"] == 0.0
    assert dm.imputed["age"] == 64.0 and np.isnan(dm.imputed["race"])
    # New patient: fit-time median, not the new data's.
    new = cohort.iloc[[1, 2]].copy()
    new["age"] = [np.nan, 90.0]
    np.testing.assert_array_equal(dm.transform(new)["age"], [64.0, 90.0])
    # A column that had no missing values at fit has no learned imputation: refuse, never guess.
    new["ecog"] = pd.array([pd.NA, 1], dtype="Int64")
    with pytest.raises(ValueError, match="'ecog' has missing values in rows \\[1\\]"):
        dm.transform(new)


def test_columns_missing_together_share_one_indicator():
    # Two results from one test, missing for the same patients: one indicator, not two identical
    # columns (a Cox fit on those is singular and SHAP splits one fact's credit between them).
    cohort = _cohort()
    cohort["age"] = [60.0, np.nan, 55.0, np.nan, 80.0]
    cohort["race"] = ["white", None, "asian", None, "white"]
    cohort["sex"] = ["male", "female", None, "female", "female"]  # missing elsewhere: its own
    dm = build_design_matrix(cohort, impute="median")
    assert dm.feature_names == [
        "age",
        "age_missing",
        "ecog",
        "prior_asct",
        "sex_male",
        "sex_missing",
        "race_white",
    ]
    assert dm.encoder.shared_indicators_ == {"age_missing": ("age", "race")}
    assert "age_missing stands for age, race" in dm.describe_missing()
    np.testing.assert_array_equal(dm.X["age_missing"], [0, 1, 0, 1, 0])
    # A new patient missing only one of the pair still flags the shared indicator.
    new = cohort.iloc[[0, 2, 4]].copy()
    new["age"] = [np.nan, 55.0, 80.0]
    new["race"] = ["white", "asian", None]
    out = dm.transform(new)
    np.testing.assert_array_equal(out["age_missing"], [1, 0, 1])
    assert list(out.columns) == dm.feature_names


def test_reference_level_override_and_encoder_api():
    enc = DesignEncoder(["sex"], reference_levels={"sex": "male"}).fit(_cohort())
    assert enc.feature_names_ == ["sex_female"]
    with pytest.raises(RuntimeError, match="not fitted"):
        DesignEncoder().transform(_cohort())
    with pytest.raises(ValueError, match="reference level 'other'"):
        DesignEncoder(["sex"], reference_levels={"sex": "other"}).fit(_cohort())


def test_treatment_array():
    np.testing.assert_array_equal(treatment_array(_cohort()), [1, 0, 0, 1, 0])
    bad = _cohort()
    bad.loc[2, "treatment"] = "CAR-T"
    with pytest.raises(ValueError, match=r"rows \[3\] have \['CAR-T'\]"):
        treatment_array(bad)
