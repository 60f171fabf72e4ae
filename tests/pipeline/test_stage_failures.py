"""A stage that may fail without stopping the run records only the failures data can cause
(``hte.errors.STAGE_FAILURES``: a model that cannot be fitted, degenerate data); a bug in our own
code (TypeError, AttributeError, ...) propagates with its traceback instead of becoming a
metrics entry."""

from __future__ import annotations

import numpy as np
import pytest

import hte.pipeline.explain as explain_stage
from hte.config import TimeZeroAnalysis, load_config
from hte.data.simulate import simulate_cohort
from hte.errors import STAGE_FAILURES, FitError
from hte.estimators import LogisticInteractionModel
from hte.pipeline.explain import explain_fits
from hte.pipeline.stages import design_diagnostics, fit_estimators, prepare_analysis

SEED = 4
CONFIG = """\
name: failures
data: {source: synthetic, n: 300}
outcomes:
  os: {enabled: false}
  crs: {any_grade: true, grade3: false}
estimators:
  - {name: logit, kind: logistic_interaction, params: {penalty: 1.0}}
seeds: {global: 4}
"""


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    path = tmp_path_factory.mktemp("failures") / "failures.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    config = load_config(path)
    data = prepare_analysis(simulate_cohort(n=300, seed=SEED), TimeZeroAnalysis(mode="decision"))
    design_diagnostics(data, SEED)
    return data, config


def _separation(self, *args, **kwargs):
    raise FitError("logistic regression did not converge (likely separation)")


def _typo(self, *args, **kwargs):
    raise TypeError("fit() got an unexpected keyword argument 'sample_wieght'")


def test_the_recorded_failures_are_hte_errors_and_data_errors_not_bugs():
    for failure in (FitError("x"), ValueError("x"), np.linalg.LinAlgError("x"), MemoryError()):
        assert isinstance(failure, STAGE_FAILURES)
    for bug in (TypeError("x"), AttributeError("x"), KeyError("x"), RuntimeError("x")):
        assert not isinstance(bug, STAGE_FAILURES)


def test_a_fit_that_cannot_converge_is_recorded_with_its_fix(setting, monkeypatch):
    data, config = setting
    monkeypatch.setattr(LogisticInteractionModel, "fit", _separation)
    [fit] = fit_estimators(data, config)
    assert fit.model is None and fit.estimate is None
    assert fit.error == "FitError: logistic regression did not converge (likely separation)"
    assert "penalty" in fit.fix


def test_a_bug_in_a_fit_stops_the_stage(setting, monkeypatch):
    data, config = setting
    monkeypatch.setattr(LogisticInteractionModel, "fit", _typo)
    with pytest.raises(TypeError, match="sample_wieght"):
        fit_estimators(data, config)


def test_attributions_record_a_data_failure_and_let_a_bug_through(setting, monkeypatch):
    data, config = setting
    [fit] = fit_estimators(data, config)
    assert fit.error is None

    def degenerate(*args, **kwargs):
        raise ValueError("the sampled effects are constant: nothing to attribute")

    monkeypatch.setattr(explain_stage, "explain_function", degenerate)
    out = explain_fits(None, data, [fit], n_patients=20, seed=SEED)
    assert out == {
        "logit": {
            "crs": {"error": "ValueError: the sampled effects are constant: nothing to attribute"}
        }
    }

    def buggy(*args, **kwargs):
        raise AttributeError("'RoundedEffect' object has no attribute 'predict_cate'")

    monkeypatch.setattr(explain_stage, "explain_function", buggy)
    with pytest.raises(AttributeError, match="predict_cate"):
        explain_fits(None, data, [fit], n_patients=20, seed=SEED)
