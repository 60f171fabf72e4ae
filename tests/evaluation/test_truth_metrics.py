"""Truth metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from hte.estimators.result import EffectEstimate
from hte.evaluation.truth_metrics import (
    ate_bias,
    interval_coverage,
    interval_width,
    mse,
    normalized_mse,
    share_excluding_zero,
    truth_is_constant,
    truth_metrics,
)

TRUTH = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, population variance 1.25
PRED = np.array([1.5, 2.0, 2.0, 5.0])  # errors 0.5, 0, -1, 1 -> MSE 2.25 / 4 = 0.5625
LOWER = np.array([0.5, 2.5, -1.0, 3.0])
UPPER = np.array([2.0, 3.0, 2.5, 4.5])  # covers rows 0 and 3; widths 1.5, .5, 3.5, 1.5


def test_point_metrics_closed_form():
    assert mse(PRED, TRUTH) == pytest.approx(0.5625)
    assert normalized_mse(PRED, TRUTH) == pytest.approx(0.5625 / 1.25)
    assert normalized_mse(TRUTH, TRUTH) == 0.0
    # Predicting the true mean for everyone scores exactly 1.
    assert normalized_mse(np.full(4, 2.5), TRUTH) == pytest.approx(1.0)
    assert ate_bias(PRED, TRUTH) == pytest.approx(2.625 - 2.5)


def test_interval_metrics_closed_form():
    assert interval_coverage(LOWER, UPPER, TRUTH) == pytest.approx(0.5)
    assert interval_width(LOWER, UPPER) == pytest.approx(7.0 / 4)
    # Excluding zero: rows 0 (0.5 > 0), 1 and 3; row 2 spans 0.
    assert share_excluding_zero(LOWER, UPPER) == pytest.approx(0.75)
    # Boundaries count as covered.
    assert interval_coverage([1.0], [1.0], [1.0]) == 1.0


def test_nan_intervals():
    lo = LOWER.copy()
    lo[1] = np.nan
    assert interval_coverage(lo, UPPER, TRUTH) == pytest.approx(2 / 3)
    nan = np.full(4, np.nan)
    assert np.isnan(interval_coverage(nan, nan, TRUTH))
    assert np.isnan(interval_width(nan, nan))
    assert np.isnan(share_excluding_zero(nan, nan))


def test_errors():
    with pytest.raises(ValueError, match=r"Var\(truth\) = 0.*use mse"):
        normalized_mse(PRED, np.ones(4))
    with pytest.raises(ValueError, match="pred must have shape"):
        mse(PRED[:3], TRUTH)
    with pytest.raises(ValueError, match=r"pred has non-finite values in rows \[2\]"):
        mse([1.0, 2.0, np.nan, 4.0], TRUTH)
    with pytest.raises(ValueError, match=r"lower > upper in rows \[0\]"):
        interval_width([3.0, 0.0], [1.0, 1.0])


def _estimate(effect, lower, upper) -> EffectEstimate:
    return EffectEstimate(
        effect=np.asarray(effect, dtype=float),
        lower=np.asarray(lower, dtype=float),
        upper=np.asarray(upper, dtype=float),
        target="rmst",
        horizon=24.0,
        alpha=0.05,
        estimator="toy",
    )


def test_truth_metrics_bundle():
    m = truth_metrics(_estimate(PRED, LOWER, UPPER), TRUTH)
    assert m["mse"] == pytest.approx(0.5625)
    assert m["rmse"] == pytest.approx(0.75)
    assert m["normalized_mse"] == pytest.approx(0.45)
    assert m["coverage"] == pytest.approx(0.5)
    assert m["mean_width"] == pytest.approx(1.75)
    assert m["share_excluding_zero"] == pytest.approx(0.75)
    assert m["ate_bias"] == pytest.approx(0.125)
    assert m["correlation"] == pytest.approx(np.corrcoef(PRED, TRUTH)[0, 1])
    assert (m["n"], m["n_with_interval"], m["estimator"], m["target"]) == (4, 4, "toy", "rmst")
    assert m["note"] == ""


def test_truth_metrics_without_intervals_and_constant_truth():
    nan = np.full(4, np.nan)
    m = truth_metrics(_estimate(PRED, nan, nan), np.ones(4))
    assert np.isnan(m["coverage"]) and np.isnan(m["normalized_mse"])
    assert m["mse"] == pytest.approx(np.mean((PRED - 1) ** 2))
    assert "no intervals" in m["note"] and "normalized_mse undefined" in m["note"]


def test_round_off_in_a_null_truth_counts_as_constant():
    # exact truths computed by quadrature carry ~1e-16 noise under the null; dividing by that
    # variance would turn a good estimate into an astronomically bad normalized MSE
    truth = np.array([0.0, 1e-16, -2e-17, 3.5e-15])
    assert truth_is_constant(truth)
    assert not truth_is_constant(np.array([0.0, 1e-3]))
    with pytest.raises(ValueError, match="normalized"):
        normalized_mse(np.zeros(4), truth)
