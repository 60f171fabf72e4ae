"""The scoring of one fit against the simulated truth (shared by every sweep cell), failures
recorded rather than raised, and the summary over seeds."""

import numpy as np
import pandas as pd
import pytest

from hte.data.simulate import simulate_cohort
from hte.design.design_matrix import build_design_matrix, treatment_array
from hte.errors import FitError
from hte.estimators import CoxInteractionModel, LogisticInteractionModel
from hte.evaluation.truth_scoring import (
    markdown_table,
    score_fit,
    summarize,
    summary_markdown,
    truth_column,
)


class _Broken:
    """Fails as data can make a fit fail (a diagnosed error): recorded."""

    def fit(self, X, **kwargs):
        raise FitError("deliberately broken")


class _Buggy:
    """Fails as a bug does (a TypeError in our own code): raised, never recorded."""

    def fit(self, X, **kwargs):
        raise TypeError("fit() got an unexpected keyword argument 'typo'")


def _data(scenario: str, seed: int, n: int):
    cohort = simulate_cohort(n=n, seed=seed, scenario=scenario)
    return build_design_matrix(cohort).X, cohort, treatment_array(cohort)


def test_score_fit_scores_each_target_against_its_truth_column():
    X, cohort, w = _data("default", seed=3, n=600)
    rows = {
        "rmst": score_fit(
            lambda: CoxInteractionModel(target="rmst", horizon=24.0),
            "os",
            "rmst",
            24.0,
            X,
            cohort,
            w,
        ),
        "survival": score_fit(
            lambda: CoxInteractionModel(target="survival", horizon=12.0),
            "os",
            "survival",
            12.0,
            X,
            cohort,
            w,
        ),
        "crs": score_fit(LogisticInteractionModel, "crs", "crs", None, X, cohort, w),
    }
    for row in rows.values():
        assert "error" not in row
        assert np.isfinite(row["normalized_mse"]) and row["fit_seconds"] > 0
        assert row["n_analysed"] == 600
    # the Cox interaction model tracks the true OS effect on this cohort: a scorer reading the
    # wrong truth column (or the wrong patients) would give a correlation near 0
    assert rows["rmst"]["correlation"] > 0.3 and rows["survival"]["correlation"] > 0.3
    # scored against the right column: the reported true ATE is that column's mean
    assert rows["crs"]["ate_true"] == pytest.approx(cohort["true_cate_crs"].mean())


def test_a_failing_estimator_is_recorded_not_raised():
    X, cohort, w = _data("default", seed=3, n=300)
    row = score_fit(_Broken, "os", "rmst", 24.0, X, cohort, w)
    assert row["error"] == "FitError: deliberately broken" and row["fit_seconds"] >= 0


def test_a_bug_in_an_estimator_propagates():
    X, cohort, w = _data("default", seed=3, n=300)
    with pytest.raises(TypeError, match="unexpected keyword"):
        score_fit(_Buggy, "os", "rmst", 24.0, X, cohort, w)


def test_a_target_without_truth_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="no true effect for rmst at 36 months"):
        truth_column("rmst", 36)
    assert truth_column("crs_g3", None) == "true_cate_crs_g3"


def test_null_effect_has_no_normalized_mse_and_summary_averages_seeds():
    rows = []
    for seed in (1, 2):
        X, cohort, w = _data("null_effect", seed=seed, n=400)
        make = lambda: CoxInteractionModel(target="rmst", horizon=24.0)  # noqa: E731
        rows.append(
            {"scenario": "null_effect", "estimator": "cox", "target": "rmst", "seed": seed}
            | score_fit(make, "os", "rmst", 24.0, X, cohort, w)
        )
    rows.append(
        {
            "scenario": "null_effect",
            "estimator": "cox",
            "target": "rmst",
            "seed": 3,
            "error": "RuntimeError: x",
        }
    )
    summary = summarize(pd.DataFrame(rows))
    assert summary[["runs", "failed"]].values.tolist() == [[2, 1]]
    assert summary["normalized_mse"].isna().all()  # Var(true CATE) = 0 under the null
    assert summary["mse"].iloc[0] == pytest.approx(np.mean([r["mse"] for r in rows[:2]]))
    assert "| scenario |" in markdown_table(summary)
    assert "Measured with `cmd`" in summary_markdown(summary, "cmd", "t", "95%")
    assert "whose 90% interval holds" in summary_markdown(summary, "cmd", "t", "90%")
