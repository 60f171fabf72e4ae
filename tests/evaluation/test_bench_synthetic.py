"""The synthetic-truth benchmark harness: cells produce scored rows, and failures are recorded."""

import numpy as np
import pandas as pd

from hte.estimators import CoxInteractionModel, LogisticInteractionModel
from hte.evaluation.bench_synthetic import (
    ESTIMATORS,
    EstimatorSpec,
    markdown_table,
    run_cell,
    summarize,
)

CHEAP = (
    EstimatorSpec(
        "cox_interaction", "os", lambda t, h, s: CoxInteractionModel(target=t, horizon=h)
    ),
    EstimatorSpec("logistic_interaction", "crs", lambda t, h, s: LogisticInteractionModel()),
)


class _Broken:
    def fit(self, X, **kwargs):
        raise RuntimeError("deliberately broken")


def test_cell_scores_each_estimator_and_target_against_truth():
    rows = run_cell("default", seed=3, n=600, estimators=CHEAP)
    frame = pd.DataFrame(rows)
    assert list(frame["target"]) == ["rmst", "survival", "crs"]
    assert "error" not in frame.columns
    # the Cox interaction model tracks the true OS effect on this cohort: a harness that scored
    # against the wrong truth column (or the wrong patients) would give correlation near 0
    assert (frame.loc[frame.estimator == "cox_interaction", "correlation"] > 0.3).all()
    assert np.isfinite(frame["normalized_mse"]).all()
    assert (frame["fit_seconds"] > 0).all()


def test_a_failing_estimator_is_recorded_and_the_others_go_on():
    broken = EstimatorSpec("broken", "os", lambda t, h, s: _Broken())
    rows = run_cell("default", seed=3, n=400, estimators=(broken, CHEAP[1]))
    frame = pd.DataFrame(rows)
    failed = frame[frame.estimator == "broken"]
    assert len(failed) == 2 and failed["error"].str.contains("deliberately broken").all()
    assert frame.loc[frame.estimator == "logistic_interaction", "error"].isna().all()


def test_null_effect_has_no_normalized_mse_and_summary_averages_seeds():
    rows = run_cell("null_effect", seed=1, n=400, estimators=CHEAP[:1])
    rows += run_cell("null_effect", seed=2, n=400, estimators=CHEAP[:1])
    summary = summarize(pd.DataFrame(rows))
    assert set(summary["runs"]) == {2}
    assert summary["normalized_mse"].isna().all()  # Var(true CATE) = 0 under the null
    assert "| scenario |" in markdown_table(summary)


def test_every_registered_estimator_has_a_known_outcome():
    assert {spec.outcome for spec in ESTIMATORS} == {"os", "crs"}
    assert len({spec.name for spec in ESTIMATORS}) == len(ESTIMATORS)
