"""DR-learner on AIPCW pseudo-outcomes against known truth."""

import numpy as np
import pytest

from hte.estimators import SurvivalDRLearner
from hte.estimators.result import EffectEstimate
from tests.estimators.known_effects import exponential_rmst_design

FAST = dict(n_estimators=200, grid_size=15, n_folds=3, cv=3, n_jobs=1)


def test_forest_final_tracks_heterogeneous_effect_under_censoring():
    X, W, t, d, tau, h = exponential_rmst_design(2000, 0, slope=1.5)
    est = SurvivalDRLearner(target="rmst", horizon=h, random_state=0, **FAST)
    est.fit(X, time=t, event=d, treatment=W)
    pred = est.predict(X[:500])
    # true effect ranges 0 .. 0.17 with sd ~0.05; the DR estimate must capture most of it:
    # correlation > 0.7 and normalized MSE < 0.5 (a constant prediction scores 1)
    assert np.corrcoef(pred, tau[:500])[0, 1] > 0.7
    assert np.mean((pred - tau[:500]) ** 2) / np.var(tau[:500]) < 0.5


def test_linear_final_recovers_zero_effect_and_covers_it():
    X, W, t, d, tau, h = exponential_rmst_design(1500, 1, slope=0.0)
    assert np.allclose(tau, 0)
    est = SurvivalDRLearner(target="survival", horizon=h, final="linear", random_state=0, **FAST)
    est.fit(X, time=t, event=d, treatment=W)
    res = est.estimate(X[:200])
    assert isinstance(res, EffectEstimate) and res.estimator == "dr_learner_linear"
    # under the null the linear CATE must be within sampling error of 0: its typical size below
    # 2.5 standard errors (taken from the interval width; 2.5 SE, not 1.96, because the average
    # |effect| over covariates adds the slope noise), and the average interval must contain 0
    stderr = (res.upper - res.lower) / (2 * 1.96)
    assert np.abs(res.effect).mean() < 2.5 * stderr.mean()
    assert res.lower.mean() < 0 < res.upper.mean()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(final="tree"), "final must be one of"),
        (dict(target="hr"), "target must be one of"),
        (dict(horizon=None), "horizon is required"),
    ],
)
def test_bad_parameters(kwargs, message):
    X, W, t, d, _, _ = exponential_rmst_design(100, 2, slope=1.0)
    est = SurvivalDRLearner(**{"target": "rmst", "horizon": 1.0, **FAST, **kwargs})
    with pytest.raises(ValueError, match=message):
        est.fit(X, time=t, event=d, treatment=W)


def test_one_arm_is_rejected():
    X, _, t, d, _, _ = exponential_rmst_design(100, 3, slope=1.0)
    with pytest.raises(ValueError, match="only one arm"):
        SurvivalDRLearner(horizon=1.0, **FAST).fit(X, time=t, event=d, treatment=np.zeros(100))


def test_boosted_final_tracks_the_effect_and_gives_no_interval():
    X, W, t, d, tau, h = exponential_rmst_design(2000, 0, slope=1.5)
    est = SurvivalDRLearner(target="rmst", horizon=h, final="boosted", random_state=0, **FAST)
    res = est.fit(X, time=t, event=d, treatment=W).estimate(X[:500])
    assert res.estimator == "dr_learner_boosted"
    assert np.isnan(res.lower).all() and np.isnan(res.upper).all()
    # slow shallow boosting of noisy scores: it must still find the direction of the effect
    # (correlation > 0.6 with the true effect; the forest final above reaches > 0.7)
    assert np.corrcoef(res.effect, tau[:500])[0, 1] > 0.6
