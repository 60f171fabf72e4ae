"""From fits to tables and metrics: the effects table, per-estimator averages, truth metrics,
the decision-time truth and the time-zero comparison."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from hte.config import ExperimentConfig
from hte.data.columns import PATIENT_ID, TREATMENT, TRUE_CATE_COLUMNS, TRUTH_PREFIX
from hte.errors import STAGE_FAILURES
from hte.evaluation.cohort_calibration import HR_HORIZON_MONTHS
from hte.pipeline.stages import ANALYSIS, AnalysisData, FittedEffect, crs_outcomes
from hte.runs import (
    EFFECT,
    LOWER,
    UPPER,
    AnalysisSummary,
    AverageEffect,
    EstimatorSummary,
    effects_column,
)
from hte.vocabulary import OS_TARGETS

log = logging.getLogger("hte.pipeline")


# --------------------------------------------------------------------------------------------------
# Stage 5: tables and metrics


def effects_frame(data: AnalysisData, fits: list[FittedEffect]) -> pd.DataFrame:
    """One row per analysed patient: id, analysis, treatment, and for each fit
    ``<estimator>__<target>__effect/lower/upper`` plus its per-arm predictions."""
    cols: dict[str, Any] = {
        PATIENT_ID: data.cohort[PATIENT_ID].astype(str).to_numpy(),
        ANALYSIS: np.full(len(data.cohort), data.label, dtype=object),
        TREATMENT: data.cohort[TREATMENT].astype(str).to_numpy(),
    }
    for fit in fits:
        if fit.estimate is None:
            continue
        cols[effects_column(fit.key, EFFECT)] = np.asarray(fit.estimate.effect, dtype=float)
        cols[effects_column(fit.key, LOWER)] = np.asarray(fit.estimate.lower, dtype=float)
        cols[effects_column(fit.key, UPPER)] = np.asarray(fit.estimate.upper, dtype=float)
        for name, values in fit.arms.items():
            cols[effects_column(fit.key, name)] = np.asarray(values, dtype=float)
    return pd.DataFrame(cols)


def estimator_summary(
    fit: FittedEffect, alpha: float, X: pd.DataFrame | None = None
) -> EstimatorSummary:
    """Average of the per-patient effects, with an interval for the average where the estimator
    offers one (causal survival forest: AIPW over its cross-fitted scores; CRS forest: econml's
    average-effect inference)."""
    out: dict[str, Any] = {"kind": fit.kind, "target": fit.target, "horizon": fit.horizon}
    if fit.error is not None:
        return EstimatorSummary(**out, error=fit.error, fix=fit.fix)
    fit_info = getattr(fit.model, "fit_info_", None)
    if fit_info:  # e.g. Cox with interactions: the penalizer used, and why it was raised
        out["fit"] = dict(fit_info)
    est = fit.estimate
    effect, lo, hi = (np.asarray(a, dtype=float) for a in (est.effect, est.lower, est.upper))
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    out |= {
        "mean_effect": float(effect.mean()),
        "sd_effect": float(effect.std()),
        "quantiles": dict(
            zip(("q10", "q50", "q90"), np.quantile(effect, [0.1, 0.5, 0.9]), strict=True)
        ),
        "share_excluding_zero": float(np.mean((lo[ok] > 0) | (hi[ok] < 0))) if ok.any() else None,
        "share_with_interval": float(ok.mean()),
    }
    average = _average_interval(fit, X, alpha)
    if average is not None:
        out["average"] = average
    return EstimatorSummary(**out)


def _average_interval(
    fit: FittedEffect, X: pd.DataFrame | None, alpha: float
) -> AverageEffect | None:
    model = fit.model
    try:
        if hasattr(model, "average_effect"):
            est, lo, hi = model.average_effect(alpha=alpha)
            return AverageEffect(
                estimate=est, lower=lo, upper=hi, method="AIPW on the cross-fitted scores"
            )
        inner = getattr(model, "model_", None)
        if X is not None and inner is not None and hasattr(inner, "ate_interval"):
            arr = X.to_numpy(dtype=float)
            lo, hi = inner.ate_interval(arr, alpha=alpha)
            return AverageEffect(
                estimate=float(np.ravel(inner.ate(arr))[0]),
                lower=float(np.ravel(lo)[0]),
                upper=float(np.ravel(hi)[0]),
                method="econml average-effect inference over the analysed patients",
            )
    except STAGE_FAILURES as exc:  # an optional extra: say why it is absent
        log.warning("no average interval for %s: %s", fit.key, exc)
    return None


def truth_column(target: str, horizon: float | None) -> str | None:
    """The simulated true-CATE column of a target, or None when the simulator has none for it."""
    return TRUE_CATE_COLUMNS.get((target, None if horizon is None else float(horizon)))


def truth_summary(fit: FittedEffect, cohort: pd.DataFrame) -> dict | None:
    """hte.evaluation.truth_metrics of one fit against the cohort's true CATE column."""
    from hte.evaluation.truth_metrics import truth_metrics

    column = truth_column(fit.target, fit.horizon)
    if fit.estimate is None or column is None or column not in cohort.columns:
        return None
    metrics = truth_metrics(fit.estimate, cohort[column].to_numpy(dtype=float))
    for key in ("estimator", "target", "horizon", "alpha"):
        metrics.pop(key, None)
    return metrics | {"truth_column": column}


def truth_enabled(config: ExperimentConfig, cohort: pd.DataFrame) -> bool:
    """Truth metrics: on when asked (``true``) and the cohort has true_* columns; ``auto`` turns
    them on for the simulator's cohorts only (a file's true_* columns are not known truth)."""
    setting = config.evaluation.truth_metrics
    has_truth = any(str(c).startswith(TRUTH_PREFIX) for c in cohort.columns)
    if setting == "auto":
        return has_truth and config.data.source == "synthetic"
    return bool(setting) and has_truth


def decision_truth(cohort: pd.DataFrame, config: ExperimentConfig) -> dict:
    """Averages of the decision-time truth over the whole cohort: true ATEs per OS target and CRS
    outcome, and a 'true' marginal hazard ratio (Cox on both potential outcome draws of every
    patient, no censoring, cut at 24 months as in hte.evaluation.cohort_calibration)."""
    from hte.evaluation.cohort_calibration import true_marginal_hr

    out: dict[str, Any] = {}
    for target, horizon in config.outcomes.os.targets():
        column = truth_column(target, horizon)
        if column in cohort.columns:
            out[f"ate_{target}"] = float(cohort[column].mean())
    for outcome in crs_outcomes(config, cohort):
        column = truth_column(outcome, None)
        if column in cohort.columns:
            out[f"ate_{outcome}"] = float(cohort[column].mean())
    t1, t0 = "true_os_months_cart", "true_os_months_tec"
    if {t1, t0} <= set(cohort.columns):
        out["hazard_ratio"] = true_marginal_hr(cohort)
        out["hazard_ratio_method"] = (
            "Cox on both potential survival times of every patient, cut at "
            f"{HR_HORIZON_MONTHS:g} mo (hte.evaluation.cohort_calibration.true_marginal_hr)"
        )
    return out


def time_zero_comparison(analyses: dict[str, AnalysisSummary], truth: dict) -> list[dict]:
    """Per analysis: hazard ratio and average effects (IPTW baselines and each estimator's mean
    CATE) beside the decision-time truth of the whole cohort, with the bias."""
    rows = []
    for label, analysis in analyses.items():
        base = analysis.baselines or {}
        row: dict[str, Any] = {
            ANALYSIS: label,
            "mode": analysis.mode,
            "n_analysed": analysis.n_analysed,
            "n_excluded": analysis.n_excluded,
        }
        hr = base.get("hazard_ratio_iptw")
        if hr is not None:
            row["hazard_ratio_iptw"] = hr["hr"]
            row["hazard_ratio_iptw_ci"] = [hr["lower"], hr["upper"]]
            if "hazard_ratio" in truth:
                row["hazard_ratio_true"] = truth["hazard_ratio"]
        for target in OS_TARGETS:
            true = truth.get(f"ate_{target}")
            ate = base.get(f"ate_{target}_iptw_km")
            if ate is not None:
                row[f"ate_{target}_iptw_km"] = ate["estimate"]
                if true is not None:
                    row[f"ate_{target}_iptw_km_bias"] = ate["estimate"] - true
            if true is not None:
                row[f"ate_{target}_true"] = true
            for name, by_target in analysis.estimators.items():
                summary = by_target.get(target)
                if summary is not None and summary.mean_effect is not None:
                    row[f"{name}__{target}__mean"] = summary.mean_effect
                    if true is not None:
                        row[f"{name}__{target}__bias"] = summary.mean_effect - true
        rows.append(row)
    return rows
