"""The model average (hte.estimators.model_average): closed-form checks on learners whose
predictions and intervals are known exactly."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest

from hte.estimators.model_average import ModelAverage, average_estimates
from hte.estimators.result import EffectEstimate


class _Linear:
    """A 'fitted learner' with effect a + b * x and, optionally, an interval effect -/+ (lo, hi)."""

    def __init__(self, a: float, b: float, below: float | None = None, above: float | None = None):
        self.a, self.b, self.below, self.above = a, b, below, above

    def predict(self, X):
        return self.a + self.b * np.asarray(X, dtype=float)[:, 0]

    def predict_interval(self, X, alpha: float = 0.05):
        point = self.predict(X)
        scale = 1.0 if alpha == 0.05 else 2.0  # a different alpha gives a different band
        return point - scale * self.below, point + scale * self.above


X = pd.DataFrame({"x": [-1.0, 0.0, 2.0]})


def _average(interval_member: str | None = "bayes") -> ModelAverage:
    members = {
        "bayes": _Linear(1.0, 2.0, 0.5, 1.5),
        "cox": _Linear(3.0, 0.0),
        "s": _Linear(2.0, 1.0),
    }
    return ModelAverage(members, interval_member=interval_member, target="rmst", horizon=24.0)


def test_the_average_is_the_members_mean_and_the_band_widens_where_they_disagree():
    model = _average()
    members = np.array([[-1.0, 1.0, 5.0], [3.0, 3.0, 3.0], [1.0, 2.0, 4.0]])  # bayes, cox, s
    expected = members.mean(axis=0)
    np.testing.assert_allclose(model.predict(X), expected, rtol=0, atol=1e-12)
    between = np.array([8 / 3, 2 / 3, 2 / 3])  # the members' variance per row, by hand
    np.testing.assert_allclose(members.var(axis=0), between, atol=1e-12)
    for alpha, below, above in ((0.05, 0.5, 1.5), (0.1, 1.0, 3.0)):  # the member's own alpha
        z = {0.05: 1.959963984540054, 0.1: 1.6448536269514722}[alpha]
        lower, upper = model.predict_interval(X, alpha=alpha)
        np.testing.assert_allclose(lower, expected - np.sqrt(below**2 + z**2 * between), atol=1e-12)
        np.testing.assert_allclose(upper, expected + np.sqrt(above**2 + z**2 * between), atol=1e-12)
    est = model.estimate(X, alpha=0.05)
    assert (est.target, est.horizon, est.alpha) == ("rmst", 24.0, 0.05)


def test_members_that_agree_give_the_member_band_moved_to_the_average():
    agree = ModelAverage(
        {"bayes": _Linear(1.0, 2.0, 0.5, 1.5), "twin": _Linear(1.0, 2.0)}, interval_member="bayes"
    )
    lower, upper = agree.predict_interval(X)
    point = 1.0 + 2.0 * X["x"].to_numpy()
    np.testing.assert_allclose(lower, point - 0.5, atol=1e-12)
    np.testing.assert_allclose(upper, point + 1.5, atol=1e-12)


def test_without_an_interval_member_the_interval_is_missing():
    lower, upper = _average(None).predict_interval(X)
    assert np.isnan(lower).all() and np.isnan(upper).all()


def test_average_estimates_equals_the_model_estimate():
    model = _average()
    members = {}
    for name, m in model.members.items():
        nan = np.full(len(X), np.nan)
        lower, upper = m.predict_interval(X) if m.below is not None else (nan, nan)
        members[name] = EffectEstimate(m.predict(X), lower, upper, "rmst", 24.0, 0.05, name)
    composed = average_estimates(members, "bayes")
    own = model.estimate(X)
    for part in ("effect", "lower", "upper"):
        np.testing.assert_allclose(getattr(composed, part), getattr(own, part), atol=1e-12)


def test_bad_averages_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least 2 members, got 1"):
        ModelAverage({"cox": _Linear(0, 1)}).predict(X)
    with pytest.raises(ValueError, match="interval_member 'bcf' is not a member"):
        ModelAverage({"a": _Linear(0, 1), "b": _Linear(1, 1)}, "bcf").predict_interval(X)
    one = _average().estimate(X)
    other = _average().estimate(X, alpha=0.1)
    with pytest.raises(ValueError, match="member 'b' estimates another target, horizon or alpha"):
        average_estimates({"a": one, "b": other}, None)
    with pytest.raises(ValueError, match="at least 2 members"):
        average_estimates({"a": one}, None)


def test_a_saved_average_predicts_the_same():
    model = _average()
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    again = joblib.load(buffer)
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_the_interval_says_what_it_is():
    words = _average().interval_words(95)
    assert words.startswith("bayes's own 95% interval around the average of bayes, cox, s, widened")
    assert _average(None).interval_words(95).startswith("none (the average of bayes, cox, s")


def test_a_frame_is_checked_once_against_the_members_names():
    model = _average()
    for member in model.members.values():
        member.feature_names_in_ = np.array(["x"])
    np.testing.assert_array_equal(model.predict(X), model.predict(X.to_numpy()))
    with pytest.raises(ValueError, match="missing"):
        model.predict(X.rename(columns={"x": "age"}))
    with pytest.raises(ValueError, match="not numeric"):
        model.predict(pd.DataFrame({"x": ["a", "b", "c"]}))


class _OnePass(_Linear):
    """An interval member that gives its estimate and interval in one call (as BCF does)."""

    calls = 0

    def predict_with_interval(self, X, alpha: float = 0.05):
        type(self).calls += 1
        return self.predict(X), *self.predict_interval(X, alpha)


def test_an_interval_member_with_one_pass_gives_the_same_band():
    members = {"bayes": _OnePass(1.0, 2.0, 0.5, 1.5), "cox": _Linear(3.0, 0.0)}
    one_pass = ModelAverage(members, interval_member="bayes").estimate(X)
    members["bayes"] = _Linear(1.0, 2.0, 0.5, 1.5)
    two_calls = ModelAverage(members, interval_member="bayes").estimate(X)
    assert _OnePass.calls == 1
    for part in ("effect", "lower", "upper"):
        np.testing.assert_array_equal(getattr(one_pass, part), getattr(two_calls, part))
