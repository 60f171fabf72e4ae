"""Calibration for benefit (hte.evaluation.benefit_calibration) against closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hte.evaluation.benefit_calibration import (
    benefit_calibration,
    concordance,
    group_cuts,
    quantile_groups,
)


def test_perfect_predictions_give_slope_one_intercept_zero():
    rng = np.random.default_rng(0)
    p = rng.normal(size=500)
    cal = benefit_calibration(p, p.copy())
    assert cal.slope == pytest.approx(1.0, abs=1e-12)
    assert cal.intercept == pytest.approx(0.0, abs=1e-12)
    assert cal.e_for_benefit == pytest.approx(0.0, abs=1e-12)
    assert cal.c_for_benefit == 1.0
    assert [g.n for g in cal.groups] == [100] * 5


def test_noisy_scores_of_a_calibrated_model_and_an_overspread_one():
    rng = np.random.default_rng(1)
    n = 20000
    tau = rng.normal(scale=0.3, size=n)
    gamma = tau + rng.normal(scale=1.0, size=n)
    cal = benefit_calibration(tau, gamma)
    assert abs(cal.slope - 1) < 3 * cal.slope_se
    assert abs(cal.intercept) < 3 * cal.intercept_se
    # group intervals cover the group means of tau
    for g, grp in enumerate(cal.groups):
        true_mean = tau[quantile_groups(tau) == g].mean()
        assert grp.observed_lower - 0.01 < true_mean < grp.observed_upper + 0.01
    # predictions twice as spread out: slope 1/2
    cal2 = benefit_calibration(2 * tau, gamma)
    assert abs(cal2.slope - 0.5) < 3 * cal2.slope_se
    assert cal2.e_for_benefit > cal.e_for_benefit


def test_concordance_equals_brute_force():
    rng = np.random.default_rng(2)
    p = np.round(rng.normal(size=60), 1)  # ties on purpose
    o = np.round(p + rng.normal(size=60), 1)
    agree = disagree = 0
    for i, j in itertools.permutations(range(60), 2):
        s = np.sign(p[i] - p[j]) * np.sign(o[i] - o[j])
        agree += s > 0
        disagree += s < 0
    assert concordance(p, o) == pytest.approx(agree / (agree + disagree))
    assert np.isnan(concordance(np.zeros(5), o[:5]))


def test_constant_predictions_have_no_slope_and_groups_by_row_order():
    cal = benefit_calibration(np.zeros(50), np.arange(50.0))
    assert np.isnan(cal.slope)
    assert [g.n for g in cal.groups] == [10] * 5


def test_group_cuts_place_values_in_their_group():
    p = np.arange(100.0)
    groups = quantile_groups(p, 4)
    cuts = group_cuts(p, groups, 4)
    np.testing.assert_array_equal(np.searchsorted(cuts, p), groups)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="non-finite"):
        benefit_calibration(np.array([0.0, np.nan, 1, 2, 3]), np.zeros(5))
