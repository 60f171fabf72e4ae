"""BLP calibration test: known-truth designs (calibrated, null, scaled predictions), both forms."""

from __future__ import annotations

import numpy as np
import pytest

from hte.evaluation.blp_calibration import blp_calibration_test
from hte.evaluation.rate import dr_scores_from_pseudo_outcomes


def _design(n, rng, effect=True):
    """tau(x) = 1 + 2 (x - 1/2), x ~ U(0, 1) (mean 1); known e(x) and m(x)."""
    x = rng.random(n)
    tau = 1.0 + 2.0 * (x - 0.5) if effect else np.zeros(n)
    e = 0.2 + 0.6 * x
    w = (rng.random(n) < e).astype(int)
    mu0 = np.cos(2 * x)
    y = mu0 + w * tau + rng.normal(scale=1.0, size=n)
    m = mu0 + e * tau
    scores = dr_scores_from_pseudo_outcomes(y, w, e, mu0 + tau, mu0)
    return x, tau, y, w, e, m, scores


@pytest.mark.parametrize("form", ["scores", "residualized"])
def test_true_cate_is_calibrated(form):
    rng = np.random.default_rng(0)
    _x, tau, y, w, e, m, scores = _design(4000, rng)
    if form == "scores":
        res = blp_calibration_test(tau, scores=scores)
    else:
        res = blp_calibration_test(tau, y=y, w=w, e=e, m=m)
    assert res.form == form
    # predictions equal to the truth: both coefficients are 1 in expectation; 4 robust standard
    # errors (~0.1-0.2 here) bound a false failure below 1e-4
    assert abs(res.differential_coef - 1) < 4 * res.differential_se
    assert abs(res.mean_coef - 1) < 4 * res.mean_se
    assert res.differential_se < 0.25  # the design is informative enough for the check to bite
    assert res.differential_p_value < 0.05 and res.heterogeneity_detected()


def test_scaled_predictions_give_the_inverse_scale():
    # predictions 1 + 0.5 * (tau - 1): the BLP slope of tau on the deviations is 2
    rng = np.random.default_rng(1)
    _x, tau, _y, _w, _e, _m, scores = _design(4000, rng)
    res = blp_calibration_test(1 + 0.5 * (tau - 1), scores=scores)
    assert abs(res.differential_coef - 2) < 4 * res.differential_se


@pytest.mark.parametrize("form", ["scores", "residualized"])
def test_null_effect_finds_no_heterogeneity_in_most_draws(form):
    # no effect but predictions vary with x (an overfit model): the one-sided 5% test should reject
    # in ~5% of draws; rejections ~ Binomial(40, 0.05) with P(> 6) about 1%, so <= 6 of 40.
    rng = np.random.default_rng(2)
    rejected = 0
    for _ in range(40):
        x, _, y, w, e, m, scores = _design(500, rng, effect=False)
        pred = 0.3 + x + 0.2 * rng.normal(size=x.size)
        if form == "scores":
            res = blp_calibration_test(pred, scores=scores)
        else:
            res = blp_calibration_test(pred, y=y, w=w, e=e, m=m)
        rejected += res.heterogeneity_detected()
    assert rejected <= 6


def test_cluster_robust_errors_are_used():
    rng = np.random.default_rng(3)
    _x, tau, _y, _w, _e, _m, scores = _design(1000, rng)
    cl = np.repeat(np.arange(100), 10)
    plain = blp_calibration_test(tau, scores=scores)
    clus = blp_calibration_test(tau, scores=scores, clusters=cl)
    assert clus.differential_coef == pytest.approx(plain.differential_coef)
    assert clus.differential_se != pytest.approx(plain.differential_se)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="either scores or"):
        blp_calibration_test([1.0, 2.0], scores=[1.0, 2.0], y=[1.0, 2.0])
    with pytest.raises(ValueError, match="all of y, w, e and m"):
        blp_calibration_test([1.0, 2.0], y=[1.0, 2.0])
    with pytest.raises(ValueError, match="cate_pred is constant"):
        blp_calibration_test([1.0, 1.0, 1.0], scores=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"w must be 0/1; rows \[1\]"):
        blp_calibration_test([1.0, 2.0], y=[0.0, 1.0], w=[1, 3], e=[0.5, 0.5], m=[0.0, 0.0])
    with pytest.raises(ValueError, match="scores must have length 2"):
        blp_calibration_test([1.0, 2.0], scores=[1.0])
