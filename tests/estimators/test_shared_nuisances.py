"""Shared nuisances (hte.estimators.shared_nuisances) and EffectData (hte.design.effect_data):
the shared path gives the estimators exactly what they would cross-fit themselves, one grid serves
two horizons with doubly robust means on the known truth, clear errors, no pickle on disk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from hte.design.effect_data import EffectData
from hte.estimators import (
    BayesianCausalForest,
    CausalSurvivalForest,
    CoxInteractionModel,
    CRSBayesianCausalForest,
    CRSCausalForest,
    LogisticInteractionModel,
    SurvivalDRLearner,
)
from hte.estimators.nuisance import make_grid
from hte.estimators.shared_nuisances import Nuisances, fit_nuisances, shared_grid

FAST = dict(n_estimators=40, grid_size=15, n_folds=3, n_jobs=1)
FAST_BCF = dict(num_mcmc=40, mu_trees=20, tau_trees=10, grid_size=15, n_folds=3, n_jobs=1)


def _exponential(n: int, seed: int):
    """Exponential death with a known effect varying in x1 (hazard x0.4 under CAR-T at x1 = 0,
    x0.8 at x1 = 1), confounded arm (e = 0.3 + 0.4 x0) and uniform censoring on [0, 40]."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    W = rng.binomial(1, 0.3 + 0.4 * X[:, 0])
    rate0 = 0.06 * np.exp(0.5 * X[:, 0])
    rate1 = rate0 * (0.4 + 0.4 * X[:, 1])
    T = rng.exponential(1 / np.where(W == 1, rate1, rate0))
    C = rng.uniform(0, 40, size=n)
    frame = pd.DataFrame(X, columns=["age", "ldh", "iss"])
    data = EffectData.from_arrays(frame, W, time=np.minimum(T, C), event=(T <= C).astype(int))
    return data, rate0, rate1


def test_one_horizon_shared_nuisances_give_the_estimators_their_own_cross_fit_exactly():
    data, _, _ = _exponential(600, 0)
    t, d = data.survival()
    nuis = fit_nuisances(data, horizons=[12.0], random_state=0, grid_size=15, n_folds=3, n_jobs=1)
    for cls, fast in (
        (CausalSurvivalForest, FAST),
        (SurvivalDRLearner, FAST),
        (BayesianCausalForest, FAST_BCF),
    ):
        kw = dict(target="survival", horizon=12.0, random_state=0, **fast)
        own = cls(**kw).fit(data.frame(), time=t, event=d, treatment=data.treatment)
        shared = cls(**kw).fit(data, nuisances=nuis)
        assert shared.shared_nuisances_used_ and not own.shared_nuisances_used_
        np.testing.assert_array_equal(shared.pseudo_outcome_, own.pseudo_outcome_)
        np.testing.assert_array_equal(shared.get_scores(), own.get_scores())
        np.testing.assert_array_equal(shared.predict(data.frame()), own.predict(data.frame()))


def test_one_grid_serves_both_horizons_and_the_dr_means_find_the_truth():
    # Known truth: survival difference at 12 and RMST difference to 24 from the exponential rates.
    # Tolerance 3 standard errors of the mean DR score (a correct estimator fails 0.3% of the time).
    data, rate0, rate1 = _exponential(3000, 1)
    t, d = data.survival()
    nuis = fit_nuisances(data, horizons=[24.0, 12.0], random_state=1, n_jobs=2)
    grid = nuis.survival.grid
    assert nuis.horizons == (12.0, 24.0) and grid[-1] == 24.0 and 12.0 in grid
    np.testing.assert_array_equal(grid[grid <= 12.0], make_grid(t, 12.0, 25))  # its own grid
    truth = {
        ("survival", 12.0): np.mean(np.exp(-rate1 * 12) - np.exp(-rate0 * 12)),
        ("rmst", 24.0): np.mean(
            (1 - np.exp(-rate1 * 24)) / rate1 - (1 - np.exp(-rate0 * 24)) / rate0
        ),
    }
    for (target, h), true in truth.items():
        s = nuis.pseudo_outcomes(t, d, target=target, horizon=h)
        assert s["grid"][-1] == h
        forest = CausalSurvivalForest(target, h, random_state=1, n_estimators=40, n_jobs=1)
        gamma = forest.fit(data, nuisances=nuis).get_scores()
        se = gamma.std(ddof=1) / np.sqrt(gamma.size)
        assert abs(gamma.mean() - true) < 3 * se, (target, gamma.mean(), true, se)
        assert 3 * se < abs(true) / 2  # informative: the effect is clearly away from 0


def test_shared_grid_puts_every_horizon_on_it():
    t = np.linspace(0.5, 30, 400)
    grid = shared_grid(t, [6, 12, 24], grid_size=10)
    assert {6.0, 12.0, 24.0} <= set(grid) and np.all(np.diff(grid) > 0)
    np.testing.assert_array_equal(grid[grid <= 6], make_grid(t, 6, 10))
    with pytest.raises(ValueError, match="at least one horizon"):
        shared_grid(t, [])


def test_nuisances_refuse_other_settings_other_rows_and_unfitted_horizons():
    data, _, _ = _exponential(300, 2)
    nuis = fit_nuisances(data, horizons=[12.0], random_state=2, grid_size=15, n_folds=3, n_jobs=1)
    other_seed = CausalSurvivalForest("survival", 12.0, random_state=3, **FAST)
    with pytest.raises(ValueError, match="other settings"):
        other_seed.fit(data, nuisances=nuis)
    other_horizon = SurvivalDRLearner("rmst", 18.0, random_state=2, **FAST)
    with pytest.raises(ValueError, match="other settings, seed or horizons"):
        other_horizon.fit(data, nuisances=nuis)
    # a refit on part of the patients cannot read nuisances fitted on all of them (leakage)
    forest = CausalSurvivalForest("survival", 12.0, random_state=2, **FAST)
    with pytest.raises(ValueError, match="not the 150 given to fit"):
        forest.fit(data.subset(np.arange(150)), nuisances=nuis)
    with pytest.raises(ValueError, match="not requested"):
        nuis.arm_risks("crs")


def test_horizon_beyond_follow_up_is_recorded_not_fitted():
    data, _, _ = _exponential(300, 3)
    nuis = fit_nuisances(data, horizons=[12.0, 500.0], random_state=3, grid_size=10, n_folds=3)
    assert nuis.horizons == (12.0,) and "os@500" in nuis.errors
    with pytest.raises(ValueError, match="no survival nuisances for horizon 500"):
        nuis.survival_for(500.0)


def test_nuisances_round_trip_through_npz_without_pickle(tmp_path):
    data, _, _ = _exponential(300, 4)
    crs = (data.X[:, 1] + np.random.default_rng(4).uniform(size=300) > 1).astype(int)
    data = EffectData.from_arrays(
        data.frame(), data.treatment, time=data.time, event=data.event, crs=crs
    )
    nuis = fit_nuisances(
        data,
        horizons=[12.0],
        crs_outcomes=["crs", "crs_g3"],
        random_state=4,
        grid_size=10,
        n_folds=3,
    )
    assert "crs_g3" in nuis.errors  # no grade column: recorded, not fitted
    path = nuis.save(tmp_path / "nuisances" / "decision.npz")
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert all(z[k].dtype != object for k in z.files)
    back = Nuisances.load(path)
    np.testing.assert_array_equal(back.propensity, nuis.propensity)
    np.testing.assert_array_equal(back.survival.cens, nuis.survival.cens)
    np.testing.assert_array_equal(back.arm_risks("crs").mu1, nuis.arm_risks("crs").mu1)
    assert back.settings == nuis.settings and back.errors == nuis.errors


def test_crs_learners_read_the_shared_crs_nuisances_exactly_and_refuse_others():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 3))
    w = rng.binomial(1, 0.5, size=600)
    crs = rng.binomial(1, 0.3 + 0.3 * w * (X[:, 1] > 0))
    data = EffectData.from_arrays(pd.DataFrame(X, columns=["a", "b", "c"]), w, crs=crs)
    nuis = fit_nuisances(data, crs_outcomes=["crs"], random_state=5, n_folds=3)
    kw = dict(n_estimators=40, cv=3, random_state=5, n_jobs=1)
    own = CRSCausalForest(**kw).fit(data.frame(), crs, w)
    shared = CRSCausalForest(**kw).fit(data, nuisances=nuis)
    assert shared.shared_nuisances_used_ and not own.shared_nuisances_used_
    np.testing.assert_array_equal(shared.get_scores(), own.get_scores())
    np.testing.assert_array_equal(shared.predict(data.frame()), own.predict(data.frame()))
    # Gamma's mean is the AIPW risk difference: 0.15 x P(b > 0) = 0.075 in truth
    gamma = shared.get_scores()
    assert abs(gamma.mean() - 0.075) < 3 * gamma.std(ddof=1) / np.sqrt(gamma.size)
    for other in (
        dict(kw, random_state=6),
        dict(kw, cv=5),
        dict(kw, forest_engine="econml"),
        dict(kw, model_y=LogisticRegression()),
    ):
        with pytest.raises(ValueError, match="do not serve CRSCausalForest"):
            CRSCausalForest(**other).fit(data, nuisances=nuis)
    with pytest.raises(ValueError, match="not the 300 given to fit"):
        CRSCausalForest(**kw).fit(data.subset(np.arange(300)), nuisances=nuis)
    # the CRS BCF reads the same propensity (its only nuisance) with the same result
    bcf = dict(num_mcmc=20, mu_trees=10, tau_trees=5, n_folds=3, random_state=5)
    own_bcf = CRSBayesianCausalForest(**bcf).fit(data.frame(), crs, w)
    shared_bcf = CRSBayesianCausalForest(**bcf).fit(data, nuisances=nuis)
    assert shared_bcf.shared_nuisances_used_ and not own_bcf.shared_nuisances_used_
    np.testing.assert_array_equal(shared_bcf.predict(data.frame()), own_bcf.predict(data.frame()))
    with pytest.raises(ValueError, match="do not serve CRSBayesianCausalForest"):
        CRSBayesianCausalForest(**dict(bcf, n_folds=5)).fit(data, nuisances=nuis)


# ------------------------------------------------------------------------------------------------
# EffectData


def test_effect_data_checks_roles_once_and_names_the_problem():
    X = pd.DataFrame({"age": [60.0, 70.0, 65.0], "ldh": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="time and event must be given together"):
        EffectData.from_arrays(X, [0, 1, 1], time=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"time must be finite and > 0 months; rows \[1\]"):
        EffectData.from_arrays(X, [0, 1, 1], time=[1.0, 0.0, 3.0], event=[1, 0, 1])
    with pytest.raises(ValueError, match=r"event must be 0/1 \(1 = death\); bad rows \[2\]"):
        EffectData.from_arrays(X, [0, 1, 1], time=[1.0, 2.0, 3.0], event=[1, 0, 2])
    with pytest.raises(ValueError, match=r"crs_grade must have shape \(3,\)"):
        EffectData.from_arrays(X, [0, 1, 1], crs=[0, 1, 1], crs_grade=[0, 1])
    data = EffectData.from_arrays(X, [0, 1, 1], time=[1.0, 2.0, 3.0], event=[1, 0, 1])
    part = data.subset(np.array([False, True, True]))
    assert part.row_ids.tolist() == [1, 2] and part.feature_names == ("age", "ldh")
    with pytest.raises(ValueError, match="no crs column"):
        LogisticInteractionModel().fit(data)  # a CRS estimator on an analysis without CRS
    with pytest.raises(ValueError, match="either an EffectData or the arrays"):
        CoxInteractionModel().fit(data, time=[1.0, 2.0, 3.0])  # both: refused


def test_every_kind_fits_an_effect_data_as_its_arrays_and_checks_names_at_predict():
    data, _, _ = _exponential(400, 5)
    t, d = data.survival()
    a = CoxInteractionModel(horizon=12.0, target="survival").fit(data)
    b = CoxInteractionModel(horizon=12.0, target="survival").fit(data.frame(), t, d, data.treatment)
    np.testing.assert_allclose(a.predict(data.frame()), b.predict(data.frame()))
    swapped = data.frame()[["ldh", "age", "iss"]]
    with pytest.raises(ValueError, match="same columns in another order"):
        a.predict(swapped)
    renamed = data.frame().rename(columns={"iss": "stage"})
    with pytest.raises(ValueError, match=r"missing \['iss'\], unexpected \['stage'\]"):
        a.predict(renamed)
    a.predict(data.X)  # a plain array carries no names: only the column count is checked
