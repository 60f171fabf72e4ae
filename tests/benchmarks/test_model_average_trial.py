"""The model-average trial's scoring (benchmarks.model_average_trial) on known numbers."""

from __future__ import annotations

import numpy as np

from benchmarks.model_average_trial import average_scores
from hte.estimators.result import EffectEstimate


def _estimate(effect, half_width=None):
    effect = np.asarray(effect, dtype=float)
    width = np.full(effect.shape, np.nan if half_width is None else half_width)
    return EffectEstimate(effect, effect - width, effect + width, "rmst", 24.0, 0.05, "x")


def test_errors_that_cancel_average_to_the_truth():
    truth = np.array([-1.0, 0.0, 1.0, 2.0])  # variance 1.25
    estimates = {
        "bcf": _estimate(truth + 1.0, half_width=0.5),  # always 1 too high, its band misses
        "cox_interaction": _estimate(truth - 1.0),  # always 1 too low
    }
    scores = average_scores(estimates, truth)
    assert scores["bcf"] == {"nmse": 0.8, "coverage": 0.0, "excludes_0": 0.75}
    assert scores["cox_interaction"] == {"nmse": 0.8}
    # the average is exact; BCF's band (+-0.5) moved to it covers every patient, and excludes 0
    # for the three patients whose true effect is at least 1 away from 0. Widened by the members'
    # spread (variance 1 for every patient) each half is sqrt(0.25 + 1.96^2) = 2.02: no band
    # excludes 0
    assert scores["bcf+cox_interaction"] == {
        "nmse": 0.0,
        "coverage": 1.0,
        "excludes_0": 0.75,
        "coverage_total": 1.0,
        "excludes_0_total": 0.0,
    }
