"""The supplied-nuisance hook: same maths as the cross-fitted path, oracle nuisances, clear errors."""

import numpy as np
import pytest

from hte.estimators import CausalSurvivalForest
from hte.estimators.nuisance import (
    SurvivalNuisances,
    cross_fit_pseudo_outcomes,
    make_grid,
    pseudo_outcomes_from_nuisances,
)

FAST = dict(n_estimators=200, grid_size=15, n_folds=3, n_jobs=1)


def _design(n, seed):
    """Exponential T with an effect varying in X2, uniform censoring on [0, 3], e(x) = 0.3 + 0.4 X1."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    e = 0.3 + 0.4 * X[:, 0]
    W = rng.binomial(1, e)
    rate0 = np.exp(0.5 * X[:, 0] - 0.5)
    rate1 = rate0 * np.exp(-1.2 * X[:, 1])
    T = rng.exponential(1 / np.where(W == 1, rate1, rate0))
    C = rng.uniform(0, 3, size=n)
    return X, W, e, np.minimum(T, C), (T <= C).astype(int), rate0, rate1


def _oracle(time, grid, W, rate0, rate1):
    s1, s0 = np.exp(-np.outer(rate1, grid)), np.exp(-np.outer(rate0, grid))
    cens = np.tile(np.clip(1 - grid / 3, 0, 1), (time.size, 1))
    return SurvivalNuisances(grid, np.where(W[:, None] == 1, s1, s0), s1, s0, cens)


def test_supplied_cross_fitted_nuisances_reproduce_the_default_fit_exactly():
    X, W, _, t, d, _, _ = _design(800, 0)
    kw = dict(target="rmst", horizon=1.5, random_state=0, **FAST)
    default = CausalSurvivalForest(**kw).fit(X, time=t, event=d, treatment=W)
    out = cross_fit_pseudo_outcomes(
        X, W, t, d, target="rmst", horizon=1.5, grid_size=15, n_folds=3, random_state=0
    )
    supplied = CausalSurvivalForest(**kw).fit(
        X, time=t, event=d, treatment=W, propensity=out["e"], survival_nuisances=out["nuisances"]
    )
    # same nuisances, same seeds: the one score function gives identical pseudo-outcomes and trees
    np.testing.assert_allclose(supplied.pseudo_outcome_, default.pseudo_outcome_)
    np.testing.assert_allclose(supplied.predict(X[:50]), default.predict(X[:50]))


def test_oracle_nuisances_recover_the_true_effect():
    X, W, e, t, d, rate0, rate1 = _design(3000, 1)
    h = 1.5
    grid = np.linspace(0.01, h, 150)  # fine grid: the step-function RMST is within ~0.01 of exact
    nuis = _oracle(t, grid, W, rate0, rate1)
    est = CausalSurvivalForest(target="rmst", horizon=h, random_state=0, **FAST)
    est.fit(X, time=t, event=d, treatment=W, propensity=e, survival_nuisances=nuis)
    tau = (1 - np.exp(-rate1 * h)) / rate1 - (1 - np.exp(-rate0 * h)) / rate0
    pred = est.predict(X)
    # true effect spans ~0 to 0.45 (sd ~0.13); with exact nuisances only the forest's smoothing and
    # outcome noise remain: correlation > 0.8 and average effect within 0.03 (its se is ~0.015)
    assert np.corrcoef(pred, tau)[0, 1] > 0.8
    assert abs(pred.mean() - tau.mean()) < 0.03
    # the score's ingredients are the supplied ones, not re-estimated
    np.testing.assert_allclose(est.propensity_, e)


def test_supplied_nuisances_must_come_together_and_match():
    X, W, e, t, d, rate0, rate1 = _design(200, 2)
    grid = make_grid(t, 1.5, 10)
    nuis = _oracle(t, grid, W, rate0, rate1)
    est = CausalSurvivalForest(target="rmst", horizon=1.5, **FAST)
    with pytest.raises(ValueError, match="supplied together"):
        est.fit(X, time=t, event=d, treatment=W, propensity=e)
    with pytest.raises(ValueError, match="must end at horizon"):
        CausalSurvivalForest(target="rmst", horizon=1.0, **FAST).fit(
            X, time=t, event=d, treatment=W, propensity=e, survival_nuisances=nuis
        )
    with pytest.raises(ValueError, match=r"nuisances.cens must have shape"):
        pseudo_outcomes_from_nuisances(
            t,
            d,
            e,
            SurvivalNuisances(grid, nuis.surv, nuis.surv1, nuis.surv0, nuis.cens[:10]),
            target="rmst",
        )
    with pytest.raises(ValueError, match="propensity must have shape"):
        pseudo_outcomes_from_nuisances(t, d, np.ones_like(e), nuis, target="rmst")
