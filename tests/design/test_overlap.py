"""Balance tables, balancing weights, trimming rules and overlap summaries against closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from sklearn.linear_model import LogisticRegression

from hte.design.overlap import (
    ate_weights,
    balance_table,
    crump_alpha,
    effective_sample_size,
    overlap_summary,
    trim_by_propensity,
)
from hte.design.propensity import cross_fit_propensity


def _confounded(n: int, seed: int):
    rng = np.random.default_rng(seed)
    age = rng.normal(65, 9, size=n)
    ecog = rng.binomial(1, 0.35, size=n).astype(float)
    ldh = rng.normal(0, 1, size=n)
    lin = -0.06 * (age - 65) - 0.9 * ecog + 0.5 * ldh + 0.3
    e = 1.0 / (1.0 + np.exp(-lin))
    w = rng.binomial(1, e)
    return pd.DataFrame({"age": age, "ecog": ecog, "ldh": ldh}), w, e


def test_smd_hand_computed():
    # CAR-T: x = 1, 2, 3 (mean 2, var 1); teclistamab: x = 2, 4, 6 (mean 4, var 4).
    # Pooled SD = sqrt((1 + 4) / 2) = sqrt(2.5); SMD = (2 - 4) / sqrt(2.5).
    X = pd.DataFrame({"x": [1.0, 2, 3, 2, 4, 6]})
    w = np.array([1, 1, 1, 0, 0, 0])
    t = balance_table(X, w)
    assert t.loc["x", "mean_cart"] == pytest.approx(2.0)
    assert t.loc["x", "mean_tec"] == pytest.approx(4.0)
    assert t.loc["x", "smd"] == pytest.approx(-2.0 / np.sqrt(2.5))
    assert t.loc["x", "var_ratio"] == pytest.approx(0.25)
    # Weights (1, 1, 2) on CAR-T: weighted mean (1 + 2 + 6) / 4 = 2.25; teclistamab unweighted.
    # The denominator stays the unweighted pooled SD.
    t = balance_table(X, ["cart", "cart", "cart", "tec", "tec", "tec"], weights=[1, 1, 2, 1, 1, 1])
    assert t.loc["x", "mean_cart_w"] == pytest.approx(2.25)
    assert t.loc["x", "smd_w"] == pytest.approx((2.25 - 4.0) / np.sqrt(2.5))
    assert t.loc["x", "smd"] == pytest.approx(-2.0 / np.sqrt(2.5))


def test_balance_table_missing_and_errors():
    X = pd.DataFrame({"x": [1.0, np.nan, 3, 2, 4, 6], "s": ["a"] * 6})
    w = np.array([1, 1, 1, 0, 0, 0])
    with pytest.raises(ValueError, match=r"\['s'\] are not numeric"):
        balance_table(X, w)
    t = balance_table(X[["x"]], w)
    assert t.loc["x", "mean_cart"] == pytest.approx(2.0)  # NaN left out
    assert t.loc["x", "missing_share"] == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="treatment codes"):
        balance_table(X[["x"]], ["cart", "tec", "x", "tec", "tec", "tec"])


def test_ipw_with_true_propensity_balances():
    X, w, e = _confounded(5000, seed=1)
    t = balance_table(X, w, weights=ate_weights(e, w, kind="ipw"))
    assert t["smd"].abs().max() > 0.3  # the design is confounded before weighting
    # Weighted SMDs with the true propensity are sampling noise: SD ~ sqrt(2/n)-ish x weight
    # inflation (~0.03 here); 0.1 is the usual balance threshold.
    assert t["smd_w"].abs().max() < 0.1


def test_ipw_with_cross_fitted_propensity_balances():
    # End to end: the default cross-fitted learner's IPW weights balance the confounded design
    # (max weighted |SMD| measured 0.007-0.038 over 6 seeds, from about 0.5 unweighted).
    X, w, _ = _confounded(5000, seed=3)
    p = cross_fit_propensity(X, w, random_state=0)
    t = balance_table(X, w, weights=ate_weights(p, w, kind="ipw"))
    assert t["smd"].abs().max() > 0.3
    assert t["smd_w"].abs().max() < 0.1


def test_overlap_weights_exact_balance_with_logistic_fit():
    # Score equations of an unpenalized logistic regression with intercept give
    # sum_treated (1 - e) x = sum_control e x and sum_treated (1 - e) = sum_control e,
    # so overlap-weighted means match exactly for every covariate in the model (Li et al. 2018).
    X, w, _ = _confounded(3000, seed=2)
    fit = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, w)
    e_hat = fit.predict_proba(X)[:, 1]
    t = balance_table(X, w, weights=ate_weights(e_hat, w, kind="overlap"))
    # Exact up to the optimizer's tolerance.
    np.testing.assert_allclose(t["smd_w"], 0.0, atol=1e-5)
    assert t["smd"].abs().max() > 0.3


def test_weight_formulas():
    e = np.array([0.2, 0.5, 0.8, 0.25])
    w = np.array([1, 0, 1, 0])
    np.testing.assert_allclose(
        ate_weights(e, w, "ipw"), [0.5 / 0.2, 0.5 / 0.5, 0.5 / 0.8, 0.5 / 0.75]
    )
    np.testing.assert_allclose(ate_weights(e, w, "overlap"), [0.8, 0.5, 0.2, 0.25])
    np.testing.assert_allclose(ate_weights(e, w, "att"), [1.0, 1.0, 1.0, 0.25 / 0.75])
    assert effective_sample_size([1, 1, 1, 1]) == pytest.approx(4.0)
    assert effective_sample_size([2, 1, 1]) == pytest.approx(16 / 6)
    with pytest.raises(ValueError, match="kind"):
        ate_weights(e, w, "ate")
    with pytest.raises(ValueError, match=r"strictly in \(0, 1\)"):
        ate_weights([0.0, 0.5, 0.5, 0.5], w)


def test_fixed_trimming_counts_per_arm():
    e = np.array([0.01, 0.03, 0.5, 0.6, 0.97, 0.99, 0.04, 0.5])
    w = np.array([0, 0, 1, 0, 1, 1, 1, 0])
    r = trim_by_propensity(e, w)
    np.testing.assert_array_equal(r.keep, [False, False, True, True, False, False, False, True])
    assert (r.n_trimmed, r.n_trimmed_tec, r.n_trimmed_cart) == (5, 2, 3)
    assert (r.n_below, r.n_above) == (3, 2)
    assert r.bounds == (0.05, 0.95)
    assert r.reason.startswith("5 patients (2 teclistamab, 3 CAR-T) set aside: propensity outside")
    assert "[0.05, 0.95]" in r.reason
    r = trim_by_propensity(e, w, bounds=(0.0, 1.0))
    assert r.n_trimmed == 0 and r.keep.all() and r.reason.startswith("no patients set aside")
    with pytest.raises(ValueError, match="bounds"):
        trim_by_propensity(e, w, bounds=(0.9, 0.1))
    with pytest.raises(ValueError, match="rule"):
        trim_by_propensity(e, w, rule="optimal")


def test_crump_rule_uniform_propensity():
    # For e ~ Uniform(0, 1), E[g | a < e < 1 - a] = 2 log((1 - a) / a) / (1 - 2a) with
    # g = 1 / (e (1 - e)); the paper's condition 1 / (a (1 - a)) = 2 E[g | ...] gives a ~ 0.1018.
    def condition(a):
        return 1 / (a * (1 - a)) - 4 * np.log((1 - a) / a) / (1 - 2 * a)

    alpha_true = brentq(condition, 1e-4, 0.49)
    rng = np.random.default_rng(5)
    e = rng.uniform(1e-6, 1 - 1e-6, size=100_000)
    # The empirical minimiser's error at n = 1e5 measured ~1e-3 (flat objective near the optimum).
    assert crump_alpha(e) == pytest.approx(alpha_true, abs=0.004)
    w = rng.binomial(1, e)
    r = trim_by_propensity(e, w, rule="crump")
    assert r.bounds[0] == pytest.approx(alpha_true, abs=0.004)
    assert r.n_trimmed == int(np.sum((e < r.bounds[0]) | (e > r.bounds[1])))
    assert "Crump" in r.reason


def test_crump_keeps_everyone_with_good_overlap():
    # e in [0.3, 0.7]: sup g = 1 / 0.21 = 4.8 < 2 E[g] (~ 8.9), so the paper's rule sets alpha = 0.
    e = np.random.default_rng(6).uniform(0.3, 0.7, size=5000)
    assert crump_alpha(e) == 0.0
    r = trim_by_propensity(e, (e > 0.5).astype(int), rule="crump")
    assert r.n_trimmed == 0 and r.bounds == (0.0, 1.0)


def test_overlap_summary():
    e = np.array([0.02, 0.08, 0.3, 0.5, 0.5, 0.7, 0.93, 0.97])
    w = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    s = overlap_summary(e, w)
    assert s.n == {"cart": 4, "tec": 4}
    assert s.share_outside_05_95 == {"all": 0.25, "cart": 0.25, "tec": 0.25}
    assert s.share_outside_10_90 == {"all": 0.5, "cart": 0.5, "tec": 0.5}
    assert s.quantiles.loc["tec", 0.5] == pytest.approx(0.19)
    assert s.hist_cart.sum() == 4 and s.hist_tec.sum() == 4 and len(s.bin_edges) == 21
    assert s.hist_tec[0] == 1 and s.hist_tec[1] == 1  # 0.02 in [0, .05), 0.08 in [.05, .10)
    # Overlap weights: cart (1 - e) = 0.5, 0.3, 0.07, 0.03 -> ESS = 0.9^2 / 0.3558
    assert s.ess_overlap["cart"] == pytest.approx(0.81 / (0.25 + 0.09 + 0.0049 + 0.0009))
    assert s.notes and "outside [0.1, 0.9]" in s.notes[0]
    d = s.as_dict()
    assert d["quantiles"]["cart"]["1.0"] == pytest.approx(0.97)
