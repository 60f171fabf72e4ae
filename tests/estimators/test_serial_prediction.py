"""predict_in_one_thread: every forest reachable from a fitted model predicts in one thread."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

from hte.estimators.serial_prediction import predict_in_one_thread


class _MultiOutput:
    """Shaped like econml's MultiOutputGRF: member forests in ``estimators_``, no n_jobs."""

    def __init__(self, members):
        self.estimators_ = members


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    return X, X[:, 0] + rng.normal(size=300)


def test_forests_inside_a_multi_output_model_are_set_to_one_thread():
    X, y = _data()
    members = [RandomForestRegressor(20, n_jobs=2, random_state=k).fit(X, y) for k in range(2)]
    predict_in_one_thread(_MultiOutput(members))
    assert [m.n_jobs for m in members] == [1, 1]


def test_boosting_with_an_array_of_trees_is_accepted():
    X, y = _data()
    boosted = GradientBoostingRegressor(n_estimators=5).fit(X, y)
    before = boosted.predict(X)
    predict_in_one_thread(boosted, RandomForestRegressor(5, n_jobs=2).fit(X, y))
    np.testing.assert_array_equal(boosted.predict(X), before)
