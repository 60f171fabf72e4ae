"""Causal survival forest against known truth: constant effect, censoring, coverage, null, reduction."""

import numpy as np
import pandas as pd
import pytest
from econml.grf import CausalForest

from hte.estimators import CausalSurvivalForest
from hte.estimators.nuisance import cross_fit_pseudo_outcomes
from hte.estimators.result import EffectEstimate

FAST = dict(n_estimators=200, grid_size=15, n_folds=3, n_jobs=1)  # defaults otherwise


def _shift_design(n, seed, effect=0.5):
    """T(0) = 1 + U + 0.5 X1 in [1, 2.5], T(1) = T(0) + effect, no censoring; a horizon at the
    longest follow-up covers every death, so the RMST effect is exactly ``effect`` for everyone.
    Confounded: e(x) = 0.3 + 0.4 X1."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    W = rng.binomial(1, 0.3 + 0.4 * X[:, 0])
    T = 1 + rng.uniform(size=n) + 0.5 * X[:, 0] + effect * W
    return X, W, T, np.ones(n, dtype=int)


def _exp_rmst(rate, h):
    return (1 - np.exp(-rate * h)) / rate


def _censored_design(n, seed):
    """Exponential T, effect varying with X2; censoring heavy for treated patients with large X2."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    W = rng.binomial(1, 0.5, n)
    rate0 = np.exp(0.5 * X[:, 0] - 0.5)
    rate1 = rate0 * np.exp(-1.2 * X[:, 1])
    T = rng.exponential(1 / np.where(W == 1, rate1, rate0))
    C = rng.exponential(1 / (0.05 + 2.0 * X[:, 1] * W))
    h = 1.5
    tau = _exp_rmst(rate1, h) - _exp_rmst(rate0, h)
    return X, W, np.minimum(T, C), (T <= C).astype(int), tau, h


def test_constant_effect_without_censoring_is_recovered():
    X, W, t, d = _shift_design(1500, 0)
    est = CausalSurvivalForest(target="rmst", horizon=t.max(), random_state=0, **FAST)
    est.fit(X, time=t, event=d, treatment=W)
    tau = est.predict(X[:300])
    # the effect is 0.5 for everyone and the outcome noise sd ~0.3: a forest average over ~300
    # effective samples per leaf-weighting has sd ~0.05, so mean within 0.08 and spread < 0.1
    assert abs(tau.mean() - 0.5) < 0.08
    assert tau.std() < 0.1


def test_doubly_robust_forest_beats_complete_case_forest_under_x_dependent_censoring():
    X, W, t, d, tau, h = _censored_design(2000, 1)
    dr = CausalSurvivalForest(target="rmst", horizon=h, random_state=0, **FAST)
    dr.fit(X, time=t, event=d, treatment=W)
    # naive: keep patients whose min(T, h) is known and pretend nobody is censored
    keep = (d == 1) | (t >= h)
    naive = CausalSurvivalForest(target="rmst", horizon=h, random_state=0, **FAST)
    naive.fit(X[keep], time=t[keep], event=np.ones(keep.sum(), int), treatment=W[keep])
    mse_dr = np.mean((dr.predict(X) - tau) ** 2)
    mse_naive = np.mean((naive.predict(X) - tau) ** 2)
    # complete cases over-represent early deaths among treated with large X2, biasing the naive
    # effect down by ~0.2 there; the DR forest removes that bias: require at least a 2x gain
    assert mse_dr < 0.5 * mse_naive


def test_intervals_cover_at_roughly_nominal_rate_over_repeated_draws():
    # constant effect (no smoothing bias), 8 independent draws, 40 test points each. GRF's
    # bootstrap-of-little-bags intervals are approximate at n = 1000 with 200 trees; with 8 draws
    # the draw-level coverage average has sd ~0.08, so >= 0.8 tests "roughly nominal" (0.95)
    # and fails for intervals that ignore most of the variance.
    Xtest = np.random.default_rng(99).uniform(size=(40, 3))
    covered = []
    for seed in range(8):
        X, W, t, d = _shift_design(1000, 10 + seed)
        est = CausalSurvivalForest(target="rmst", horizon=t.max(), random_state=seed, **FAST)
        est.fit(X, time=t, event=d, treatment=W)
        lo, hi = est.predict_interval(Xtest, alpha=0.05)
        covered.append(np.mean((lo <= 0.5) & (0.5 <= hi)))
    assert np.mean(covered) >= 0.8


def test_null_effect_gives_no_spurious_heterogeneity():
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(1500, 3))
    W = rng.binomial(1, 0.5, 1500)
    # both arms share one survival law (no effect anywhere); censoring depends on x and w
    T = rng.exponential(1 / np.exp(0.5 * X[:, 0] - 0.5))
    C = rng.exponential(1 / (0.05 + 1.0 * X[:, 1] * W))
    t, d = np.minimum(T, C), (T <= C).astype(int)
    est = CausalSurvivalForest(target="rmst", horizon=1.5, random_state=0, **FAST)
    est.fit(X, time=t, event=d, treatment=W)
    res = est.estimate(X[:300])
    stderr = est.predict_stderr(X[:300])
    # no spurious heterogeneity: the predictions vary less than their own standard error (pure
    # noise would give a ratio near 1; real heterogeneity of the size in the censored design,
    # sd ~0.1, would push it well above), few intervals exclude 0, and the average one covers 0
    assert res.effect.std() < stderr.mean()
    assert np.mean((res.lower > 0) | (res.upper < 0)) < 0.2
    assert res.lower.mean() < 0 < res.upper.mean()


def test_without_censoring_it_is_an_ordinary_causal_forest():
    X, W, t, d = _shift_design(800, 4)
    kw = dict(n_estimators=100, min_samples_leaf=5, max_samples=0.45, random_state=0)
    h = t.max()
    est = CausalSurvivalForest(
        target="rmst", horizon=h, grid_size=15, n_folds=3, n_jobs=1, forest_engine="econml", **kw
    )
    est.fit(X, time=t, event=d, treatment=W)
    nuis = cross_fit_pseudo_outcomes(
        X, W, t, d, target="rmst", horizon=h, grid_size=15, n_folds=3, random_state=0
    )
    # with no censoring the pseudo-outcome is the outcome itself ...
    np.testing.assert_allclose(nuis["pseudo_outcome"], t)
    # ... and the econml engine equals econml's causal forest on the residualized data (no
    # intercept); the histogram engine is compared with it in test_histogram_grf.py
    cf = CausalForest(criterion="het", fit_intercept=False, n_jobs=1, **kw)
    cf.fit(X, W - nuis["e"], t - nuis["m"])
    np.testing.assert_allclose(est.predict(X[:50]), cf.predict(X[:50]).ravel(), atol=1e-8)


def test_survival_target_and_dataframe_input():
    X, W, t, d, _, _ = _censored_design(1000, 5)
    frame = pd.DataFrame(X, columns=["age", "ecog", "ldh"])
    est = CausalSurvivalForest(target="survival", horizon=1.0, random_state=0, **FAST)
    est.fit(frame, time=t, event=d, treatment=W)
    res = est.estimate(frame.iloc[:20], alpha=0.1)
    assert isinstance(res, EffectEstimate) and res.target == "survival" and res.alpha == 0.1
    assert res.effect.shape == (20,) and np.all(np.abs(res.effect) <= 1.0)
    assert np.all(res.lower <= res.effect) and np.all(res.effect <= res.upper)
    ate, lo, hi = est.average_effect()
    assert lo < ate < hi


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(treatment="ones"), "only one arm"),
        (dict(event="zeros"), "no events"),
        (dict(time="zero_row"), "time must be > 0"),
        (dict(X="nan"), "missing values"),
        (dict(horizon=100.0), "beyond the longest follow-up"),
        (dict(target="median"), "target must be one of"),
    ],
)
def test_bad_input_gets_a_clear_error(change, message):
    X, W, t, d = _shift_design(60, 6)
    X, t, d, W = X.copy(), t.copy(), d.copy(), W.copy()
    if change.get("treatment") == "ones":
        W[:] = 1
    if change.get("event") == "zeros":
        d[:] = 0
    if change.get("time") == "zero_row":
        t[3] = 0.0
    if change.get("X") == "nan":
        X[2, 1] = np.nan
    est = CausalSurvivalForest(
        target=change.get("target", "rmst"), horizon=change.get("horizon", 2.0), **FAST
    )
    with pytest.raises(ValueError, match=message):
        est.fit(X, time=t, event=d, treatment=W)


def test_predict_before_fit_and_wrong_width():
    est = CausalSurvivalForest(horizon=2.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        est.predict(np.zeros((2, 3)))
    X, W, t, d = _shift_design(200, 7)
    est = CausalSurvivalForest(target="rmst", horizon=2.0, random_state=0, **FAST)
    est.fit(X, time=t, event=d, treatment=W)
    with pytest.raises(ValueError, match="columns"):
        est.predict(np.zeros((2, 4)))


def test_split_candidates_follow_grfs_rule_when_asked():
    """max_features="grf": min(ceil(sqrt(p) + 20), p) candidates per split, so all of them for
    p <= 25 and 27 of 43; the default (None) tries every feature."""
    from hte.estimators.causal_survival_forest import grf_max_features

    assert [grf_max_features(p) for p in (1, 5, 21, 25, 26, 43, 100)] == [1, 5, 21, 25, 26, 27, 30]
    est = CausalSurvivalForest(horizon=1.0, max_features="grf")
    assert est._make_forest(1000, 43).max_features == 27
    assert est._make_forest(1000, 5).max_features == 5
    assert est.set_params(max_features=None)._make_forest(1000, 43).max_features is None
    assert CausalSurvivalForest(horizon=1.0)._make_forest(1000, 43).max_features is None


def test_both_forest_engines_read_fast_as_they_predict():
    """The default engine is the histogram forest; econml's stays available, and each has a
    fast reader (the profile explorer's) that returns the estimator's own intervals."""
    from hte.estimators.grf_reader import GRFReader, HistogramReader, grf_reader
    from hte.estimators.histogram_grf import HistogramMomentForest

    X, W, t, d, _, _ = _censored_design(800, 6)
    fits = {}
    for engine in ("histogram", "econml"):
        est = CausalSurvivalForest(horizon=1.0, random_state=0, forest_engine=engine, **FAST)
        fits[engine] = est.fit(X, time=t, event=d, treatment=W)
        reader = grf_reader(est, "causal_survival_forest")
        assert isinstance(reader, HistogramReader if engine == "histogram" else GRFReader)
        point, lower, upper, _ = reader.predict(X[:30], 0.1)
        own = est.estimate(X[:30], alpha=0.1)
        for got, want in ((point, own.effect), (lower, own.lower), (upper, own.upper)):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert isinstance(fits["histogram"].forest_, HistogramMomentForest)
    a, b = (fits[e].predict(X[:200]) for e in ("histogram", "econml"))
    assert np.corrcoef(a, b)[0, 1] > 0.8  # same scores, same recipe, different split search
    with pytest.raises(ValueError, match="forest_engine"):
        CausalSurvivalForest(horizon=1.0, forest_engine="grf").fit(X, time=t, event=d, treatment=W)
    with pytest.raises(ValueError, match="local_linear needs"):
        CausalSurvivalForest(horizon=1.0, forest_engine="econml", local_linear=0.1).fit(
            X, time=t, event=d, treatment=W
        )


def test_econml_is_imported_only_for_its_engine_and_old_pickles_find_its_forest():
    import subprocess
    import sys

    import hte.estimators.causal_survival_forest as csf
    from hte.estimators.econml_moment_forest import MomentForest

    probe = "import sys, hte.estimators.causal_survival_forest; print('econml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert csf._MomentForest is MomentForest  # the name earlier runs' models were pickled under
    with pytest.raises(AttributeError, match="no_such_name"):
        csf.no_such_name  # noqa: B018
