"""A file cohort as real data arrives, through `run_experiment`: follow-up of 0 moved by the
day-zero rule and counted in metrics.json, true_* columns ignored under truth_metrics auto, a
Cox fit on collinear covariates refitted with a ridge (penalizer recorded), and an estimator that
still fails recorded with its reason and fix while the others complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from hte.config import load_config
from hte.data.simulate import simulate_cohort
from hte.errors import failure_fix
from hte.pipeline import run_experiment


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("input_rules")
    cohort = simulate_cohort(400, seed=8)  # keeps its true_* columns, as an exported file would
    zero = [0, 1, 2, 3]
    cohort.loc[zero, "os_months"] = 0.0
    cohort.loc[zero, "death"] = [True, True, False, False]
    cohort.loc[zero, "infusion_day"] = np.nan
    cohort["age_months"] = cohort["age"] * 12.0  # the same covariate twice: collinear
    path = folder / "registry.csv"
    cohort.to_csv(path, index=False)
    config = {
        "name": "registry",
        "data": {"source": "file", "path": str(path)},
        "outcomes": {
            "os": {"survival_horizon": 12, "rmst_horizon": None},
            "crs": {"enabled": False},
        },
        "estimators": [
            {"name": "cox", "kind": "cox_interaction"},
            {"name": "broken", "kind": "t_learner", "params": {"base_params": {"no_such": 1}}},
        ],
        "evaluation": {"robustness": False},
        "explanation": {"shap": False, "subgroup_rules": False},
    }
    config_path = folder / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(folder / "home"))
    result = run_experiment(
        load_config(config_path), output_root=folder / "runs", progress=False, write_models=False
    )
    mp.undo()
    return result


def test_day_zero_rule_is_applied_once_and_recorded(run):
    metrics = json.loads((run.run_dir / "metrics.json").read_text(encoding="utf-8"))
    day_zero = metrics["data_rules"]["day_zero"]
    assert (day_zero["n_rows"], day_zero["n_deaths"], day_zero["n_censored"]) == (4, 2, 2)
    assert day_zero["offset_days"] == 0.5
    assert "follow-up of 0 counted as 0.5 day(s)" in day_zero["rule"]
    assert metrics["analyses"]["decision"]["n_analysed"] == 400  # nobody dropped


def test_true_columns_of_a_file_are_ignored(run):
    assert run.metrics["truth_metrics"] is False
    assert (
        "true_* column(s) in a file cohort are ignored"
        in run.metrics["data_rules"]["truth_columns_ignored"]
    )
    cox = run.metrics["analyses"]["decision"]["estimators"]["cox"]["survival"]
    assert "truth" not in cox


def test_cox_ridge_fallback_is_recorded(run):
    cox = run.metrics["analyses"]["decision"]["estimators"]["cox"]["survival"]
    assert cox["fit"]["ridge_fallback"] is True and cox["fit"]["penalizer_used"] == 0.01
    assert np.isfinite(cox["mean_effect"]) and abs(cox["mean_effect"]) < 0.5


def test_a_failing_estimator_is_reported_with_reason_and_fix_and_the_others_complete(run):
    broken = run.metrics["analyses"]["decision"]["estimators"]["broken"]["survival"]
    assert "no_such" in broken["error"] and broken["fix"]
    assert any(
        f.startswith("decision/broken__survival:") and "(fix:" in f for f in run.metrics["failures"]
    )
    assert "mean_effect" in run.metrics["analyses"]["decision"]["estimators"]["cox"]["survival"]


@pytest.mark.parametrize(
    ("error", "fix"),
    [
        (ValueError("horizon 12 is beyond the longest follow-up"), "choose a horizon"),
        (
            ValueError("Cox with interactions did not converge ... penalizer"),
            "raise params.penalizer",
        ),
        (RuntimeError("logistic regression did not converge"), "set a penalty"),
        (MemoryError(), "ran out of memory"),
        (KeyError("x"), "see run.log"),
    ],
)
def test_failure_fix_says_what_to_do(error, fix):
    assert fix in failure_fix(error, "cox_interaction")
