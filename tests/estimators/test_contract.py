"""Every registered estimator kind through one contract (as scikit-survival runs all its
estimators through the same checks): fit on an ``EffectData``, ``predict``/``estimate`` shapes and
labels, scikit-learn ``clone``, a round trip through the run folder's signed model store, clear
errors on bad input, and feature names checked at predict time.

The kinds come from the registry (``hte.vocabulary.ESTIMATOR_KINDS``), each fitted with its
``quick`` parameters: a kind added there is checked here without touching this file
(``test_a_new_kind_is_picked_up_from_the_registry`` shows it).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from hte import vocabulary
from hte.design.effect_data import EffectData
from hte.estimators.registry import estimator_class
from hte.estimators.result import EffectEstimate
from hte.runs import RUN_FILES, ModelStore, load_model

N = 240
HORIZON = 12.0
FEATURES = ["age", "ecog", "crp", "extramedullary"]
KINDS = [k.name for k in vocabulary.ESTIMATOR_KINDS]


def _cohort(n: int = N, seed: int = 0) -> EffectData:
    """A small confounded cohort with a known sign of effect on both outcomes."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.normal(65, 8, n),
            "ecog": rng.integers(0, 3, n).astype(float),
            "crp": rng.lognormal(1.5, 0.6, n),
            "extramedullary": rng.binomial(1, 0.3, n).astype(float),
        }
    )
    w = rng.binomial(1, 1 / (1 + np.exp(-(X["age"] - 65) / 15)))
    rate = 0.08 * np.exp(0.3 * X["ecog"] - 0.5 * w)
    death = rng.exponential(1 / rate)
    censor = rng.uniform(6, 36, n)
    time = np.maximum(np.minimum(death, censor), 0.1)
    crs = rng.binomial(1, np.where(w == 1, 0.7, 0.5))
    grade = np.where(crs == 1, rng.choice([1, 2, 3], n, p=[0.6, 0.25, 0.15]), 0).astype(float)
    return EffectData.from_arrays(
        X, w, time=time, event=(death <= censor).astype(int), crs=crs, crs_grade=grade
    )


def build(kind: vocabulary.EstimatorKind):
    """An unfitted estimator of a kind: its quick parameters plus the managed ones it takes."""
    cls = estimator_class(kind.name)
    accepted = set(cls().get_params())
    managed = {"target": "survival", "horizon": HORIZON, "outcome": "crs", "random_state": 0}
    return cls(**{k: v for k, v in managed.items() if k in accepted}, **kind.quick_params)


@pytest.fixture(scope="module")
def data() -> EffectData:
    return _cohort()


@pytest.fixture(scope="module", params=KINDS)
def fitted(request, data):
    """(kind, fitted estimator): each kind fitted once for the whole module."""
    kind = vocabulary.estimator_kind(request.param)
    return kind, build(kind).fit(data)


def _rows(data: EffectData, k: int = 25) -> pd.DataFrame:
    return data.frame().iloc[:k]


def test_fit_predict_and_estimate_shapes(fitted, data):
    kind, model = fitted
    X = _rows(data)
    effect = np.asarray(model.predict(X))
    assert effect.shape == (len(X),) and np.isfinite(effect).all()
    est = model.estimate(X, alpha=0.1)
    assert isinstance(est, EffectEstimate)
    assert est.effect.shape == est.lower.shape == est.upper.shape == (len(X),)
    np.testing.assert_allclose(est.effect, effect, rtol=0, atol=1e-10)
    assert est.alpha == 0.1
    assert est.target == ("survival" if kind.outcome == "os" else "crs")
    assert est.horizon == (HORIZON if kind.outcome == "os" else None)
    # intervals, where the kind gives them, hold the estimate
    finite = np.isfinite(est.lower) & np.isfinite(est.upper)
    assert (est.lower[finite] <= est.effect[finite] + 1e-9).all()
    assert (est.effect[finite] <= est.upper[finite] + 1e-9).all()
    # effects on a probability scale stay differences of probabilities
    assert (np.abs(effect) <= 1 + 1e-9).all()
    assert model.n_features_in_ == len(FEATURES)
    assert list(model.feature_names_in_) == FEATURES


def test_clone_gives_an_unfitted_copy_with_the_same_parameters(fitted):
    kind, model = fitted
    copy = clone(model)
    assert type(copy) is type(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "feature_names_in_")
    assert set(kind.quick_params) <= set(copy.get_params())


def test_round_trip_through_the_signed_model_store(fitted, data, tmp_path, monkeypatch):
    kind, model = fitted
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "home"))
    for name in RUN_FILES:  # the manifest signs the run's config and fingerprint too
        (tmp_path / name).write_text("{}\n", encoding="utf-8")
    store = ModelStore(tmp_path, "contract")
    store.save(f"decision/{kind.name}.joblib", model, role="estimator")
    store.write_manifest()
    loaded = load_model(tmp_path, f"decision/{kind.name}.joblib")
    X = _rows(data)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_same_seed_same_numbers_even_with_two_threads(fitted, data):
    """A refit with the same seed, and every repeated prediction, gives the same bits: threads may
    fit trees in any order but must not change a sum (``hte.estimators.serial_prediction``)."""
    kind, model = fitted
    threaded = clone(model)
    if "n_jobs" in threaded.get_params():
        threaded.set_params(n_jobs=2)
    threaded.fit(data)
    X = data.frame()
    first, again = threaded.estimate(X), threaded.estimate(X)
    reference = clone(threaded).fit(data).estimate(X)
    for other in (again, reference):
        for field in ("effect", "lower", "upper"):
            np.testing.assert_array_equal(
                getattr(first, field), getattr(other, field), err_msg=f"{kind.name}: {field}"
            )


def test_feature_names_are_checked_at_predict_time(fitted, data):
    _, model = fitted
    X = _rows(data)
    with pytest.raises(ValueError, match="columns differ"):
        model.predict(X[FEATURES[::-1]])
    with pytest.raises(ValueError, match="columns differ"):
        model.predict(X.rename(columns={"crp": "crp_mg_l"}))


def test_a_wrong_number_of_columns_is_refused(fitted, data):
    _, model = fitted
    X = _rows(data)
    with pytest.raises(ValueError, match=r"3|4|features|columns"):
        model.predict(X.to_numpy()[:, :3])


def test_nan_in_new_rows_is_refused_naming_the_column(fitted, data):
    _, model = fitted
    X = _rows(data).copy()
    X.loc[X.index[2], "crp"] = np.nan
    with pytest.raises(ValueError, match="crp"):
        model.predict(X)


@pytest.mark.parametrize("kind_name", KINDS)
def test_bad_training_data_is_refused_before_fitting(kind_name, data):
    """NaN covariates name the column; one arm only, or arrays and an EffectData together, are
    errors saying so (checked before any model is fitted, so these cost milliseconds)."""
    kind = vocabulary.estimator_kind(kind_name)
    X = data.frame()
    if kind.outcome == "os":
        t, d = data.survival()
        outcome = {"time": t, "event": d}
    else:
        outcome = {"crs": data.crs}
    with_nan = X.copy()
    with_nan.loc[with_nan.index[[3, 7]], "age"] = np.nan
    with pytest.raises(ValueError, match="age"):
        build(kind).fit(with_nan, treatment=data.treatment, **outcome)
    with pytest.raises(ValueError, match=r"one arm|both arms"):
        build(kind).fit(X, treatment=np.ones(len(X), dtype=int), **outcome)
    with pytest.raises(ValueError, match="not both"):
        build(kind).fit(data, treatment=data.treatment)


def test_every_kind_is_resolvable_and_consistent():
    """The registry's rows name real classes that take the managed parameters of their outcome,
    every quick parameter is a constructor parameter, and each outcome's targets are named."""
    for kind in vocabulary.ESTIMATOR_KINDS:
        cls = estimator_class(kind.name)
        assert cls.__name__ == kind.class_name
        params = set(cls().get_params())
        managed = {"target", "horizon"} if kind.outcome == "os" else {"outcome"}
        assert managed <= params, kind.name
        assert set(kind.quick_params) <= params, kind.name
    with pytest.raises(ValueError, match="unknown estimator kind 'forest'"):
        estimator_class("forest")


NEW_KIND = """
import hte.vocabulary as v
row = v.EstimatorKind(
    "cox_copy", "os", 6, "hte.estimators.baselines:CoxInteractionModel", "a copy", (("penalizer", 0.1),)
)
v.ESTIMATOR_KINDS = (*v.ESTIMATOR_KINDS, row)
v.KIND_NAMES = tuple(k.name for k in v.ESTIMATOR_KINDS)
v._KINDS_BY_NAME = {k.name: k for k in v.ESTIMATOR_KINDS}
v._check()
from hte.config.schema import EstimatorSpec
spec = EstimatorSpec(kind="cox_copy", params={"penalizer": 0.5})
model = spec.build(target="survival", horizon=12.0)
print(spec.outcome, type(model).__name__, model.penalizer, v.preference("survival")[-1],
      v.kind_label("cox_copy"))
"""


def test_a_new_kind_is_picked_up_from_the_registry():
    """Adding a kind is one registry row plus its own module: in a fresh interpreter, a row added
    before the config is imported (an existing class under a new name) is accepted by the config,
    built with its parameters, ranked and labelled, with no other edit."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", NEW_KIND], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["os", "CoxInteractionModel", "0.5", "cox_copy", "a", "copy"]


def test_the_vocabulary_refuses_a_bad_row():
    good = vocabulary.ESTIMATOR_KINDS
    try:
        vocabulary.ESTIMATOR_KINDS = (*good, dataclasses.replace(good[0], rank=9, name="x"))
        vocabulary.KIND_NAMES = tuple(k.name for k in vocabulary.ESTIMATOR_KINDS)
        with pytest.raises(ValueError, match=r"os estimator ranks must be 0\.\.6"):
            vocabulary._check()
    finally:
        vocabulary.ESTIMATOR_KINDS = good
        vocabulary.KIND_NAMES = tuple(k.name for k in good)
