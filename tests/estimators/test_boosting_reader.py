"""The boosting reader gives scikit-learn's propensity numbers bit for bit, or stands aside."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from hte.estimators.boosting_reader import boosting_reader


def _data(n: int = 600, p: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[rng.random(X.shape) < 0.08] = np.nan  # the missing-value branch is learned and walked
    logit = np.nan_to_num(X[:, 0]) - 0.5 * np.nan_to_num(X[:, 1]) + np.isnan(X[:, 2])
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.mark.parametrize("max_depth", [2, 5, None])
def test_reader_equals_predict_proba_bit_for_bit(max_depth):
    X, y = _data()
    model = HistGradientBoostingClassifier(max_iter=80, max_depth=max_depth, random_state=0)
    model.fit(X, y)
    reader = boosting_reader(model)
    assert reader is not None
    rows, _ = _data(n=300, seed=1)
    assert np.array_equal(reader.predict_proba(rows), model.predict_proba(rows)[:, 1])
    assert np.array_equal(reader.predict_proba(rows[:1]), model.predict_proba(rows[:1])[:, 1])


def test_no_reader_where_it_would_be_wrong():
    X, y = _data()
    Xc = X.copy()
    Xc[:, 3] = np.random.default_rng(2).integers(0, 4, len(X))
    categorical = HistGradientBoostingClassifier(
        max_iter=20, categorical_features=[3], random_state=0
    ).fit(Xc, y)
    multiclass = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(
        X, np.arange(len(X)) % 3
    )
    regressor = HistGradientBoostingRegressor(max_iter=20).fit(X, y.astype(float))
    for model in (categorical, multiclass, regressor):
        assert boosting_reader(model) is None


def test_reader_refuses_a_wrong_width():
    X, y = _data()
    reader = boosting_reader(HistGradientBoostingClassifier(max_iter=10).fit(X, y))
    with pytest.raises(ValueError, match=r"shape \(n, 5\)"):
        reader.raw(X[:, :4])
