"""Baselines against known truth: Cox/logistic interaction models and weighted average effects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import norm

from hte.estimators import (
    CoxInteractionModel,
    LogisticInteractionModel,
    average_treatment_effect_binary,
    average_treatment_effect_survival,
    weighted_cox_hazard_ratio,
)


# --- survival designs ----------------------------------------------------------------------
def conditional_design(n: int, seed: int):
    """Exponential hazards with a heterogeneous conditional effect (closed-form S per arm)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    w = (rng.random(n) < 0.5).astype(int)
    lam0 = np.exp(np.log(1 / 15) + 0.5 * X[:, 0] + 0.3 * X[:, 1])
    lam1 = lam0 * np.exp(-0.5 + 0.5 * X[:, 2])
    t_event = rng.exponential(1 / np.where(w == 1, lam1, lam0))
    censor = rng.uniform(6, 36, size=n)
    return X, np.minimum(t_event, censor), (t_event <= censor).astype(int), w, lam1, lam0


LAMBDA, TRUE_HR = 1 / 15, 0.7


def marginal_design(n: int, seed: int, confounded: bool):
    """Known marginal hazard ratio with confounding.

    One uniform U per patient sets both potential times, T_a = -log(U) / (LAMBDA * TRUE_HR^a), so
    marginally S_a(t) = exp(-LAMBDA TRUE_HR^a t) exactly and the marginal HR is TRUE_HR. The
    covariate x is a noisy marker of U (high x = short survival); when confounded, patients with
    high x get teclistamab more often, which flatters CAR-T in an unweighted comparison.
    """
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    x = norm.ppf(u) + 0.5 * rng.normal(size=n)
    e = expit(-1.2 * x) if confounded else np.full(n, 0.5)
    w = (rng.random(n) < e).astype(int)
    t_event = -np.log(u) / (LAMBDA * TRUE_HR**w)
    censor = rng.uniform(12, 48, size=n)
    time, event = np.minimum(t_event, censor), (t_event <= censor).astype(int)
    iptw = np.where(w == 1, 1 / e, 1 / (1 - e))
    return x.reshape(-1, 1), time, event, w, iptw


def true_survival(h, arm):
    return np.exp(-LAMBDA * TRUE_HR**arm * h)


def true_rmst(h, arm):
    rate = LAMBDA * TRUE_HR**arm
    return (1 - np.exp(-rate * h)) / rate


# --- Cox interaction model -----------------------------------------------------------------
@pytest.mark.parametrize(("target", "horizon"), [("survival", 12.0), ("rmst", 24.0)])
def test_cox_interaction_recovers_the_effect(target, horizon):
    # Correctly specified model, n = 2,000. Measured corr 0.96, normalized MSE ~0.15 (the same
    # as the Cox T-learner); bounds fail for a model without the treatment x x2 term.
    X, t, d, w, *_ = conditional_design(2000, seed=1)
    Xt, *_, lam1, lam0 = conditional_design(500, seed=2)
    model = CoxInteractionModel(target=target, horizon=horizon).fit(X, t, d, w)
    if target == "survival":
        truth = np.exp(-lam1 * horizon) - np.exp(-lam0 * horizon)
    else:
        truth = (1 - np.exp(-lam1 * horizon)) / lam1 - (1 - np.exp(-lam0 * horizon)) / lam0
    pred = model.predict(Xt)
    assert np.corrcoef(pred, truth)[0, 1] > 0.9
    assert np.mean((pred - truth) ** 2) / np.var(truth) < 0.3
    # the treatment x x2 interaction is 0.5 by construction: within 3 standard errors
    row = model.summary_.loc["treatment:x2"]
    assert abs(row["coef"] - 0.5) < 3 * row["se(coef)"]


def test_cox_interaction_weights_and_bootstrap():
    X, t, d, w, *_ = conditional_design(800, seed=4)
    weights = np.random.default_rng(0).uniform(0.5, 2.0, size=800)
    model = CoxInteractionModel(target="survival", horizon=12.0, n_bootstrap=15, random_state=0)
    est = model.fit(X, t, d, w, sample_weight=weights).estimate(X[:50])
    # weights change the fit (they are not ignored)
    unweighted = CoxInteractionModel(target="survival", horizon=12.0).fit(X, t, d, w)
    assert not np.allclose(unweighted.summary_["coef"], model.summary_["coef"])
    assert np.isfinite(est.lower).all() and (est.lower <= est.upper).all()
    assert est.curves.surv_cart.shape == (50, 100)
    np.testing.assert_allclose(
        model.predict(X[:5]),
        model.predict_survival(X[:5], [12.0]).surv_cart[:, 0]
        - model.predict_survival(X[:5], [12.0]).surv_tec[:, 0],
    )


# --- weighted hazard ratio -----------------------------------------------------------------
def test_cox_interaction_linear_predictor_is_lifelines_own():
    # the numpy linear predictor behind every prediction equals lifelines' predict_log_partial_hazard
    # bit for bit, weighted or not (it reads lifelines' centring, which a lifelines upgrade could move)
    from hte.estimators.cox_interaction import _interaction_frame, _log_partial_hazard

    X, t, d, w, *_ = conditional_design(400, seed=5)
    names = [f"x{j}" for j in range(X.shape[1])]
    for weights in (None, np.random.default_rng(1).uniform(0.5, 2.0, size=400)):
        model = CoxInteractionModel(target="survival", horizon=12.0).fit(
            X, t, d, w, sample_weight=weights
        )
        for arm in (0, 1):
            design = _interaction_frame(X[:60], np.full(60, arm), names)
            shuffled = design[design.columns[::-1]]  # columns are matched by name
            ours = _log_partial_hazard(model.state_, shuffled.to_numpy(), list(shuffled.columns))
            theirs = model.state_.predict_log_partial_hazard(design).to_numpy()
            assert np.array_equal(ours, theirs)


def test_hazard_ratio_randomized_covers_truth():
    _, t, d, w, _ = marginal_design(3000, seed=11, confounded=False)
    hr = weighted_cox_hazard_ratio(t, d, w)
    assert hr.lower < TRUE_HR < hr.upper
    assert hr.n == 3000 and 0 <= hr.p < 0.05


def test_hazard_ratio_iptw_removes_confounding_bias():
    # Unweighted: confounded by x, measured HR 0.25 against the true 0.7. With the true IPTW
    # weights (measured HR 0.73, robust CI 0.64-0.83) the CI covers 0.7 and the log-HR error
    # shrinks more than ten-fold; the bound asks for two-fold.
    _, t, d, w, iptw = marginal_design(3000, seed=12, confounded=True)
    naive = weighted_cox_hazard_ratio(t, d, w)
    weighted = weighted_cox_hazard_ratio(t, d, w, iptw)
    assert not naive.lower < TRUE_HR < naive.upper
    assert weighted.lower < TRUE_HR < weighted.upper
    assert abs(np.log(weighted.hr / TRUE_HR)) < 0.5 * abs(np.log(naive.hr / TRUE_HR))


# --- IPTW Kaplan-Meier average effects -----------------------------------------------------
def test_iptw_km_effects_recover_truth():
    h = 12.0
    _, t, d, w, iptw = marginal_design(3000, seed=13, confounded=True)
    true_surv = true_survival(h, 1) - true_survival(h, 0)
    true_rm = true_rmst(h, 1) - true_rmst(h, 0)
    ate = average_treatment_effect_survival(t, d, w, iptw, h, n_bootstrap=200, random_state=0)
    naive = average_treatment_effect_survival(t, d, w, None, h, n_bootstrap=200, random_state=0)
    assert ate.survival.lower < true_surv < ate.survival.upper
    assert ate.rmst.lower < true_rm < ate.rmst.upper
    # arm-level values close to the closed form: 0.05 is ~2.5 bootstrap SE of an IPTW arm
    # estimate here (measured errors 0.013 and 0.029)
    assert abs(ate.survival.value_cart - true_survival(h, 1)) < 0.05
    assert abs(ate.survival.value_tec - true_survival(h, 0)) < 0.05
    # unweighted comparison is biased upward (measured 0.52 vs true 0.12; IPTW 0.16)
    assert abs(naive.survival.estimate - true_surv) > 2 * abs(ate.survival.estimate - true_surv)
    assert "bootstrap" in ate.survival.method


def test_weighted_km_matches_unweighted_km_on_hand_example():
    # times 1, 2, 2(censored), 3: S(1) = 3/4, S(2) = 3/4 * 2/3 = 1/2, S(3) = 0
    t = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 6.0])
    d = np.array([1, 1, 0, 1, 1, 0])
    w = np.array([1, 1, 1, 1, 0, 0])
    ate = average_treatment_effect_survival(t, d, w, None, 2.5, n_bootstrap=5, random_state=0)
    assert ate.survival.value_cart == pytest.approx(0.5)
    # RMST to 2.5 = 1 + 0.75 + 0.5 * 0.5
    assert ate.rmst.value_cart == pytest.approx(2.0)


# --- logistic interaction model and binary average effects ---------------------------------
def crs_design(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    e = expit(0.7 * X[:, 0] - 0.4 * X[:, 1])
    w = (rng.random(n) < e).astype(int)
    z0 = -1.5 + 0.5 * X[:, 0] + 0.4 * X[:, 3]
    z1 = z0 + 1.2 + 0.8 * X[:, 1]
    y = (rng.random(n) < expit(np.where(w == 1, z1, z0))).astype(int)
    return X, y, w, expit(z1) - expit(z0), e


def test_logistic_interaction_recovers_risk_difference():
    # Correctly specified logistic model at n = 2,000: measured corr 0.93, normalized MSE 0.15,
    # delta-method 95% coverage of the true risk difference 0.85 averaged over test patients.
    # Pointwise coverage averaged over x varies by seed, so the bound is 0.75.
    X, y, w, _, _ = crs_design(2000, seed=1)
    Xt, _, _, tau_t, _ = crs_design(500, seed=2)
    model = LogisticInteractionModel().fit(X, y, w)
    est = model.estimate(Xt)
    assert np.corrcoef(est.effect, tau_t)[0, 1] > 0.9
    assert np.mean((est.effect - tau_t) ** 2) / np.var(tau_t) < 0.3
    coverage = np.mean((est.lower <= tau_t) & (tau_t <= est.upper))
    assert 0.75 < coverage <= 1.0
    p1, p0 = model.predict_risk(Xt)
    np.testing.assert_allclose(p1 - p0, est.effect)


def test_logistic_grade3_excludes_missing_grade_with_a_warning():
    X, y, w, _, _ = crs_design(600, seed=3)
    rng = np.random.default_rng(0)
    grade = np.where(y == 1, rng.integers(1, 5, size=600), 0).astype(float)
    grade[:75] = np.nan
    model = LogisticInteractionModel("crs_g3")
    with pytest.warns(UserWarning, match="75 of 600 patients have no recorded crs_grade"):
        model.fit(X, y, w, crs_grade=grade)
    assert model.n_excluded_missing_grade_ == 75


def test_logistic_separation_is_reported():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0]])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    w = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(RuntimeError, match="separation"):
        LogisticInteractionModel().fit(X, y, w)
    assert np.isfinite(LogisticInteractionModel(penalty=1.0).fit(X, y, w).predict(X)).all()


def test_binary_ate_ipw_and_aipw_cover_truth():
    # Confounded design (true propensity given): IPW and AIPW 95% CIs must cover the sample mean
    # of the true risk difference (measured IPW 0.237, CI 0.205-0.268, truth 0.239). The naive
    # difference in means is off by only +0.03 here, too little to show reliably at this n.
    X, y, w, tau, e = crs_design(4000, seed=5)
    ipw = average_treatment_effect_binary(y, w, e)
    assert ipw.lower < tau.mean() < ipw.upper
    model = LogisticInteractionModel().fit(X, y, w)
    mu1, mu0 = model.predict_risk(X)
    aipw = average_treatment_effect_binary(y, w, e, mu1=mu1, mu0=mu0)
    assert aipw.lower < tau.mean() < aipw.upper
    assert aipw.se <= ipw.se  # the outcome model removes variance
    assert ipw.method.startswith("IPW") and aipw.method.startswith("AIPW")


class TestValidation:
    def test_hr_errors(self):
        _, t, d, w, _ = marginal_design(100, seed=0, confounded=False)
        with pytest.raises(ValueError, match="only one arm"):
            weighted_cox_hazard_ratio(t, d, np.zeros(100))
        with pytest.raises(ValueError, match="no events"):
            weighted_cox_hazard_ratio(t, np.zeros(100), w)
        with pytest.raises(ValueError, match=r"weights must be finite and >= 0; rows \[3\]"):
            weighted_cox_hazard_ratio(t, d, w, np.where(np.arange(100) == 3, -1.0, 1.0))

    def test_ate_survival_errors(self):
        _, t, d, w, _ = marginal_design(100, seed=0, confounded=False)
        with pytest.raises(ValueError, match="beyond the longest follow-up"):
            average_treatment_effect_survival(t, d, w, None, 1000.0)
        bad = t.copy()
        bad[0] = -1.0
        with pytest.raises(ValueError, match="time must be > 0"):
            average_treatment_effect_survival(bad, d, w, None, 6.0)

    def test_binary_errors(self):
        X, y, w, _, e = crs_design(100, seed=0)
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            average_treatment_effect_binary(y, w, np.where(np.arange(100) == 2, 1.0, e))
        with pytest.raises(ValueError, match="both mu1 and mu0"):
            average_treatment_effect_binary(y, w, e, mu1=e)
        with pytest.raises(ValueError, match="only one arm"):
            LogisticInteractionModel().fit(X, y, np.ones(100))
        X = X.copy()
        X[5, 0] = np.nan
        with pytest.raises(ValueError, match="missing values"):
            LogisticInteractionModel().fit(X, y, w)

    def test_cox_interaction_errors(self):
        X, t, d, w, *_ = conditional_design(100, seed=0)
        with pytest.raises(ValueError, match="sample_weight must be"):
            CoxInteractionModel().fit(X, t, d, w, sample_weight=np.ones(5))
        with pytest.raises(ValueError, match="no events"):
            CoxInteractionModel().fit(X, t, np.zeros(100), w)


def test_cox_interaction_matches_cox_s_learner():
    # Two implementations of the same model (lifelines with Breslow baseline here; scikit-survival
    # in the S-learner): unpenalized, Efron ties, same interaction terms: effects agree to
    # optimizer precision (measured max difference 1.2e-7 months).
    from hte.estimators import SLearnerSurvival

    X, t, d, w, *_ = conditional_design(1000, seed=6)
    kw = dict(target="rmst", horizon=24.0)
    ours = CoxInteractionModel(**kw).fit(X, t, d, w).predict(X[:100])
    sksurv = SLearnerSurvival("cox", base_params={"alpha": 0.0}, **kw).fit(X, t, d, w)
    np.testing.assert_allclose(ours, sksurv.predict(X[:100]), atol=1e-3)


# --------------------------------------------------------------------------------------------
# Cox with interactions: ridge fallback when the unpenalized fit does not converge


def _collinear_data(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X = np.column_stack([X, 2.0 * X[:, 0] + 1.0])  # an exact copy of x0, rescaled
    w = rng.integers(0, 2, n)
    t = rng.exponential(10.0 * np.exp(0.5 * w), n) + 0.1  # true log HR of CAR-T: -0.5
    return X, t, np.ones(n, bool), w


def test_cox_collinear_refits_with_a_small_ridge_and_records_it():
    X, t, d, w = _collinear_data()
    model = CoxInteractionModel(target="rmst", horizon=5.0).fit(X, time=t, event=d, treatment=w)
    assert model.fit_info_ == {
        "penalizer_requested": 0.0,
        "penalizer_used": 0.01,
        "ridge_fallback": True,
        "reason": "the unpenalized fit did not converge",
    }
    # the penalized fit still estimates: treatment main effect near the true -0.5 (4 SE)
    row = model.summary_.loc["treatment"]
    assert abs(row["coef"] + 0.5) < 4 * row["se(coef)"] + 0.05


def test_cox_that_converges_keeps_the_requested_penalizer():
    X, t, d, w = _collinear_data()
    model = CoxInteractionModel(horizon=5.0).fit(X[:, :3], time=t, event=d, treatment=w)
    assert model.fit_info_["ridge_fallback"] is False and model.penalizer_used_ == 0.0


def test_cox_separation_is_caught_and_refitted():
    rng = np.random.default_rng(0)
    n = 200
    x = (rng.random(n) < 0.2).astype(float)
    X = np.column_stack([rng.normal(size=(n, 3)), x])
    w = rng.integers(0, 2, n)
    t = np.where((x == 1) & (w == 1), rng.uniform(0.1, 0.5, n), rng.exponential(10, n) + 1)
    model = CoxInteractionModel(horizon=5.0).fit(X, time=t, event=np.ones(n, bool), treatment=w)
    assert model.fit_info_["ridge_fallback"] is True
    assert model.summary_["coef"].abs().max() < 10  # unpenalized: 21.7 (hazard ratio 2.7e9)


def test_cox_negative_penalizer_is_refused():
    X, t, d, w = _collinear_data()
    with pytest.raises(ValueError, match="penalizer must be >= 0"):
        CoxInteractionModel(penalizer=-1.0, horizon=5.0).fit(X, time=t, event=d, treatment=w)
