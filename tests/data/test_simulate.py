"""The synthetic cohort: reproducibility, schema, exact truth against Monte Carlo, scenarios and the
directions of the true effect modification."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from hte.data.columns import (
    BOOLEAN_COVARIATES,
    CONTINUOUS_COVARIATES,
    DAYS_PER_MONTH,
    INTEGER_COVARIATES,
    NAMED_COVARIATES,
)
from hte.data.simulate import (
    SCENARIOS,
    draw_potential_outcomes,
    simulate_cohort,
    true_effects,
    true_survival_curves,
    write_cohort,
)
from hte.data.simulation_params import SCENARIO_DESCRIPTIONS, scenario_params

TRUE_COLUMNS = (
    "true_os_months_cart",
    "true_os_months_tec",
    "true_surv12_cart",
    "true_surv12_tec",
    "true_cate_surv12",
    "true_rmst24_cart",
    "true_rmst24_tec",
    "true_cate_rmst24",
    "true_crs_prob_cart",
    "true_crs_prob_tec",
    "true_cate_crs",
    "true_crs_g3_prob_cart",
    "true_crs_g3_prob_tec",
    "true_cate_crs_g3",
    "true_propensity",
)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return simulate_cohort(n=4000, seed=11)


# -------------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_byte_identical_csv_and_other_seed_differs(tmp_path):
    paths = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        write_cohort(simulate_cohort(n=300, seed=seed), path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_parquet_is_reproducible_and_round_trips(tmp_path):
    df = simulate_cohort(n=200, seed=3, scenario="heavy_censoring")
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_cohort(df, a)
    write_cohort(df, b)
    assert a.read_bytes() == b.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(a), df)


def test_unknown_file_type_and_bad_arguments_are_clear_errors(tmp_path):
    df = simulate_cohort(n=20, seed=1)
    with pytest.raises(ValueError, match=r"\.csv or \.parquet"):
        write_cohort(df, tmp_path / "cohort.xlsx")
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        simulate_cohort(n=20, seed=1, scenario="nope")
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate_cohort(n=0, seed=1)


def test_scenarios_constant_matches_parameter_registry():
    assert SCENARIOS == tuple(SCENARIO_DESCRIPTIONS)
    assert {
        "default",
        "null_effect",
        "strong_confounding",
        "poor_overlap",
        "heavy_censoring",
        "no_manufacturing_delay",
        "short_follow_up",
    } <= set(SCENARIOS)


def test_short_follow_up_scenario_gives_about_a_year():
    """Accrual over 12 months, data cut at 18: follow-up between 6 and 18 months for everyone
    not dead or lost (uniform entry, so the median potential follow-up is 12 months)."""
    df = simulate_cohort(n=800, seed=4, scenario="short_follow_up")
    censored = df["death"] == 0
    assert df["os_months"].max() <= 18.0
    alive_at_cut = df.loc[censored, "os_months"]
    assert alive_at_cut.quantile(0.5) == pytest.approx(12.0, abs=1.5)  # ~ +-3 SE of a median


# -------------------------------------------------------------------------------- schema


def test_columns_types_and_rules(cohort):
    df = cohort
    assert df["patient_id"].iloc[0] == "P000001"
    assert df["patient_id"].is_unique
    assert set(df["treatment"]) == {"cart", "tec"}
    assert (df["os_months"] > 0).all()
    assert df["death"].dtype == bool and df["crs"].dtype == bool
    assert df["crs_grade"].dtype == np.int64
    assert df["crs_grade"].between(0, 5).all()
    assert ((df["crs_grade"] == 0) == ~df["crs"]).all()
    on_tec = df["treatment"] == "tec"
    assert df.loc[on_tec, "infusion_day"].isna().all()
    inf = df["infusion_day"].notna()
    assert (df.loc[inf, "infusion_day"] <= df.loc[inf, "os_months"] * DAYS_PER_MONTH).all()
    assert (df.loc[inf, "infusion_day"] >= 0).all()
    # tec patients never have CAR-T CRS from an infusion; never-infused CAR-T patients have no CRS
    never = (df["treatment"] == "cart") & ~inf
    assert not df.loc[never, "crs"].any()
    for col in NAMED_COVARIATES:
        assert col in df.columns, col
        assert df[col].notna().all(), col
    for col in BOOLEAN_COVARIATES:
        assert df[col].dtype == bool, col
    for col in INTEGER_COVARIATES:
        assert df[col].dtype == np.int64, col
    for col in CONTINUOUS_COVARIATES:
        assert df[col].dtype == np.float64, col
    assert set(df["sex"]) == {"female", "male"}
    assert set(df["race"]) <= {"white", "black", "asian", "other"}
    assert df["ecog"].between(0, 4).all() and df["iss_stage"].between(1, 3).all()
    assert df["bm_plasma_pct"].between(0, 100).all()
    assert (df[["ferritin", "crp", "crcl", "years_since_diagnosis"]] >= 0).all().all()
    for col in TRUE_COLUMNS:
        assert df[col].dtype == np.float64, col
        assert df[col].notna().all(), col


def test_true_columns_are_consistent(cohort):
    df = cohort
    np.testing.assert_allclose(
        df["true_cate_surv12"], df["true_surv12_cart"] - df["true_surv12_tec"]
    )
    np.testing.assert_allclose(
        df["true_cate_rmst24"], df["true_rmst24_cart"] - df["true_rmst24_tec"]
    )
    np.testing.assert_allclose(
        df["true_cate_crs"], df["true_crs_prob_cart"] - df["true_crs_prob_tec"]
    )
    assert (df["true_rmst24_cart"].between(0, 24)).all()
    assert (df["true_crs_g3_prob_cart"] <= df["true_crs_prob_cart"]).all()
    # the truth depends on covariates only: recomputing it from the file's columns gives it back
    again = true_effects(df.drop(columns=[c for c in df if c.startswith("true_")]))
    np.testing.assert_allclose(again["true_cate_rmst24"], df["true_cate_rmst24"])


def test_observed_outcome_is_the_assigned_potential_outcome(cohort):
    df = cohort
    t = np.where(df["treatment"] == "cart", df["true_os_months_cart"], df["true_os_months_tec"])
    died = df["death"].to_numpy()
    np.testing.assert_allclose(df["os_months"][died], t[died])
    assert (df["os_months"][~died] < t[~died]).all()


# -------------------------------------------------------------------------------- exact truth


def _profiles() -> pd.DataFrame:
    """Three fixed profiles: typical, high risk for CAR-T (inflamed, renal, rapid), EMD + prior BCMA."""
    base = simulate_cohort(n=3, seed=2).loc[:, list(NAMED_COVARIATES)]
    base.loc[0, ["extramedullary", "prior_bcma", "rapid_progression"]] = False
    base.loc[1, ["ferritin", "crp", "crcl", "rapid_progression", "bm_plasma_pct"]] = [
        1500.0,
        25.0,
        45.0,
        True,
        70.0,
    ]
    base.loc[2, ["extramedullary", "prior_bcma"]] = True
    return base


@pytest.mark.parametrize("scenario", ["default", "no_manufacturing_delay"])
def test_exact_truth_matches_monte_carlo(scenario):
    profiles = _profiles()
    m = 100_000
    reps = profiles.loc[np.repeat(profiles.index, m)].reset_index(drop=True)
    po = draw_potential_outcomes(reps, np.random.default_rng(123), scenario)
    exact = true_effects(profiles, scenario)
    times = np.array([1.0, 2.5, 6.0, 12.0])
    s_cart, s_tec = true_survival_curves(profiles, times, scenario)
    for i in range(len(profiles)):
        block = po.iloc[i * m : (i + 1) * m]
        checks = [
            (float(exact["true_crs_prob_cart"].iloc[i]), block["crs_cart"].mean()),
            (float(exact["true_crs_prob_tec"].iloc[i]), block["crs_tec"].mean()),
            (float(exact["true_crs_g3_prob_cart"].iloc[i]), (block["grade_cart"] >= 3).mean()),
        ]
        for j, t in enumerate(times):
            checks.append((s_cart[i, j], (block["t_cart"] > t).mean()))
            checks.append((s_tec[i, j], (block["t_tec"] > t).mean()))
        for p, p_hat in checks:
            # 4.5 binomial standard errors (m = 100,000 draws): with ~40 checks a false alarm has
            # probability ~3e-4; quadrature error (< 1e-6) is negligible at this scale
            se = np.sqrt(max(p * (1 - p), 1e-4) / m)
            assert abs(p_hat - p) < 4.5 * se, (i, p, p_hat)
        # the RMST truth against the mean of min(T, 24) over the draws (SD of min(T,24) <= 12)
        rmst_hat = np.minimum(block["t_cart"], 24.0).mean()
        assert abs(rmst_hat - exact["true_rmst24_cart"].iloc[i]) < 4.5 * 12.0 / np.sqrt(m)


def test_quadrature_accuracy_against_a_five_times_finer_rule():
    profiles = simulate_cohort(n=100, seed=8).loc[:, list(NAMED_COVARIATES)]
    p = scenario_params("default")
    fine = dataclasses.replace(
        p,
        truth=dataclasses.replace(
            p.truth, delay_nodes=100, dropout_nodes=60, time_nodes_per_piece=60
        ),
    )
    diff = (true_effects(profiles, p) - true_effects(profiles, fine)).abs().to_numpy().max()
    assert diff < 1e-6  # the accuracy stated in the module docstring


def test_survival_curves_start_at_one_and_decrease():
    profiles = _profiles()
    times = np.linspace(0, 36, 73)
    for s in true_survival_curves(profiles, times):
        assert s.shape == (3, 73)
        np.testing.assert_allclose(s[:, 0], 1.0)
        assert (np.diff(s, axis=1) <= 1e-12).all()


# -------------------------------------------------------------------------------- scenarios


def test_null_effect_has_no_effect_for_anyone():
    df = simulate_cohort(n=1500, seed=4, scenario="null_effect")
    for col in ("true_cate_surv12", "true_cate_rmst24", "true_cate_crs", "true_cate_crs_g3"):
        assert df[col].abs().max() < 1e-9, col
    s_cart, s_tec = true_survival_curves(df.head(50), [0.5, 1.5, 3.0, 12.0], "null_effect")
    np.testing.assert_allclose(s_cart, s_tec, atol=1e-9)


@pytest.mark.parametrize("scenario", ["no_manufacturing_delay", "null_effect"])
def test_no_manufacturing_delay_infuses_everyone_at_day_zero(scenario):
    df = simulate_cohort(n=1500, seed=4, scenario=scenario)
    cart = df[df["treatment"] == "cart"]
    assert cart["infusion_day"].notna().all()
    assert (cart["infusion_day"] == 0).all()
    default = simulate_cohort(n=1500, seed=4)
    assert default.loc[default["treatment"] == "cart", "infusion_day"].isna().any()


def test_heavy_censoring_censors_more():
    n, seed = 3000, 9
    base = simulate_cohort(n=n, seed=seed)
    heavy = simulate_cohort(n=n, seed=seed, scenario="heavy_censoring")
    assert (~heavy["death"]).mean() > (~base["death"]).mean() + 0.05
    assert heavy["os_months"].median() < base["os_months"].median()


def _outside(e: pd.Series) -> float:
    return float(((e < 0.05) | (e > 0.95)).mean())


def test_confounding_scenarios_push_the_propensity():
    n, seed = 3000, 9
    base = simulate_cohort(n=n, seed=seed)["true_propensity"]
    strong = simulate_cohort(n=n, seed=seed, scenario="strong_confounding")["true_propensity"]
    poor = simulate_cohort(n=n, seed=seed, scenario="poor_overlap")["true_propensity"]
    assert _outside(base) < 0.02  # default: reasonable overlap
    assert strong.std() > base.std()
    assert poor.max() - poor.min() > base.max() - base.min()
    assert _outside(poor) > _outside(strong) > _outside(base)


def test_confounding_by_indication_sends_sicker_patients_to_teclistamab(cohort):
    # prognosis under the same treatment (teclistamab) is worse among those who got teclistamab
    by_arm = cohort.groupby("treatment")["true_surv12_tec"].mean()
    assert by_arm["tec"] < by_arm["cart"] - 0.05
    # race moves assignment only: it is not an input of the outcome model
    profiles = cohort.loc[:99, list(NAMED_COVARIATES)].copy()
    other = profiles.assign(race="black")
    a, b = true_effects(profiles), true_effects(other)
    np.testing.assert_allclose(a.drop(columns="true_propensity"), b.drop(columns="true_propensity"))


# -------------------------------------------------------------------------------- effect modifiers


@pytest.fixture(scope="module")
def base_profiles(cohort) -> pd.DataFrame:
    return cohort.loc[:499, list(NAMED_COVARIATES)].reset_index(drop=True)


def _effect_change(profiles: pd.DataFrame, column: str, low, high, target: str) -> np.ndarray:
    lo, hi = profiles.copy(), profiles.copy()
    lo[column], hi[column] = low, high
    return (true_effects(hi)[target] - true_effects(lo)[target]).to_numpy()


@pytest.mark.parametrize(
    ("column", "low", "high", "sign"),
    [
        ("extramedullary", False, True, +1),  # teclistamab far worse with EMD
        ("prior_bcma", False, True, +1),  # teclistamab after BCMA exposure worse
        ("ferritin", 200.0, 2000.0, -1),  # CAR-T non-relapse mortality
        ("crcl", 95.0, 40.0, -1),  # renal impairment worsens CAR-T OS
        ("rapid_progression", False, True, -1),  # deaths and dropout while waiting
    ],
)
def test_true_rmst_effect_follows_the_published_directions(base_profiles, column, low, high, sign):
    change = _effect_change(base_profiles, column, low, high, "true_cate_rmst24")
    # the modifiers act on the hazard ratio; on the RMST scale a factor that worsens both arms can
    # shrink the difference for the frailest patients, so the direction holds for most, not all
    assert sign * change.mean() > 0.3  # months: a sizeable modifier, not a rounding effect
    assert (sign * change > 0).mean() > 0.9


def test_age_is_only_a_weak_modifier(base_profiles):
    age = _effect_change(base_profiles, "age", 60.0, 80.0, "true_cate_rmst24")
    emd = _effect_change(base_profiles, "extramedullary", False, True, "true_cate_rmst24")
    assert abs(age.mean()) < 0.25 * abs(emd.mean())


def test_tumor_burden_raises_cart_crs_only(base_profiles):
    lo, hi = base_profiles.copy(), base_profiles.copy()
    lo["bm_plasma_pct"], hi["bm_plasma_pct"] = 10.0, 80.0
    t_lo, t_hi = true_effects(lo), true_effects(hi)
    # CAR-T any-grade CRS among the infused rises; teclistamab CRS does not change
    assert (
        t_hi["true_crs_prob_cart"] / t_hi["true_infusion_prob"]
        > t_lo["true_crs_prob_cart"] / t_lo["true_infusion_prob"]
    ).all()
    np.testing.assert_allclose(t_hi["true_crs_prob_tec"], t_lo["true_crs_prob_tec"])


def test_inflammation_raises_crs_on_both_arms(base_profiles):
    for target in ("true_crs_prob_tec", "true_crs_g3_prob_cart"):
        assert (_effect_change(base_profiles, "ferritin", 200.0, 2000.0, target) > 0).all()


def test_heterogeneity_is_real_and_sizeable(cohort):
    cate = cohort["true_cate_rmst24"]
    assert cate.mean() > 0.5  # CAR-T better on average (months of RMST over 24)
    assert cate.std() > 0.5 * cate.mean()
    assert (cate < 0).mean() > 0.02  # some patients are better off with teclistamab
    assert cohort["true_cate_crs"].std() > 0.05
