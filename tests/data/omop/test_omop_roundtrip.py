"""synthesize -> build gives back the simulated cohort, with every documented loss counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte.data.columns import DAYS_PER_MONTH
from hte.data.omop.build import build_cohort
from hte.data.simulate import simulate_cohort

SPEC = "configs/cohort_omop.yaml"
N_SMALL, SEED = 400, 3  # as the small_ehr fixture (conftest.py)
EXACT = [
    "treatment",
    "death",
    "age",
    "sex",
    "race",
    "prior_lines",
    "extramedullary",
    "prior_asct",
    "penta_refractory",
    "prior_bcma",
    "rapid_progression",
    "years_since_diagnosis",
]
LABS = ["ferritin", "crp", "crcl", "ecog", "bm_plasma_pct"]


@pytest.fixture(scope="module")
def built(small_ehr):
    path, synthesis = small_ehr
    return build_cohort(f"duckdb:///{path}", SPEC), synthesis


@pytest.fixture(scope="module")
def sim():
    return simulate_cohort(N_SMALL, SEED, "default")


def test_same_patients_and_arms(built, sim):
    result, _ = built
    cohort = result.cohort
    assert list(cohort["patient_id"]) == list(sim["patient_id"])
    assert (cohort["treatment"].to_numpy() == sim["treatment"].to_numpy()).all()


def test_attrition_counts_the_ineligible_and_sums(built):
    result, synthesis = built
    a = result.attrition
    assert a.n_in == N_SMALL + sum(synthesis.n_ineligible.values())
    assert a.n_out == N_SMALL
    assert a.n_in - sum(s.excluded for s in a.steps) == a.n_out
    # each planted ineligible group is excluded at its own criterion, in order
    assert [s.excluded for s in a.steps] == [2, 2, 2, 2, 2, 0]


def test_covariates_equal_where_held(built, sim):
    cohort = built[0].cohort
    for col in EXACT:
        a, b = cohort[col].astype(object).to_numpy(), sim[col].astype(object).to_numpy()
        assert (a == b).all(), f"{col}: {np.flatnonzero(a != b)[:5]}"


def test_follow_up_within_a_day(built, sim):
    cohort = built[0].cohort
    diff = np.abs(cohort["os_months"] - sim["os_months"]) * DAYS_PER_MONTH
    assert diff.max() <= 1.0
    assert (cohort["infusion_day"].isna() == sim["infusion_day"].isna()).all()
    inf = cohort["infusion_day"].notna()
    assert np.abs(cohort.loc[inf, "infusion_day"] - sim.loc[inf, "infusion_day"]).max() <= 0.5


@pytest.mark.parametrize("lab", [*LABS, "ldh"])
def test_labs_equal_or_counted_as_lost(built, sim, lab):
    result, synthesis = built
    cohort = result.cohort
    col, truth = ("ldh_high", sim["ldh_high"]) if lab == "ldh" else (lab, sim[lab])
    held = cohort[col].notna().to_numpy()
    assert (cohort.loc[held, col].astype(float).to_numpy() == truth[held].astype(float)).all()
    lost = synthesis.losses[f"{lab}_missing"] + synthesis.losses[f"{lab}_stale"]
    assert int((~held).sum()) == lost


@pytest.mark.parametrize("col", ["iss_stage", "high_risk_cytogenetics", "gain_1q"])
def test_history_covariates(built, sim, col):
    result, synthesis = built
    cohort = result.cohort
    held = cohort[col].notna().to_numpy()
    assert (
        cohort.loc[held, col].astype(float).to_numpy() == sim.loc[held, col].astype(float)
    ).all()
    assert int((~held).sum()) == synthesis.losses[f"{col}_missing"]


def test_crs_under_recorded_never_invented(built, sim):
    result, synthesis = built
    built_crs, true_crs = result.cohort["crs"].to_numpy(), sim["crs"].to_numpy()
    assert not (built_crs & ~true_crs).any()  # no CRS the patient did not have
    lost = synthesis.losses["crs_not_observable"] + synthesis.losses["crs_not_recorded"]
    assert int((true_crs & ~built_crs).sum()) == lost
    assert "crs_grade" not in result.cohort.columns  # the EHR carries no grade


def test_truth_file_keyed_by_person(small_ehr, sim):
    _, synthesis = small_ehr
    truth = pd.read_parquet(synthesis.truth_path)
    assert list(truth["person_id"]) == list(range(1, N_SMALL + 1))
    assert np.allclose(truth["true_cate_rmst24"], sim["true_cate_rmst24"])


def test_build_is_deterministic(small_ehr, built):
    path, _ = small_ehr
    again = build_cohort(f"duckdb:///{path}", SPEC)
    pd.testing.assert_frame_equal(again.cohort, built[0].cohort)
    assert again.summary() == built[0].summary()
