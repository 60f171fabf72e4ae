"""Refuters on simulated data with a known effect: the doubly robust estimators pass them, and
estimators broken on purpose fail them (so each refuter can fail)."""

import numpy as np
import pytest
from scipy.special import expit

from hte.evaluation.average_effects import aipcw_survival_difference, aipw_risk_difference
from hte.evaluation.refutation import (
    REFUTERS,
    data_subsets,
    placebo_treatment,
    random_common_cause,
    refute,
    reruns,
    verdict,
)


def _binary_design(n=2000, seed=1):
    """Confounded binary outcome: x0 raises both the chance of treatment and the risk."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    W = (rng.random(n) < expit(0.9 * X[:, 0] - 0.4 * X[:, 1])).astype(int)
    base = -0.3 + 1.0 * X[:, 0] + 0.5 * X[:, 2]
    p1, p0 = expit(base + 0.8), expit(base)
    y = (rng.random(n) < np.where(W == 1, p1, p0)).astype(int)
    return X, W, y, float(np.mean(p1 - p0))


def _linear_design(n=1500, seed=2, confounder_last=True):
    """Continuous outcome y = 2 c + 1 * W + noise with W depending on the confounder c."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(n)
    other = rng.standard_normal((n, 2))
    W = (rng.random(n) < expit(1.5 * c)).astype(int)
    y = 2.0 * c + 1.0 * W + rng.standard_normal(n)
    X = np.column_stack([other, c]) if confounder_last else np.column_stack([c, other])
    return X, W, y


def _ols_effect(X, W, y, seed):
    """Regression adjustment: OLS of y on (1, W, X); the W coefficient and its classical SE."""
    Z = np.column_stack([np.ones(len(y)), W, X])
    beta, *_ = np.linalg.lstsq(Z, y, rcond=None)
    resid = y - Z @ beta
    sigma2 = resid @ resid / (len(y) - Z.shape[1])
    cov = sigma2 * np.linalg.inv(Z.T @ Z)
    return float(beta[1]), float(np.sqrt(cov[1, 1]))


def _aipw(X, W, y, seed):
    return aipw_risk_difference(X, W, y, seed).as_pair()


def test_aipw_passes_all_refuters_on_a_known_effect():
    X, W, y, truth = _binary_design()
    results = refute(_aipw, X, W, (y,), seed=3, n_subsets=3)
    by_name = {r.refuter: r for r in results}
    orig, se = results[0].original, results[0].original_se
    # the original recovers the truth (0.14) within 3 SE (SE about 0.025 at n = 2000)
    assert abs(orig - truth) < 3 * se
    placebo = by_name["placebo_treatment"]
    # The placebo is a 95% test: over 30 permutations of this design its z-values had mean -0.11
    # and sd 1.01 (2 of 30 outside +-1.96), and this seed's draw is z = 2.1, one of the 5%.
    # So the check here is |z| < 3 (a 0.3% event for a calibrated placebo), not ``passed``.
    placebo_se = (placebo.upper - placebo.lower) / (2 * 1.959964)
    assert abs(placebo.estimate) < 3 * placebo_se
    rcc = by_name["random_common_cause"]
    # a noise covariate moves the refitted boosting a little; the tolerance is 1 original SE
    assert rcc.passed and abs(rcc.estimate - orig) < se
    subsets = by_name["data_subsets"]
    assert subsets.passed and abs(subsets.estimate - orig) < se
    assert subsets.lower <= subsets.estimate <= subsets.upper


def test_placebo_fails_for_an_estimator_that_ignores_the_treatment_it_is_given():
    X, W, y, _ = _binary_design(n=1000)

    def leaky(X_, W_, y_, seed):  # bug: uses the real treatment from the enclosing scope
        return _ols_effect(X_, W, y_, seed)

    result = placebo_treatment(leaky, X, W, (y,), seed=0)
    assert not result.passed
    assert result.estimate == pytest.approx(result.original)
    # the honest version of the same estimator passes and finds about 0 (SE about 0.03)
    honest = placebo_treatment(_ols_effect, X, W, (y,), seed=0)
    assert honest.passed and abs(honest.estimate) < 0.1


def test_random_common_cause_flags_an_estimator_that_adjusts_for_the_last_column_only():
    X, W, y = _linear_design()

    def last_column_only(X_, W_, y_, seed):  # bug: adjusts for X[:, -1] alone
        return _ols_effect(X_[:, -1:], W_, y_, seed)

    broken = random_common_cause(last_column_only, X, W, (y,), seed=0)
    # with the noise column last, the confounder is dropped: bias of several SE (true effect 1)
    assert not broken.passed
    assert abs(broken.estimate - 1.0) > 0.5
    fine = random_common_cause(_ols_effect, X, W, (y,), seed=0)
    assert fine.passed and abs(fine.estimate - fine.original) < 0.1 * fine.original_se
    assert abs(fine.original - 1.0) < 3 * fine.original_se


def test_data_subsets_flag_an_estimator_that_depends_on_the_sample_size():
    X, W, y = _linear_design()
    n_full = len(y)

    def fixed_denominator(X_, W_, y_, seed):  # bug: scales with the rows it is given
        est, se = _ols_effect(X_, W_, y_, seed)
        return est * len(y_) / n_full, se

    broken = data_subsets(fixed_denominator, X, W, (y,), seed=0, n_subsets=3, fraction=0.7)
    assert not broken.passed  # 0.7 x the effect is far outside the original interval
    fine = data_subsets(_ols_effect, X, W, (y,), seed=0, n_subsets=3, fraction=0.7)
    assert fine.passed


def test_aipcw_survival_difference_and_its_refutations():
    # exponential deaths, hazard 0.06 exp(0.5 x0) halved by treatment (more so when x1 > 0),
    # treatment more likely at high x0, independent uniform censoring up to 30 months
    rng = np.random.default_rng(4)
    n, horizon = 1000, 12.0
    X = rng.standard_normal((n, 3))
    W = (rng.random(n) < expit(0.8 * X[:, 0])).astype(int)
    rate0 = 0.06 * np.exp(0.5 * X[:, 0])
    rate1 = rate0 * np.where(X[:, 1] > 0, 0.4, 0.7)
    T = rng.exponential(1 / np.where(W == 1, rate1, rate0))
    C = rng.uniform(5, 30, n)
    time, event = np.minimum(T, C), (T <= C).astype(int)
    truth = float(np.mean(np.exp(-rate1 * horizon) - np.exp(-rate0 * horizon)))

    def fn(X_, W_, t_, d_, seed):
        return aipcw_survival_difference(X_, W_, t_, d_, seed, horizon=horizon).as_pair()

    results = refute(fn, X, W, (time, event), seed=5, n_subsets=2)
    orig, se = results[0].original, results[0].original_se
    assert abs(orig - truth) < 3 * se  # truth about 0.18, SE about 0.03
    assert all(r.passed for r in results), [r.detail for r in results]


def test_same_seed_same_results_and_errors_are_named():
    X, W, y = _linear_design(n=400)
    first = refute(_ols_effect, X, W, (y,), seed=7, n_subsets=2)
    assert first == refute(_ols_effect, X, W, (y,), seed=7, n_subsets=2)
    assert first != refute(_ols_effect, X, W, (y,), seed=8, n_subsets=2)
    with pytest.raises(TypeError, match="outcome must be a tuple"):
        refute(_ols_effect, X, W, y, seed=0)
    with pytest.raises(ValueError, match="outcome\\[0\\] must have 400 rows"):
        refute(_ols_effect, X, W, (y[:10],), seed=0)
    with pytest.raises(ValueError, match="unknown refuters"):
        refute(_ols_effect, X, W, (y,), seed=0, refuters=["bootstrap"])
    with pytest.raises(ValueError, match="fraction must be in"):
        data_subsets(_ols_effect, X, W, (y,), seed=0, fraction=1.0)
    with pytest.raises(ValueError, match="tolerance must be > 0"):
        random_common_cause(_ols_effect, X, W, (y,), seed=0, tolerance=0)


def test_planned_reruns_and_verdicts_are_the_refuters():
    """The pipeline runs the refuters' re-estimates side by side (``reruns``) and judges them
    apart (``verdict``): the same changed data and results as each refuter run in turn."""
    X, W, y = _linear_design(n=600)
    original = _ols_effect(X, W, y, seed=3)
    together = refute(_ols_effect, X, W, (y,), seed=3, n_subsets=4, fraction=0.7, tolerance=0.5)
    for name, expected in zip(REFUTERS, together, strict=True):
        planned = reruns(name, X, W, (y,), seed=3, n_subsets=4, fraction=0.7)
        assert len(planned) == (4 if name == "data_subsets" else 1)
        estimates = [_ols_effect(r.X, r.W, *r.outcome, seed=3) for r in planned]
        got = verdict(name, estimates, original, tolerance=0.5, fraction=0.7)
        assert got == expected
    # the draws are the refuter's own: the placebo permutes the arms, the subsets differ
    placebo = reruns("placebo_treatment", X, W, (y,), seed=3)[0]
    assert sorted(placebo.W) == sorted(W) and not np.array_equal(placebo.W, W)
    subsets = reruns("data_subsets", X, W, (y,), seed=3, n_subsets=3, fraction=0.5)
    assert all(r.X.shape == (300, 3) for r in subsets)
    assert not np.array_equal(subsets[0].X, subsets[1].X)
