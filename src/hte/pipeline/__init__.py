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

from hte.lazy_names import lazy_names

# Each public name and the module that defines it. Imported on first use (PEP 562), so a worker
# process that unpickles one stage's task (held-out refits, SHAP, refutations) imports that
# stage's modules only, not the whole pipeline (about 2 s less per process).
_HOMES = {
    "PredictError": "hte.pipeline.predict",
    "load_run_config": "hte.pipeline.predict",
    "predict_run": "hte.pipeline.predict",
    "read_new_patients": "hte.pipeline.predict",
    "decision_truth": "hte.pipeline.results",
    "effects_frame": "hte.pipeline.results",
    "estimator_summary": "hte.pipeline.results",
    "time_zero_comparison": "hte.pipeline.results",
    "truth_column": "hte.pipeline.results",
    "truth_summary": "hte.pipeline.results",
    "RunResult": "hte.pipeline.run",
    "run_experiment": "hte.pipeline.run",
    "AnalysisData": "hte.pipeline.stages",
    "FittedEffect": "hte.pipeline.stages",
    "arm_predictions": "hte.pipeline.stages",
    "baseline_averages": "hte.pipeline.stages",
    "design_diagnostics": "hte.pipeline.stages",
    "fit_estimators": "hte.pipeline.stages",
    "prepare_analysis": "hte.pipeline.stages",
    "prepare_cohort": "hte.pipeline.stages",
    "render_summary": "hte.pipeline.summary",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
