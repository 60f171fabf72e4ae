"""The experiment pipeline: config -> data -> design -> estimators -> evaluation -> run folder.

Every stage is a plain function a notebook can call on its own (``hte.pipeline.stages``):

- ``prepare_cohort(config)``: the synthetic draw, or the user's file through its column map.
- ``prepare_analysis(cohort, analysis)``: one analysis time zero (exclusions counted by reason),
  the design matrix (encoding fitted on the analysed cohort, reused by ``hte predict``), treatment.
- ``design_diagnostics(data, seed)``: cross-fitted propensity, overlap summary, covariate balance.
- ``baseline_averages(data, config)``: IPTW Cox hazard ratio, IPTW Kaplan-Meier survival and RMST
  differences, AIPW CRS risk difference, to set beside published numbers.
- ``fit_estimators(data, config)``: every configured estimator, once per OS target / CRS outcome.

``hte.pipeline.results`` turns fits into the effects table and metrics (truth metrics, the
time-zero comparison); ``run_experiment`` (``hte.pipeline.run``) chains everything and writes the
run folder (layout in ``hte.runs``); ``predict_run`` scores new patients with a run's models;
``render_summary`` is the console summary.
"""

from hte.pipeline.predict import PredictError, load_run_config, predict_run, read_new_patients
from hte.pipeline.results import (
    decision_truth,
    effects_frame,
    estimator_summary,
    time_zero_comparison,
    truth_column,
    truth_summary,
)
from hte.pipeline.run import RunResult, run_experiment
from hte.pipeline.stages import (
    AnalysisData,
    FittedEffect,
    arm_predictions,
    baseline_averages,
    design_diagnostics,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)
from hte.pipeline.summary import render_summary

__all__ = [
    "AnalysisData",
    "FittedEffect",
    "PredictError",
    "RunResult",
    "arm_predictions",
    "baseline_averages",
    "decision_truth",
    "design_diagnostics",
    "effects_frame",
    "estimator_summary",
    "fit_estimators",
    "load_run_config",
    "predict_run",
    "prepare_analysis",
    "prepare_cohort",
    "read_new_patients",
    "render_summary",
    "run_experiment",
    "time_zero_comparison",
    "truth_column",
    "truth_summary",
]
