"""The run's model average (hte.pipeline.model_average): composed from its members' fits, held
out when they are, and refused in the config when it names what is not there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from known_effects import SeenRows

from hte.config import ConfigError, TimeZeroAnalysis, load_config
from hte.data.simulate import simulate_cohort
from hte.estimators.result import EffectEstimate
from hte.pipeline import heterogeneity
from hte.pipeline.heterogeneity import all_heldout_effects
from hte.pipeline.model_average import average_heldout
from hte.pipeline.stages import FittedEffect, fit_estimators, prepare_analysis

MEMBERS = (
    "  - {name: logit, kind: logistic_interaction, params: {penalty: 1.0}}\n"
    "  - {name: forest, kind: crs_causal_forest, params: {n_estimators: 40}}\n"
)


def _config(tmp_path: Path, average: str, estimators: str = MEMBERS, os: str = "{enabled: false}"):
    text = (
        "name: avg\ndata: {source: synthetic, n: 300}\ntime_zero: [decision]\n"
        f"outcomes:\n  os: {os}\n  crs: {{any_grade: true, grade3: false}}\n"
        f"estimators:\n{estimators}evaluation:\n  model_average: {average}\nseeds: {{global: 4}}\n"
    )
    path = tmp_path / "avg.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.fixture(scope="module")
def crs_data():
    cohort = simulate_cohort(n=300, seed=4)
    return prepare_analysis(cohort, TimeZeroAnalysis(mode="decision"))


def test_the_average_fit_is_the_mean_of_its_members(tmp_path, crs_data):
    config = _config(tmp_path, "{members: [logit, forest], interval_member: forest}")
    fits = fit_estimators(crs_data, config)
    by_name = {f.estimator: f for f in fits}
    assert [f.estimator for f in fits] == ["logit", "forest", "model_average"]
    average = by_name["model_average"]
    assert average.error is None and average.kind == "model_average"
    logit, forest = by_name["logit"].estimate, by_name["forest"].estimate
    np.testing.assert_allclose(average.estimate.effect, (logit.effect + forest.effect) / 2)
    from hte.estimators.model_average import widened_band

    spread = [logit.effect, forest.effect]
    band = widened_band(
        average.estimate.effect, forest.effect, forest.lower, forest.upper, spread, 0.05
    )
    np.testing.assert_allclose(average.estimate.lower, band[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(average.estimate.upper, band[1], rtol=0, atol=1e-12)
    assert np.all(average.estimate.upper - average.estimate.effect >= forest.upper - forest.effect)
    own = average.model.estimate(crs_data.X, alpha=0.05)  # what the saved model gives later
    np.testing.assert_allclose(own.effect, average.estimate.effect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(own.lower, average.estimate.lower, rtol=0, atol=1e-12)


def test_a_failed_member_gives_the_average_an_error_not_a_silent_subset(tmp_path, crs_data):
    config = _config(tmp_path, "{members: [logit, forest]}")
    fits = fit_estimators(crs_data, config)
    fits[1].error, fits[1].estimate = "ValueError: broken", None
    from hte.pipeline.model_average import average_fits

    (average,) = average_fits(fits[:2], config)
    assert average.model is None and average.estimate is None
    assert average.error == "ValueError: member(s) not fitted for crs: forest"


def test_the_average_of_memorizers_never_saw_the_patients_it_scores(
    tmp_path, crs_data, monkeypatch
):
    monkeypatch.setattr(heterogeneity, "N_JOBS", 1)
    n = len(crs_data.cohort)
    dummy = EffectEstimate(np.zeros(n), np.zeros(n), np.zeros(n), "crs", None, 0.05, "memo")
    members = [
        FittedEffect(name, "logistic_interaction", "crs", "crs", None, SeenRows(), dummy)
        for name in ("logit", "forest")
    ]
    config = _config(tmp_path, "{members: [logit, forest]}")
    from hte.pipeline.model_average import average_fits

    for member in members:
        member.model.fit(crs_data.X)  # fitted on everybody: in sample each predicts 1
    (average,) = average_fits(members, config)
    assert np.all(average.model.predict(crs_data.X) == 1.0)
    refits = all_heldout_effects([*members, average], crs_data, seed=0)
    assert np.all(refits[average.key] == 0.0)  # held out: never predicted by a model that saw it
    refits["forest__crs"] = "ValueError: refit failed"
    assert average_heldout(average, refits).startswith("member forest has no held-out effects")


@pytest.mark.parametrize(
    ("average", "message"),
    [
        ("{members: [logit, forst]}", "member 'forst' is not in the estimators section; did you"),
        ("{members: [logit]}", "at least 2 items"),
        ("{members: [logit, logit]}", "member logit appears more than once"),
        ("{members: [logit, forest], interval_member: cox}", "interval_member 'cox' is not one"),
        ("{name: logit, members: [logit, forest]}", "'logit' is also an estimator's name"),
        ("{members: [logit, cox]}", "must estimate effects on one outcome; got logit (crs), cox"),
    ],
)
def test_a_model_average_naming_what_is_not_there_is_refused(tmp_path, average, message):
    estimators = MEMBERS + "  - {name: cox, kind: cox_interaction}\n"
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _config(tmp_path, average, estimators, os="{survival_horizon: 12}")
