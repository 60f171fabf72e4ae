"""The run's model choice (hte.pipeline.model_choice) on simulated cohorts with known answers: a
well-specified logistic interaction model beats the constant on a strong CRS interaction, the
constant is kept under a null effect, and the metrics are JSON-ready and reproducible."""

from __future__ import annotations

import json

import pytest
from known_effects import cohort_with_age_crs_interaction

from hte.config import TimeZeroAnalysis, load_config
from hte.data.simulate import simulate_cohort
from hte.pipeline.heterogeneity import all_heldout_effects
from hte.pipeline.model_choice import CONSTANT_WORDS, model_choices
from hte.pipeline.stages import design_diagnostics, fit_estimators, prepare_analysis
from hte.pipeline.target_scores import target_scores

ESTIMATORS = (
    "  - {name: cox, kind: cox_interaction}\n"
    "  - {name: logit, kind: logistic_interaction, params: {penalty: 1.0}}\n"
)


def _config(tmp_path, seed, survival=True):
    horizons = "{survival_horizon: 12, rmst_horizon: null}" if survival else "{enabled: false}"
    estimators = ESTIMATORS if survival else ESTIMATORS.splitlines(keepends=True)[1]
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: c\ndata: {source: synthetic, n: 100}\ntime_zero: [decision]\n"
        f"outcomes:\n  os: {horizons}\n  crs: {{any_grade: true, grade3: false}}\n"
        f"estimators:\n{estimators}seeds: {{global: {seed}}}\n",
        encoding="utf-8",
    )
    return load_config(path)


def _inputs(cohort, config, seed):
    data = prepare_analysis(cohort, TimeZeroAnalysis(mode="decision"))
    design_diagnostics(data, seed)
    fits = fit_estimators(data, config)
    scores = target_scores(data, fits, seed)
    refits = all_heldout_effects(fits, data, seed)
    return data, fits, scores, refits


def _choose(cohort, config, seed):
    return model_choices(*_inputs(cohort, config, seed), 0.05, seed)


def test_a_strong_known_interaction_is_chosen_over_the_constant(tmp_path):
    # CRS redrawn from a logistic model with a strong age x arm interaction: the logistic
    # interaction model is well specified and must beat the constant by > 2 SE
    seed, n = 11, 1500
    cohort = cohort_with_age_crs_interaction(seed, n)
    metrics, choices = _choose(cohort, _config(tmp_path, seed, survival=False), seed)
    m = metrics["crs"]
    assert m["chosen"] == "logit" and m["shown"] == "logit" and m["statement"] is None
    assert m["gate"] == "slope" and m["gate_z"] > 2  # the default gate
    by_loss, _ = model_choices(
        *_inputs(cohort, _config(tmp_path, seed, survival=False), seed), 0.05, seed, gate="loss"
    )
    assert by_loss["crs"]["chosen"] == "logit" and by_loss["crs"]["gate"] == "loss"
    assert choices["crs"].estimator == "logit" and len(choices["crs"].cuts) == 4
    cal = m["benefit_calibration"]["logit"]
    assert abs(cal["slope"] - 1) < 3 * cal["slope_se"]  # well specified: calibrated for benefit
    groups = m["patients_like_this"]["groups"]
    assert groups[-1]["estimate"] > groups[0]["estimate"]  # the top fifth gains more
    assert sum(g["n"] for g in groups) == n


@pytest.fixture(scope="module")
def null_choice(tmp_path_factory):
    seed = 3
    cohort = simulate_cohort(n=1000, seed=seed, scenario="null_effect")
    config = _config(tmp_path_factory.mktemp("null"), seed)
    inputs = _inputs(cohort, config, seed)  # the AIPCW nuisances are most of the time
    by_loss = model_choices(*inputs, 0.05, seed, gate="loss")
    return model_choices(*inputs, 0.05, seed), model_choices(*inputs, 0.05, seed), by_loss


def test_under_a_null_effect_the_constant_is_shown(null_choice):
    (metrics, choices), _, _ = null_choice
    for target in ("survival", "crs"):
        assert metrics[target]["chosen"] == "constant", metrics[target]["reason"]
        assert metrics[target]["statement"] == CONSTANT_WORDS
        assert choices[target].is_constant
        names = {r["candidate"] for r in metrics[target]["losses"]}
        assert {"constant", "stack"} <= names and len(names) == 3


def test_choice_metrics_are_json_ready_and_reproducible(null_choice):
    (a, _), (b, _), _ = null_choice
    text = json.dumps(a, sort_keys=True, allow_nan=False)
    assert text == json.dumps(b, sort_keys=True, allow_nan=False)


def test_the_loss_gate_also_keeps_the_constant_under_a_null_effect(null_choice):
    _, _, (metrics, choices) = null_choice
    for target in ("survival", "crs"):
        assert metrics[target]["gate"] == "loss"
        assert metrics[target]["chosen"] == "constant", metrics[target]["reason"]
        assert choices[target].is_constant
