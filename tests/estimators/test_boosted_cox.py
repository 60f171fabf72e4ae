"""BoostedCoxSurvival: scikit-survival's boosted Cox model without the per-stage loss values, with
the same trees and predictions."""

from __future__ import annotations

import numpy as np
from sksurv.ensemble import GradientBoostingSurvivalAnalysis
from sksurv.util import Surv

from hte.estimators.boosted_cox import BoostedCoxSurvival
from hte.estimators.meta_learners import make_base_learner

SETTINGS = dict(n_estimators=30, learning_rate=0.1, max_depth=2, subsample=0.8, min_samples_leaf=10)


def _survival_data(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    time = rng.exponential(np.exp(-0.7 * X[:, 0]) * 10)
    event = rng.random(n) < 0.7
    return X, Surv.from_arrays(event, time)


def test_same_predictions_as_scikit_survival_without_the_loss_values():
    X, y = _survival_data()
    ours = BoostedCoxSurvival(random_state=3, **SETTINGS).fit(X, y)
    theirs = GradientBoostingSurvivalAnalysis(random_state=3, **SETTINGS).fit(X, y)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    curves = ours.predict_survival_function(X[:5], return_array=True)
    np.testing.assert_array_equal(
        curves, theirs.predict_survival_function(X[:5], return_array=True)
    )
    assert np.isnan(ours.train_score_).all() and np.isnan(ours.oob_scores_).all()
    assert np.isfinite(theirs.train_score_).all()


def test_early_stopping_keeps_the_loss_values():
    X, y = _survival_data(seed=1)
    model = BoostedCoxSurvival(random_state=0, n_iter_no_change=3, **SETTINGS).fit(X, y)
    assert np.isfinite(model.train_score_).all()


def test_the_s_learner_base_learner_is_it():
    assert isinstance(make_base_learner("gbsa", None, 0, 1), BoostedCoxSurvival)
