"""Learner selection by held-out DR loss (hte.evaluation.selection) on designs with a known best
candidate: a linear truth a linear model must win, a constant truth the constant must win in most
seeds, a memorizing learner that must not win by leakage, and the stack."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.neighbors import KNeighborsRegressor

from hte.evaluation.selection import (
    CONSTANT,
    STACK,
    Residuals,
    loo_constant,
    loo_constant_r,
    loss_table,
    r_loss,
    select_model,
    selection_summary,
)


def _cross_fit(model, X, y, seed, n_folds=2):
    """Out-of-fold predictions (each row predicted by a model fitted on the other folds)."""
    rng = np.random.default_rng(seed)
    folds = rng.permutation(len(y)) % n_folds
    out = np.empty(len(y))
    for k in range(n_folds):
        test = folds == k
        out[test] = model.fit(X[~test], y[~test]).predict(X[test])
    return out


def _design(seed, n=2000, p=5, slope=0.5, noise=2.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    tau = 0.2 + slope * X[:, 0]
    gamma = tau + rng.normal(scale=noise, size=n)  # DR scores: unbiased, noisy
    return X, tau, gamma


def test_loo_constant_leaves_the_patient_out():
    g = np.array([1.0, 2.0, 3.0, 6.0])
    np.testing.assert_allclose(loo_constant(g), [11 / 3, 10 / 3, 3.0, 2.0])


def test_linear_truth_linear_model_beats_constant():
    # Var(tau) = 0.25 against score noise variance 4 (per-patient SNR 0.06, as on RRMM data)
    for seed in range(3):
        X, tau, gamma = _design(seed)
        preds = {
            "linear": _cross_fit(LinearRegression(), X, gamma, seed),
            "knn": _cross_fit(KNeighborsRegressor(50), X, gamma, seed),
        }
        sel = select_model(gamma, preds)
        assert sel.chosen == "linear", sel.reason
        # the paired difference against the constant estimates the MSE difference
        row = sel.loss_of("linear")
        true_diff = np.mean((tau - preds["linear"]) ** 2) - np.mean(
            (tau - loo_constant(gamma)) ** 2
        )
        assert abs(row.diff_vs_constant - true_diff) < 3 * row.diff_vs_constant_se


def test_constant_truth_constant_wins_in_most_seeds():
    # tolerance: with a 2-SE rule a flexible learner wins by chance in about 2.5% of draws per
    # learner; we require the constant in at least 4 of 5 seeds
    wins = 0
    for seed in range(5):
        X, _, gamma = _design(seed, slope=0.0)
        preds = {
            "linear": _cross_fit(LinearRegression(), X, gamma, seed),
            "knn": _cross_fit(KNeighborsRegressor(50), X, gamma, seed),
        }
        sel = select_model(gamma, preds)
        wins += sel.chosen == CONSTANT
        if sel.chosen == CONSTANT:
            assert "does not support individual differences" in sel.reason
    assert wins >= 4


def test_memorizing_learner_does_not_win_by_leakage():
    X, _, gamma = _design(0, slope=0.3)
    # in sample a 1-nearest-neighbour regressor reproduces every score: loss 0, it would "win"
    in_sample = KNeighborsRegressor(1).fit(X, gamma).predict(X)
    assert loss_table(gamma, {"memo": in_sample, CONSTANT: loo_constant(gamma)})[0].name == "memo"
    # held out it only repeats another patient's noise: twice the noise variance, far worse
    sel = select_model(gamma, {"memo": _cross_fit(KNeighborsRegressor(1), X, gamma, 0)})
    assert sel.chosen == CONSTANT
    assert sel.loss_of("memo").diff_vs_constant > 0


def test_stack_puts_its_weight_on_the_informative_learner():
    X, tau, gamma = _design(1, slope=0.8)
    rng = np.random.default_rng(1)
    preds = {
        "linear": _cross_fit(LinearRegression(), X, gamma, 1),
        "noise": rng.normal(scale=2.0, size=len(gamma)),  # weight SE ~0.02
    }
    sel = select_model(gamma, preds)
    assert sel.stack is not None
    assert sel.stack.weights["linear"] > 0.7
    assert sel.stack.weights["noise"] < 0.1
    # the stack's own loss is held out: it cannot beat the truth-based optimum by much
    stack_row = sel.loss_of(STACK)
    assert stack_row.loss > np.mean((gamma - tau) ** 2) - 3 * stack_row.loss_se


def test_summary_is_deterministic_and_sorted():
    X, _, gamma = _design(2)
    preds = {"linear": _cross_fit(LinearRegression(), X, gamma, 2)}
    a = selection_summary(select_model(gamma, preds))
    b = selection_summary(select_model(gamma, preds))
    assert a == b
    losses = [r["loss"] for r in a["losses"]]
    assert losses == sorted(losses)
    assert {r["candidate"] for r in a["losses"]} == {"linear", CONSTANT, STACK}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="predictions\\['x'\\] is not finite"):
        select_model(np.zeros(10), {"x": np.full(10, np.nan)})
    with pytest.raises(ValueError, match="reserved"):
        select_model(np.zeros(10), {CONSTANT: np.zeros(10)})


def test_r_loss_is_minimised_by_the_truth():
    rng = np.random.default_rng(0)
    n = 5000
    x = rng.normal(size=n)
    w_res = rng.binomial(1, 0.5, n) - 0.5
    tau = 1 + x
    y_res = w_res * tau + rng.normal(size=n)
    assert r_loss(y_res, w_res, tau) < r_loss(y_res, w_res, np.ones(n))


# --- the R-loss -------------------------------------------------------------------------------
def _rct_design(seed, n=2000, slope=0.5, noise=1.0):
    """Outcome model with oracle nuisances: DR scores and R-loss residuals of the same patients."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    e = 1 / (1 + np.exp(-0.5 * X[:, 1]))
    W = rng.binomial(1, e)
    tau = 0.2 + slope * X[:, 0]
    mu0 = X[:, 2]
    y = mu0 + W * tau + rng.normal(scale=noise, size=n)
    mu1 = mu0 + tau
    gamma = mu1 - mu0 + (W - e) / (e * (1 - e)) * (y - np.where(W == 1, mu1, mu0))
    residuals = Residuals(y - (mu0 + e * tau), W - e)
    return X, tau, gamma, residuals


def test_r_loss_selection_picks_the_linear_model_and_estimates_the_weighted_mse_gap():
    for seed in range(3):
        X, tau, gamma, res = _rct_design(seed)
        preds = {
            "linear": _cross_fit(LinearRegression(), X, gamma, seed),
            "knn": _cross_fit(KNeighborsRegressor(50), X, gamma, seed),
        }
        sel = select_model(gamma, preds, residuals=res)
        assert sel.loss == "r"
        assert sel.chosen == "linear", sel.reason
        assert "R-loss" in sel.reason
        # R-loss differences estimate differences of E[(W - e)^2 (tau - tau_hat)^2]
        row = sel.loss_of("linear")
        w2 = res.treatment**2
        true_diff = np.mean(w2 * (tau - preds["linear"]) ** 2) - np.mean(
            w2 * (tau - loo_constant_r(res)) ** 2
        )
        assert abs(row.diff_vs_constant - true_diff) < 3 * row.diff_vs_constant_se


def test_r_loss_keeps_the_constant_under_a_constant_truth():
    wins = 0
    for seed in range(5):
        X, _, gamma, res = _rct_design(seed, slope=0.0)
        preds = {
            "linear": _cross_fit(LinearRegression(), X, gamma, seed),
            "knn": _cross_fit(KNeighborsRegressor(50), X, gamma, seed),
        }
        wins += select_model(gamma, preds, residuals=res).chosen == CONSTANT
    assert wins >= 4  # a 2-SE rule: a chance win in ~2.5% of draws per learner


def test_r_loss_memorizer_cannot_win_held_out():
    X, _, gamma, res = _rct_design(0, slope=0.3)
    sel = select_model(
        gamma, {"memo": _cross_fit(KNeighborsRegressor(1), X, gamma, 0)}, residuals=res
    )
    assert sel.chosen == CONSTANT
    assert sel.loss_of("memo").diff_vs_constant > 0


def test_r_loss_constant_is_the_leave_one_out_slope():
    res = Residuals(np.array([1.0, -2.0, 0.5, 3.0]), np.array([0.5, -0.5, 0.25, 0.4]))
    ry, rw = res.outcome, res.treatment
    for i in range(4):
        others = np.arange(4) != i
        slope = np.sum(ry[others] * rw[others]) / np.sum(rw[others] ** 2)
        assert loo_constant_r(res)[i] == pytest.approx(slope)


def test_r_loss_stack_weights_the_informative_learner():
    X, _, gamma, res = _rct_design(1, slope=0.8)
    rng = np.random.default_rng(1)
    preds = {
        "linear": _cross_fit(LinearRegression(), X, gamma, 1),
        "noise": rng.normal(scale=2.0, size=len(gamma)),
    }
    sel = select_model(gamma, preds, residuals=res)
    assert sel.stack.weights["linear"] > 0.7
    assert sel.stack.weights["noise"] < 0.1
    assert selection_summary(sel)["loss"] == "r"


def test_residuals_are_checked():
    with pytest.raises(ValueError, match="outcome residuals are not finite at rows \\[1\\]"):
        Residuals(np.array([0.0, np.nan]), np.array([0.5, -0.5]))
    with pytest.raises(ValueError, match="all zero"):
        Residuals(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="residuals have 2 rows, the DR scores 3"):
        select_model(np.zeros(3), {}, residuals=Residuals(np.zeros(2), np.ones(2)))


# --------------------------------------------------------------------------------------------
# the slope gate: a held-out test of heterogeneity rather than of beating the constant


def _two_learners(seed: int, n: int, slope: float):
    X, tau, gamma = _design(seed, n=n, slope=slope)
    preds = {
        "linear": _cross_fit(LinearRegression(), X, gamma, seed),
        "knn": _cross_fit(KNeighborsRegressor(50), X, gamma, seed),
    }
    return tau, gamma, preds


@pytest.mark.slow
def test_slope_gate_false_positives_under_a_constant_truth():
    # Bonferroni over two learners at family-wise one-sided 2.5%: about 2.5-3% of draws show a
    # learner (3.0% measured over these 200 seeds); the tolerance is 6% (12 of 200; a 3% rate
    # exceeds it with probability about 0.015)
    shown = sum(
        select_model(gamma, preds, gate="slope", stack=False).chosen != CONSTANT
        for gamma, preds in (_two_learners(seed, 1000, 0.0)[1:] for seed in range(200))
    )
    assert shown <= 12


@pytest.mark.slow
def test_slope_gate_finds_weak_heterogeneity_the_loss_gate_misses():
    # Var(tau) / noise variance = 0.0056: the learners rank patients better than chance, but
    # their held-out MSE barely differs from the constant's (28% against 1% over 200 seeds)
    by_gate = {"loss": 0, "slope": 0}
    for seed in range(60):
        _, gamma, preds = _two_learners(seed, 1000, 0.15)
        for gate in by_gate:
            by_gate[gate] += select_model(gamma, preds, gate=gate, stack=False).chosen != CONSTANT
    assert by_gate["slope"] >= 9  # at least 15% of seeds
    assert by_gate["loss"] <= 3


def test_slope_gate_shows_a_learner_that_ranks_well_but_spreads_too_far():
    # held-out predictions 3x too spread out: worse than the constant in MSE, right in ranking
    _, tau, gamma = _design(4, n=3000, slope=0.5)
    rng = np.random.default_rng(4)
    spread = 0.2 + 3.0 * (tau - 0.2) + rng.normal(scale=0.3, size=len(tau))
    by_loss = select_model(gamma, {"spread": spread}, stack=False)
    by_slope = select_model(gamma, {"spread": spread}, gate="slope", stack=False)
    assert by_loss.chosen == CONSTANT
    assert by_slope.chosen == "spread", by_slope.reason
    assert by_slope.gate == "slope" and by_slope.gate_z > by_slope.threshold_se
    assert "calibration slope" in by_slope.reason


def test_slope_gate_refuses_a_memorizer_and_names_the_rule():
    X, _, gamma = _design(0, slope=0.0)
    sel = select_model(
        gamma, {"memo": _cross_fit(KNeighborsRegressor(1), X, gamma, 0)}, gate="slope"
    )
    assert sel.chosen == CONSTANT
    assert "does not support individual differences" in sel.reason
    summary = selection_summary(sel)
    assert summary["gate"] == "slope" and "Bonferroni" in summary["rule"]
    with pytest.raises(ValueError, match="gate must be one of"):
        select_model(gamma, {"memo": gamma}, gate="ranking")


def test_a_preferred_learner_passing_its_own_test_is_shown():
    # "close" (the truth plus a little noise) has the lowest loss; the preferred "avg" (a little
    # more noise) passes its own slope test at its share of the level and is shown
    _, tau, gamma = _design(4, n=3000, slope=0.5)
    rng = np.random.default_rng(4)
    close = tau + rng.normal(scale=0.05, size=len(tau))
    avg = tau + rng.normal(scale=0.1, size=len(tau))
    plain = select_model(gamma, {"close": close, "avg": avg}, gate="slope", stack=False)
    assert plain.chosen == "close" and plain.preferred is None
    assert plain.preferred_threshold_se is None
    sel = select_model(
        gamma, {"close": close, "avg": avg}, gate="slope", stack=False, preferred="avg"
    )
    assert sel.chosen == "avg" and sel.gate_learner == "avg", sel.reason
    assert "the prespecified avg's held-out predictions rank patients" in sel.reason
    summary = selection_summary(sel)
    assert summary["preferred"] == "avg" and summary["gate_learner"] == "avg"
    # weighted Bonferroni over two learners at one-sided 2.5%: 2% for avg, 0.5% for the other
    assert summary["preferred_threshold_se"] == pytest.approx(2.054, abs=1e-3)
    assert sel.threshold_se == pytest.approx(2.576, abs=1e-3)
    assert "0.8 of the one-sided family-wise level" in summary["rule"]


def test_a_preferred_learner_replaces_the_gates_pick_only_when_not_clearly_worse():
    # a weak preferred learner (a third of the spread, noisy) fails its own test; "close" passes
    # the others' bound, and the preferred is within 2 SE of its loss: shown in its place
    _, tau, gamma = _design(4, n=3000, slope=0.15)
    rng = np.random.default_rng(4)
    close = tau + rng.normal(scale=0.02, size=len(tau))
    weak = tau.mean() + 0.3 * (tau - tau.mean()) + rng.normal(scale=0.06, size=len(tau))
    sel = select_model(
        gamma, {"close": close, "weak": weak}, gate="slope", stack=False, preferred="weak"
    )
    assert sel.gate_learner == "close" and sel.chosen == "weak", sel.reason
    assert "shown instead: the prespecified weak" in sel.reason
    # a preferred learner that is clearly worse (predicting the effect upside down) stays unshown
    _, tau, gamma = _design(4, n=3000, slope=0.5)
    close = tau + rng.normal(scale=0.05, size=len(tau))
    wrong = 0.2 - 3.0 * (tau - 0.2)
    sel = select_model(
        gamma, {"close": close, "wrong": wrong}, gate="slope", stack=False, preferred="wrong"
    )
    assert sel.chosen == "close" and "prespecified wrong is not shown" in sel.reason
    # no learner passes the gate: the preference does not bring one in
    _, null_gamma, null_preds = _two_learners(0, 1000, 0.0)
    sel = select_model(null_gamma, null_preds, gate="slope", preferred="linear")
    assert sel.chosen == CONSTANT
    assert "more than 2.05 for the prespecified linear, 2.58 for the others" in sel.reason


@pytest.mark.slow
def test_slope_gate_with_a_preferred_learner_keeps_its_level_under_a_constant_truth():
    # the preferred learner at 2% and the other at 0.5% (one-sided): 2.5% family-wise. Measured
    # over these 200 seeds: 8 draws show a learner (4.0%; the even split: 6, 3.0%); the tolerance
    # is 6% (12 of 200) as for the even split
    shown = sum(
        select_model(gamma, preds, gate="slope", stack=False, preferred="knn").chosen != CONSTANT
        for gamma, preds in (_two_learners(seed, 1000, 0.0)[1:] for seed in range(200))
    )
    assert shown <= 12
