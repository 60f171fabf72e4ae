"""RATE / TOC: closed-form hand cases, known-truth simulations, null calibration, the RRMM cohort."""

from __future__ import annotations

import numpy as np
import pytest

from hte.evaluation.rate import (
    aipw_scores_binary,
    cross_fitted_priorities,
    dr_scores_from_pseudo_outcomes,
    rate,
    toc_curve,
)


# --------------------------------------------------------------------------------------------
# closed-form hand examples
# --------------------------------------------------------------------------------------------
def test_toc_and_rate_hand_example():
    # priorities 3 > 2 > 1, scores (3, 0, 0): mean 1; top-1 mean 3, top-2 mean 1.5, top-3 mean 1
    # TOC = (2, 0.5, 0); AUTOC = (2 + 0.5 + 0) / 3 = 5/6; Qini = (1/3)(2/3 + 1/3 + 0) = 1/3
    p, s = np.array([1.0, 3.0, 2.0]), np.array([0.0, 3.0, 0.0])
    q, toc = toc_curve(p, s)
    np.testing.assert_allclose(q, [1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(toc, [2.0, 0.5, 0.0])
    assert rate(p, s, kind="autoc", n_bootstrap=10, random_state=0).estimate == pytest.approx(5 / 6)
    assert rate(p, s, kind="qini", n_bootstrap=10, random_state=0).estimate == pytest.approx(1 / 3)
    _q2, toc2 = toc_curve(p, s, grid=[0.3, 0.5, 1.0])  # top ceil(q n) = 1, 2, 3 patients
    np.testing.assert_allclose(toc2, [2.0, 0.5, 0.0])


def test_ties_average_over_orderings():
    # patients 0 and 1 tie: averaging over both orderings = giving each the group mean (1, 1)
    # so the top-1 mean is 1 (not 2 or 0), the top-2 mean 1; overall mean 1 -> TOC = (0, 0, 0)
    p, s = np.array([1.0, 1.0, 0.0]), np.array([2.0, 0.0, 1.0])
    _, toc = toc_curve(p, s)
    np.testing.assert_allclose(toc, [0.0, 0.0, 0.0], atol=1e-12)
    # the result must not depend on the order of tied patients in the input
    _, toc_swapped = toc_curve(p[[1, 0, 2]], s[[1, 0, 2]])
    np.testing.assert_allclose(toc_swapped, toc)


def test_constant_priorities_give_zero_rate():
    s = np.random.default_rng(0).normal(size=50)
    res = rate(np.zeros(50), s, n_bootstrap=20, random_state=0)
    assert res.estimate == pytest.approx(0.0, abs=1e-12)


def test_dr_score_formulas():
    # W=1: mu1 - mu0 + (Y - mu1)/e ; W=0: mu1 - mu0 - (Y - mu0)/(1 - e)
    y, w = np.array([1.0, 0.0]), np.array([1, 0])
    e, mu1, mu0 = np.array([0.25, 0.6]), np.array([0.5, 0.4]), np.array([0.2, 0.3])
    expected = [0.3 + 0.5 / 0.25, 0.1 - (0.0 - 0.3) / 0.4]
    np.testing.assert_allclose(aipw_scores_binary(y, w, e, mu1, mu0), expected)
    np.testing.assert_allclose(dr_scores_from_pseudo_outcomes(y, w, e, mu1, mu0), expected)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="priorities must have length 3"):
        rate([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="kind must be one of"):
        rate([1, 2], [1, 2], kind="auc")
    with pytest.raises(ValueError, match=r"scores must be finite; rows \[1\]"):
        toc_curve([1, 2], [0, np.nan])
    with pytest.raises(ValueError, match=r"propensity e must be strictly in \(0, 1\); rows \[0\]"):
        aipw_scores_binary([1], [1], [1.0], [0.5], [0.5])
    with pytest.raises(ValueError, match=r"y must be 0/1; rows \[0\]"):
        aipw_scores_binary([2], [1], [0.5], [0.5], [0.5])


# --------------------------------------------------------------------------------------------
# known-truth simulation: tau(x) = x ~ U(0, 1), oracle priorities
# true TOC(q) = E[x | x > 1 - q] - 1/2 = (1 - q)/2, so AUTOC = 1/4 and Qini = int q(1-q)/2 = 1/12
# --------------------------------------------------------------------------------------------
def _continuous_design(n, rng, effect=True):
    x = rng.random(n)
    tau = x if effect else np.zeros(n)
    e = np.full(n, 0.5)
    w = (rng.random(n) < e).astype(int)
    mu0 = np.sin(3 * x)
    y = mu0 + w * tau + rng.normal(scale=0.5, size=n)
    # oracle nuisances: the AIPW scores are unbiased for tau(x) per patient
    scores = dr_scores_from_pseudo_outcomes(y, w, e, mu0 + tau, mu0)
    return x, tau, scores


def test_oracle_priorities_recover_closed_form_rate():
    rng = np.random.default_rng(1)
    _x, tau, scores = _continuous_design(4000, rng)
    autoc = rate(tau, scores, kind="autoc", random_state=2)
    qini = rate(tau, scores, kind="qini", random_state=2)
    # unbiased estimators: 4 bootstrap standard errors keep a false failure below ~1e-4
    assert abs(autoc.estimate - 0.25) < 4 * autoc.std_err
    assert abs(qini.estimate - 1 / 12) < 4 * qini.std_err
    assert autoc.lower > 0 and qini.lower > 0 and autoc.p_value < 1e-3
    assert autoc.estimate > qini.estimate > 0  # TOC >= 0 for a correct ranking, Qini weights q <= 1


def test_binary_outcome_with_heterogeneity_is_detected():
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.random(n)
    p0, p1 = np.full(n, 0.3), 0.1 + 0.6 * x  # risk difference -0.2 + 0.6 x
    e = 0.3 + 0.4 * x
    w = (rng.random(n) < e).astype(int)
    y = (rng.random(n) < np.where(w == 1, p1, p0)).astype(int)
    scores = aipw_scores_binary(y, w, e, p1, p0)
    res = rate(p1 - p0, scores, kind="autoc", random_state=4)
    # truth: tau = -0.2 + 0.6 x, TOC(q) = 0.6 (1 - q) / 2, AUTOC = 0.15
    assert res.lower > 0
    assert abs(res.estimate - 0.15) < 4 * res.std_err


# --------------------------------------------------------------------------------------------
# calibration under the null: intervals cover zero about 95% of the time
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["autoc", "qini"])
def test_null_intervals_cover_zero(kind):
    # two nulls: a real effect with random priorities, and no effect with informative-looking ones.
    # 40 draws at nominal 95%. Measured over 400 draws at n = 400 the coverage is 0.91-0.955 (a
    # little bootstrap under-coverage in small samples), so P(< 34 of 40) is a few percent at most;
    # an interval a third as wide covers only ~50%, so >= 34 (85%) catches a broken interval.
    rng = np.random.default_rng(10)
    covered = 0
    for draw in range(40):
        x, _, scores = _continuous_design(400, rng, effect=draw % 2 == 0)
        priorities = rng.random(400) if draw % 2 == 0 else x
        res = rate(priorities, scores, kind=kind, n_bootstrap=100, random_state=draw)
        covered += res.lower <= 0 <= res.upper
    assert covered >= 34


def test_cluster_bootstrap_runs_and_widens_with_correlated_clusters():
    # 50 clusters sharing one random shift in their scores: the cluster bootstrap sees that
    # dependence, the i.i.d. one does not, so its standard error must be larger
    rng = np.random.default_rng(5)
    n, k = 1000, 50
    cl = rng.integers(0, k, n)
    priorities = rng.normal(size=k)[cl] + 0.1 * rng.normal(size=n)
    scores = 2.0 * rng.normal(size=k)[cl] + rng.normal(size=n)
    iid = rate(priorities, scores, n_bootstrap=100, random_state=0)
    clus = rate(priorities, scores, n_bootstrap=100, random_state=0, clusters=cl)
    assert clus.std_err > iid.std_err


def test_cross_fitted_priorities_are_out_of_fold():
    seen = []

    def fit_predict(train, test):
        seen.append((set(train), set(test)))
        return np.full(test.shape[0], float(len(seen)))

    X = np.zeros((23, 2))
    out = cross_fitted_priorities(fit_predict, X, n_folds=4, random_state=0)
    assert len(seen) == 4 and not np.isnan(out).any()
    for train, test in seen:
        assert not train & test and len(train | test) == 23
    assert sorted(np.unique(out).tolist()) == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="must return"):
        cross_fitted_priorities(lambda tr, te: np.zeros(1), X, n_folds=4)


# --------------------------------------------------------------------------------------------
# the project's synthetic RRMM cohort, survival at 12 months with AIPCW scores
# --------------------------------------------------------------------------------------------
def _cohort_rate(scenario: str, seed: int = 0):
    from hte.data.columns import DEATH, OS_MONTHS
    from hte.data.simulate import simulate_cohort
    from hte.design.design_matrix import build_design_matrix, treatment_array
    from hte.estimators import CoxInteractionModel
    from hte.estimators.nuisance import cross_fit_pseudo_outcomes

    cohort = simulate_cohort(n=2000, seed=seed, scenario=scenario)
    X = build_design_matrix(cohort).X
    w = treatment_array(cohort)
    t, d = cohort[OS_MONTHS].to_numpy(float), cohort[DEATH].to_numpy(bool)
    # Kaplan-Meier per arm for the event and censoring curves keeps this test fast; it is valid
    # here because the simulated censoring (accrual + loss to follow-up) does not depend on
    # covariates, and the propensity is still cross-fitted on X. The report gives the same check
    # with the default boosted hazards.
    nu = cross_fit_pseudo_outcomes(
        X.to_numpy(float),
        w,
        t,
        d,
        target="survival",
        horizon=12.0,
        event_learner="km",
        censoring_learner="km",
        random_state=seed,
    )
    scores = dr_scores_from_pseudo_outcomes(nu["pseudo_outcome"], w, nu["e"], nu["mu1"], nu["mu0"])

    def fit_predict(train, test):
        model = CoxInteractionModel(target="survival", horizon=12.0)
        return model.fit(X.iloc[train], t[train], d[train], w[train]).predict(X.iloc[test])

    priorities = cross_fitted_priorities(fit_predict, X, n_folds=5, random_state=seed)
    return priorities, scores, nu, w


@pytest.mark.filterwarnings("ignore")
def test_cohort_null_effect_rate_covers_zero_and_calibration_finds_nothing():
    # Acceptance check of the brief on the null_effect cohort (one fixed seed). Measured over seeds
    # 0-9 the intervals covered 0 and the BLP test stayed silent in 10/10 (see the report). The
    # default scenario is not asserted here: at n = 2,000 with Cox priorities detection succeeds in
    # only about half the seeds (AUTOC 5/10, BLP 5/10), so any single-seed assertion would be luck.
    from hte.evaluation.blp_calibration import blp_calibration_test

    priorities, scores, nu, w = _cohort_rate("null_effect")
    for kind in ("autoc", "qini"):
        res = rate(priorities, scores, kind=kind, random_state=0)
        assert res.lower <= 0 <= res.upper
    assert not blp_calibration_test(priorities, scores=scores).heterogeneity_detected()
    residualized = blp_calibration_test(
        priorities, y=nu["pseudo_outcome"], w=w, e=nu["e"], m=nu["m"]
    )
    assert not residualized.heterogeneity_detected()
