"""Cross-fitted propensity: recovers a known propensity, is out-of-fold, clips, fails clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from hte.design.propensity import (
    PropensityModel,
    cross_fit_propensity,
    default_propensity_learner,
)


def _logistic_design(n: int, seed: int):
    """Confounded design with a known logistic propensity (5 covariates, 2 binary)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[:, 3:] = (X[:, 3:] > 0.2).astype(float)
    e = 1.0 / (1.0 + np.exp(-(0.8 * X[:, 0] - 0.6 * X[:, 1] + 0.5 * X[:, 3] - 0.2)))
    w = rng.binomial(1, e)
    return X, w, e


def test_default_learner_recovers_true_propensity():
    X, w, e = _logistic_design(4000, seed=11)
    p = cross_fit_propensity(X, w, random_state=0)
    # Shallow boosting approximates a smooth logistic surface by steps; at n = 4000 its mean
    # absolute error measured 0.049-0.053 over 6 seeds, so 0.065 leaves room for seed noise but
    # fails a broken fit (the base rate alone gives about 0.17).
    assert np.abs(p - e).mean() < 0.065
    assert np.abs(np.full_like(e, w.mean()) - e).mean() > 0.12


def test_logistic_learner_recovers_true_propensity():
    X, w, e = _logistic_design(4000, seed=12)
    p = cross_fit_propensity(X, w, learner=LogisticRegression(max_iter=1000), random_state=0)
    # Correctly specified model: error is O(1/sqrt(n)); measured about 0.015-0.02.
    assert np.abs(p - e).mean() < 0.03


def test_predictions_are_out_of_fold():
    # Pure-noise treatment and a learner that memorises its training rows (1-nearest neighbour):
    # in-sample it would reproduce every label; out of fold it can only guess.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1000, 3))
    w = rng.binomial(1, 0.4, size=1000)
    in_sample = KNeighborsClassifier(n_neighbors=1).fit(X, w).predict(X)
    assert (in_sample == w).mean() == 1.0
    p = cross_fit_propensity(X, w, learner=KNeighborsClassifier(n_neighbors=1), random_state=0)
    agree = ((p > 0.5).astype(int) == w).mean()
    # Chance agreement for independent Bernoulli(0.4) labels is 0.4^2 + 0.6^2 = 0.52; binomial SD at
    # n = 1000 is 0.016, so 0.6 is 5 SD above chance and far below the in-sample 1.0.
    assert agree < 0.6


def test_noise_treatment_stays_near_base_rate():
    # Pure-noise treatment: an in-sample fit of the default learner tracks the labels (correlation
    # with W measured 0.39-0.43); out-of-fold predictions must not (measured |corr| <= 0.045 over 6
    # seeds; the sampling SD of a correlation at n = 2000 is 0.022, so 0.08 is about 3.5 SD).
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2000, 6))
    w = rng.binomial(1, 0.3, size=2000)
    p = cross_fit_propensity(X, w, random_state=1)
    with threadpool_limits(limits=1, user_api="openmp"):  # see OPENMP_THREADS in propensity.py
        in_sample = default_propensity_learner().fit(X, w).predict_proba(X)[:, 1]
    assert np.corrcoef(in_sample, w)[0, 1] > 0.2
    assert abs(np.corrcoef(p, w)[0, 1]) < 0.08
    assert abs(p.mean() - w.mean()) < 0.02


def test_clip_deterministic_and_dataframe_with_nan():
    X, w, _ = _logistic_design(600, seed=5)
    frame = pd.DataFrame(X, columns=[f"c{j}" for j in range(5)])
    frame.iloc[::7, 0] = np.nan  # default learner takes NaN
    p1 = cross_fit_propensity(frame, w, random_state=2, clip=0.05)
    p2 = cross_fit_propensity(frame, w, random_state=2, clip=0.05)
    np.testing.assert_array_equal(p1, p2)
    assert p1.min() >= 0.05 and p1.max() <= 0.95
    assert p1.shape == (600,)


def test_clear_errors():
    X, w, _ = _logistic_design(200, seed=6)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        cross_fit_propensity(Xn, w, learner=LogisticRegression())
    with pytest.raises(ValueError, match="n_folds"):
        cross_fit_propensity(X, w, n_folds=1)
    w_few = np.zeros(200, dtype=int)
    w_few[:3] = 1
    with pytest.raises(ValueError, match="smaller arm has only 3"):
        cross_fit_propensity(X, w_few, n_folds=5)
    with pytest.raises(ValueError, match="treatment must be 0"):
        cross_fit_propensity(X, np.where(w == 1, 2, 0))
    with pytest.raises(ValueError, match="clip"):
        cross_fit_propensity(X, w, clip=0.6)


def test_propensity_model_scores_new_patients():
    X, w, e = _logistic_design(3000, seed=7)
    frame = pd.DataFrame(X, columns=list("abcde"))
    model = PropensityModel(learner=LogisticRegression(max_iter=1000)).fit(frame[:2000], w[:2000])
    p_new = model.predict(frame[2000:])
    # Held-out rows of a correctly specified model: measured error about 0.02.
    assert np.abs(p_new - e[2000:]).mean() < 0.035
    proba = model.predict_proba(frame[2000:])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], p_new)
    with pytest.raises(ValueError, match="differ from the fitted columns"):
        model.predict(frame[2000:][list("edcba")])
    with pytest.raises(RuntimeError, match="not fitted"):
        PropensityModel().predict(X)
