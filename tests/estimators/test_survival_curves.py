"""Step-function helpers against hand-computed values and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from hte.estimators.survival_curves import (
    check_horizon_per_arm,
    evaluate_step,
    restricted_mean,
    stratified_bootstrap,
    survival_at,
)

KNOTS = np.array([1.0, 2.0, 4.0])
VALUES = np.array([[0.9, 0.6, 0.3], [0.5, 0.5, 0.2]])


def test_evaluate_step_is_right_continuous_with_one_before_first_knot():
    got = evaluate_step(KNOTS, VALUES, [0.0, 0.999, 1.0, 1.5, 2.0, 3.99, 4.0, 10.0])
    want = np.array(
        [
            [1.0, 1.0, 0.9, 0.9, 0.6, 0.6, 0.3, 0.3],
            [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2],
        ]
    )
    np.testing.assert_array_equal(got, want)


def test_survival_at_horizon():
    np.testing.assert_array_equal(survival_at(KNOTS, VALUES, 3.0), [0.6, 0.5])


def test_rmst_hand_computed():
    # row 0: 1*1 + 0.9*1 + 0.6*2 + 0.3*(5-4) = 3.4; row 1: 1 + 0.5 + 1.0 + 0.2 = 2.7
    np.testing.assert_allclose(restricted_mean(KNOTS, VALUES, 5.0), [3.4, 2.7], rtol=0, atol=1e-12)
    # horizon on a knot: the step at the knot contributes zero width
    np.testing.assert_allclose(restricted_mean(KNOTS, VALUES, 2.0), [1.9, 1.5], atol=1e-12)
    # horizon before the first knot: area of S = 1
    np.testing.assert_allclose(restricted_mean(KNOTS, VALUES, 0.5), [0.5, 0.5], atol=1e-12)


def test_rmst_exact_on_a_fine_exponential_staircase():
    # S(t) = exp(-lam t) sampled as a right-continuous step on a grid of width dt: the exact area
    # of that staircase is sum_k dt * exp(-lam k dt) (k = 0..K-1), a geometric series; the
    # integration must reproduce it to rounding error, and sit within dt of the smooth RMST.
    lam, dt, horizon = 0.1, 0.01, 12.0
    knots = np.arange(1, 2000) * dt
    values = np.exp(-lam * knots)[None, :]
    k = round(horizon / dt)
    geometric = dt * (1 - np.exp(-lam * dt * k)) / (1 - np.exp(-lam * dt))
    got = restricted_mean(knots, values, horizon)[0]
    assert got == pytest.approx(geometric, abs=1e-9)
    assert abs(got - (1 - np.exp(-lam * horizon)) / lam) < dt


def test_bad_knots_and_horizon_rejected():
    with pytest.raises(ValueError, match="strictly increasing"):
        evaluate_step([1.0, 1.0], [[0.5, 0.4]], [0.5])
    with pytest.raises(ValueError, match="one column per knot"):
        evaluate_step([1.0, 2.0], [[0.5]], [0.5])
    with pytest.raises(ValueError, match="horizon must be > 0"):
        restricted_mean(KNOTS, VALUES, 0.0)


def test_horizon_beyond_one_arm_follow_up_is_named():
    time = np.array([5.0, 30.0, 10.0, 12.0])
    treatment = np.array([1, 0, 1, 0])
    check_horizon_per_arm(time, treatment, 10.0)
    with pytest.raises(ValueError, match=r"CAR-T \(1\) arm \(10.00\)"):
        check_horizon_per_arm(time, treatment, 11.0)


def test_stratified_bootstrap_keeps_arm_sizes():
    treatment = np.array([0] * 7 + [1] * 3)
    rows = stratified_bootstrap(treatment, np.random.default_rng(0))
    assert np.bincount(treatment[rows]).tolist() == [7, 3]
