"""Survival nuisances on the grid and the AIPCW pseudo-outcome, checked against known truth."""

import numpy as np
import pytest
from sksurv.nonparametric import kaplan_meier_estimator

from hte.estimators.nuisance import (
    SurvivalNuisances,
    aipcw_pseudo_outcome,
    conditional_target,
    cross_fit_survival,
    discretize,
    make_grid,
    risk_sets,
)
from hte.estimators.survival_learners import make_survival_learner


def _exp_data(n, seed, hazard_w=(1.0, 1.0), cens_max=2.0):
    """T ~ Exp(rate by arm), C ~ U(0, cens_max) independent; one noise covariate."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 2))
    W = rng.binomial(1, 0.5, n)
    rate = np.where(W == 1, hazard_w[1], hazard_w[0])
    T = rng.exponential(1 / rate)
    C = rng.uniform(0, cens_max, n)
    return X, W, np.minimum(T, C), (T <= C).astype(int)


def test_grid_ends_at_horizon_and_is_thinned():
    t = np.random.default_rng(0).exponential(size=500)
    g = make_grid(t, 1.0, 20)
    assert g[-1] == 1.0 and g.size <= 20 and np.all(np.diff(g) > 0)
    full = make_grid(t, 1.0, None)
    assert full.size == np.sum(t < 1.0) + 1


def test_discretize_rounds_up_and_truncates():
    grid = np.array([1.0, 2.0, 3.0])
    cell, died, cens = discretize(
        np.array([0.5, 1.0, 2.5, 3.0, 7.0]), np.array([1, 0, 1, 0, 1]), grid
    )
    assert cell.tolist() == [0, 0, 2, 2, 2]
    assert died.tolist() == [True, False, True, False, False]  # death after h is not "died"
    assert cens.tolist() == [False, True, False, True, False]


def test_km_learner_matches_kaplan_meier_per_arm():
    X, W, t, d = _exp_data(600, 1)
    grid = make_grid(t, 1.5, None)  # every distinct time: exact
    nu = cross_fit_survival(
        X, W, t, d, grid, event_learner="km", censoring_learner="km", n_folds=2, random_state=0
    )
    # cross-fitted KM is on halves; compare the full-data fit with scikit-survival's KM
    from hte.estimators.nuisance import risk_sets
    from hte.estimators.survival_learners import _KaplanMeier

    km = _KaplanMeier().fit(X, W, risk_sets(t, d, grid)[0], grid)
    for arm in (0, 1):
        s = W == arm
        times, surv = kaplan_meier_estimator(d[s].astype(bool), t[s])
        ref = np.array([surv[times <= g][-1] if (times <= g).any() else 1.0 for g in grid])
        np.testing.assert_allclose(km.surv_[arm], ref, atol=1e-12)
    assert nu.surv.shape == (t.size, grid.size)


@pytest.mark.parametrize("learner", ["hazard_gbm", "rsf"])
def test_event_and_censoring_survival_close_to_known_exponential_and_uniform(learner):
    X, W, t, d = _exp_data(2000, 2, hazard_w=(1.0, 2.0), cens_max=2.0)
    grid = make_grid(t, 1.0, 15)
    nu = cross_fit_survival(
        X,
        W,
        t,
        d,
        grid,
        event_learner=learner,
        censoring_learner=learner,
        n_folds=2,
        random_state=0,
    )
    # arm averages of the out-of-fold curves vs the truth exp(-rate t) and 1 - t/2; with ~1000
    # patients per arm the KM standard error is <= 0.02, forests add some smoothing bias: 0.05.
    for arm, rate in ((0, 1.0), (1, 2.0)):
        s = W == arm
        np.testing.assert_allclose(
            nu.surv1.mean(0) if arm else nu.surv0.mean(0), np.exp(-rate * grid), atol=0.05
        )
        np.testing.assert_allclose(nu.cens[s].mean(0), 1 - grid / 2, atol=0.05)


def test_conditional_target_closed_forms():
    grid = np.array([0.5, 1.0, 1.5, 2.0])
    S = np.array([[0.8, 0.6, 0.4, 0.2]])
    mean, Q = conditional_target(S, grid, "rmst")
    # int_0^2 S = 0.5*1 + 0.5*(0.8 + 0.6 + 0.4) = 1.4 (step function, S_K held on a zero-length cell)
    assert mean[0] == pytest.approx(1.4)
    assert Q[0, 1] == pytest.approx(1.0 + 0.5 * (0.6 + 0.4) / 0.6)
    mean_s, Q_s = conditional_target(S, grid, "survival")
    assert mean_s[0] == pytest.approx(0.2) and Q_s[0, 0] == pytest.approx(0.25)


def _oracle_nuisances(t, d, grid, rate=1.0, cens_max=2.0):
    n = t.size
    S = np.tile(np.exp(-rate * grid), (n, 1))
    C = np.tile(1 - grid / cens_max, (n, 1))
    return SurvivalNuisances(grid=grid, surv=S, surv1=S, surv0=S, cens=C)


@pytest.mark.parametrize("target,truth", [("rmst", 1 - np.exp(-1.0)), ("survival", np.exp(-1.0))])
def test_pseudo_outcome_unbiased_with_true_nuisances(target, truth):
    _, _, t, d = _exp_data(20_000, 3)
    grid = make_grid(t, 1.0, 60)
    ystar, _, _ = aipcw_pseudo_outcome(
        t, d, _oracle_nuisances(t, d, grid), target, censoring_floor=0.0
    )
    se = ystar.std() / np.sqrt(t.size)
    # discretization (60 cells) biases RMST by < 0.01; 4 SE + 0.01 bounds the error
    assert abs(ystar.mean() - truth) < 4 * se + 0.01


def test_pseudo_outcome_doubly_robust_to_wrong_event_model():
    _, _, t, d = _exp_data(20_000, 4)
    grid = make_grid(t, 1.0, 60)
    nu = _oracle_nuisances(t, d, grid)
    wrong = SurvivalNuisances(
        grid=grid, surv=nu.surv**3, surv1=nu.surv1, surv0=nu.surv0, cens=nu.cens
    )  # event model says rate 3 instead of 1
    ystar, _, _ = aipcw_pseudo_outcome(t, d, wrong, "rmst", censoring_floor=0.0)
    ipcw_only = np.mean(np.minimum(t, 1.0))  # naive mean of follow-up is biased downwards
    truth = 1 - np.exp(-1.0)
    assert abs(ystar.mean() - truth) < 4 * ystar.std() / np.sqrt(t.size) + 0.01
    assert truth - ipcw_only > 0.05  # the problem is real: censoring shortens follow-up


def test_no_censoring_pseudo_outcome_is_the_outcome():
    rng = np.random.default_rng(5)
    X = rng.uniform(size=(300, 2))
    W = rng.binomial(1, 0.5, 300)
    t = rng.exponential(size=300) + 0.01
    d = np.ones(300, int)
    grid = make_grid(t, 1.0, 20)
    nu = cross_fit_survival(X, W, t, d, grid, n_folds=2, random_state=0)
    assert np.all(nu.cens == 1.0)  # no censoring event: the censoring survival is exactly 1
    ystar, _, _ = aipcw_pseudo_outcome(t, d, nu, "rmst")
    np.testing.assert_allclose(ystar, np.minimum(t, 1.0))


def test_weights_sum_to_one_whatever_the_censoring_model():
    # with f == constant the pseudo-outcome is that constant for every patient (sum of weights 1)
    _, _, t, d = _exp_data(500, 6)
    grid = make_grid(t, 1.0, 30)
    rng = np.random.default_rng(0)
    C = np.cumprod(rng.uniform(0.8, 1.0, size=(t.size, grid.size)), axis=1)
    S = np.ones((t.size, grid.size))  # survival 1: f(T) = min(T,h) -> Q = h ... use survival target
    nu = SurvivalNuisances(grid=grid, surv=S, surv1=S, surv0=S, cens=C)
    tt = np.where(d == 1, 5.0, t)  # every death after h: f(T) = 1{T > h} = 1 for all
    ystar, _, _ = aipcw_pseudo_outcome(tt, d, nu, "survival", censoring_floor=0.3)
    np.testing.assert_allclose(ystar, 1.0, atol=1e-12)


@pytest.mark.parametrize("learner", ["hazard_gbm", "rsf", "km"])
def test_the_curve_under_the_own_arm_is_the_arms_curve_for_every_learner(learner):
    """The cross-fitted curve under each patient's own arm is read from the two arms' curves
    (``nuisance._fit_fold``); that holds only because a learner predicts a row the same way
    whatever rows it is predicted with."""
    X, W, t, d = _exp_data(300, 4, hazard_w=(1.0, 2.0))
    grid = make_grid(t, 1.0, 10)
    ev_rs, _ = risk_sets(t, d, grid)
    model = make_survival_learner(learner, 0).fit(X, W, ev_rs, grid)
    own = model.predict(X, W)
    ones, zeros = np.ones(W.size, dtype=int), np.zeros(W.size, dtype=int)
    from_arms = np.where((W == 1)[:, None], model.predict(X, ones), model.predict(X, zeros))
    np.testing.assert_array_equal(own, from_arms)
