"""The warm-start benchmark (benchmarks.bcf_warm_start): the shipped forest sizes, and a sampled
posterior mean that finds a known constant effect."""

from __future__ import annotations

import numpy as np

from benchmarks.bcf_warm_start import SHIPPED_TREES, posterior_mean
from hte.estimators import CRSBayesianCausalForest


def test_the_benchmark_samples_the_forests_the_estimators_ship():
    crs = CRSBayesianCausalForest().get_params()
    assert SHIPPED_TREES == {k: crs[k] for k in SHIPPED_TREES}


def test_a_constant_effect_is_found_after_few_sweeps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    e = np.full(300, 0.5)
    W = (rng.random(300) < e).astype(float)
    y = X[:, 0] + 2.0 * W + rng.normal(scale=0.5, size=300)
    mean, seconds = posterior_mean(X, W, y, e, sweeps=3, seed=1)
    assert mean.shape == (300,) and seconds > 0
    assert abs(mean.mean() - 2.0) < 0.3
