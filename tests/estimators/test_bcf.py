"""Bayesian causal forests (stochtree) for OS and CRS against known truth."""

import pickle

import numpy as np
import pytest

from hte.estimators import BayesianCausalForest, CRSBayesianCausalForest
from tests.estimators.known_effects import exponential_rmst_design

FAST = dict(num_mcmc=100, mu_trees=50, tau_trees=20)
FAST_OS = dict(FAST, grid_size=15, n_folds=3, n_jobs=1)


def _crs_design(n, seed):
    """CRS risk 0.2 + 0.5 x1 on CAR-T, 0.1 on teclistamab: risk difference 0.1 .. 0.6."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    W = rng.binomial(1, 0.3 + 0.4 * X[:, 2])
    p1, p0 = 0.2 + 0.5 * X[:, 0], np.full(n, 0.1)
    crs = rng.binomial(1, np.where(W == 1, p1, p0))
    return X, W, crs, p1 - p0


@pytest.fixture(scope="module")
def os_fit():
    X, W, t, d, tau, h = exponential_rmst_design(1500, 0, slope=1.5)
    est = BayesianCausalForest(target="rmst", horizon=h, random_state=0, **FAST_OS)
    return est.fit(X, time=t, event=d, treatment=W), X, tau


def test_os_effect_tracks_the_truth_and_intervals_cover(os_fit):
    est, X, tau = os_fit
    res = est.estimate(X, alpha=0.05)
    assert res.estimator == "bayesian_causal_forest" and res.horizon == 1.0
    # the truth ranges 0 .. 0.17 (sd ~0.05): the posterior mean must follow it and the 95%
    # posterior intervals cover it for most patients (measured 0.95+ on this design; 0.85 leaves
    # room for one draw of the data)
    assert np.corrcoef(res.effect, tau)[0, 1] > 0.7
    assert np.mean((res.effect - tau) ** 2) / np.var(tau) < 0.5
    assert np.mean((res.lower <= tau) & (tau <= res.upper)) > 0.85


def test_null_effect_rarely_excludes_zero():
    X, W, t, d, tau, h = exponential_rmst_design(1000, 1, slope=0.0)
    assert np.allclose(tau, 0)
    est = BayesianCausalForest(target="survival", horizon=h, random_state=1, **FAST_OS)
    lo, hi = est.fit(X, time=t, event=d, treatment=W).predict_interval(X)
    # a small, fast posterior (100 draws, 20 effect trees) on a heavily censored design (treated
    # censoring hazard up to 1.1): measured 11% of intervals excluding 0; a real signal of this
    # size excludes 0 for far more. The cohort benchmark (benchmarks/bcf_trial.py,
    # null_effect, n = 2,000, default settings) measures 0%.
    assert np.mean((lo > 0) | (hi < 0)) <= 0.15


def test_effect_draws_do_not_depend_on_the_propensity(os_fit):
    # the effect forest never sees the propensity (it enters the prognostic forest only), so
    # predicting without the propensity model gives the very same draws as with it
    est, X, _ = os_fit
    Xa = np.asarray(X[:50], dtype=float)
    W = np.zeros(len(Xa))
    with_model = est.model_.predict(Xa, W, est.propensity_model_.predict(Xa), terms="cate")
    np.testing.assert_array_equal(est._draws(X[:50]), np.asarray(with_model).reshape(50, -1))


def test_pickles_through_json_and_is_deterministic(os_fit):
    est, X, _ = os_fit
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict(X[:20]), est.predict(X[:20]))
    X2, W2, t2, d2, _, h = exponential_rmst_design(300, 5, slope=1.0)
    fits = [
        BayesianCausalForest(horizon=h, random_state=3, **FAST_OS)
        .fit(X2, time=t2, event=d2, treatment=W2)
        .predict(X2[:10])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0], fits[1])


def test_the_saved_json_is_made_once_per_fit_and_refits_are_saved_anew():
    X, W, t, d, _, h = exponential_rmst_design(300, 6, slope=1.0)
    est = BayesianCausalForest(horizon=h, random_state=3, **FAST_OS)
    est.fit(X, time=t, event=d, treatment=W)
    first = pickle.dumps(est)
    calls = []
    to_json = est.model_.to_json
    est.model_.to_json = lambda: calls.append(1) or to_json()
    assert pickle.dumps(est) == first and calls == []  # the kept JSON, not made again
    X2, W2, t2, d2, _, _ = exponential_rmst_design(300, 7, slope=0.0)
    est.fit(X2, time=t2, event=d2, treatment=W2)  # a new sampler: its own JSON
    refitted = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(refitted.predict(X2[:10]), est.predict(X2[:10]))
    assert not np.array_equal(refitted.predict(X[:10]), pickle.loads(first).predict(X[:10]))


def test_crs_risk_difference_and_arm_risks_agree():
    X, W, crs, tau = _crs_design(1500, 2)
    est = CRSBayesianCausalForest(random_state=0, **FAST).fit(X, crs=crs, treatment=W)
    res = est.estimate(X)
    assert res.target == "crs" and res.estimator == "crs_bayesian_causal_forest"
    assert np.corrcoef(res.effect, tau)[0, 1] > 0.7
    assert np.mean((res.lower <= tau) & (tau <= res.upper)) > 0.85
    cart, tec = est.predict_risk(X)
    inside = (cart > 0) & (cart < 1) & (tec > 0) & (tec < 1)
    assert inside.mean() > 0.9
    np.testing.assert_allclose((cart - tec)[inside], res.effect[inside], atol=1e-8)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(target="hr"), "target must be one of"),
        (dict(horizon=None), "horizon is required"),
        (dict(num_mcmc=5), "num_mcmc must be at least 20"),
        (dict(tau_trees=0), "tau_trees must be a positive integer"),
    ],
)
def test_bad_parameters(kwargs, message):
    X, W, t, d, _, _ = exponential_rmst_design(100, 2, slope=1.0)
    est = BayesianCausalForest(**{"target": "rmst", "horizon": 1.0, **FAST_OS, **kwargs})
    with pytest.raises(ValueError, match=message):
        est.fit(X, time=t, event=d, treatment=W)


def test_predict_checks_columns(os_fit):
    est, X, _ = os_fit
    with pytest.raises(ValueError, match="columns"):
        est.predict(X[:, :2])


def test_predict_with_interval_is_predict_and_predict_interval_in_one_pass(os_fit):
    est, X, _ = os_fit
    mean, lo, hi = est.predict_with_interval(X[:30], alpha=0.1)
    np.testing.assert_array_equal(mean, est.predict(X[:30]))
    np.testing.assert_array_equal(np.stack([lo, hi]), np.stack(est.predict_interval(X[:30], 0.1)))
