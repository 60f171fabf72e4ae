"""Pipeline stages as plain functions: cohort, time zero and design, propensity and balance,
IPTW baselines, estimator fits (each callable from a notebook)."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from hte.config import DataFacts, ExperimentConfig, FileData, OmopData, TimeZeroAnalysis
from hte.data.columns import CRS, CRS_GRADE, DEATH, OS_MONTHS
from hte.design.design_matrix import DesignMatrix, build_design_matrix, treatment_array
from hte.design.effect_data import EffectData
from hte.errors import STAGE_FAILURES, failure_fix
from hte.estimators.shared_nuisances import DEFAULT_SURVIVAL, Nuisances, fit_nuisances
from hte.evaluation.cohort_calibration import HR_HORIZON_MONTHS
from hte.runs import ANALYSIS_COLUMN, fingerprint_file, fingerprint_frame, fit_key
from hte.vocabulary import CRS_TARGETS

log = logging.getLogger("hte.pipeline")


ANALYSIS = ANALYSIS_COLUMN  # the effects table's analysis column (hte.runs.layout)
DAY_ZERO_ATTR = "hte_day_zero"  # cohort.attrs key: what the day-zero rule did
KM_BOOTSTRAP = 200  # bootstrap draws of the IPTW Kaplan-Meier intervals
# the estimator fits are independent (hte.pipeline.parallel). 2: the fits that spread over
# threads (forests) run in worker processes while the single-threaded ones (BCF, boosting, Cox)
# run here, side by side; 1: every fit in this process, one after another. Sending every fit
# to the workers cost about twice the CPU (a BCF pickles through 40 MB of JSON) for no wall
# time on 2 cores (docs/speed.md)
FIT_JOBS = 2


@dataclass
class AnalysisData:
    """One analysis time zero, ready for fitting."""

    label: str
    mode: str
    cohort: pd.DataFrame  # analysed rows, os_months on the analysis clock
    n_excluded_by_reason: dict[str, int]
    description: str
    design: DesignMatrix
    treatment: np.ndarray  # 0/1, 1 = CAR-T
    propensity: np.ndarray | None = None  # cross-fitted, set by design_diagnostics
    nuisances: Nuisances | None = None  # shared cross-fitted nuisances (fit_analysis_nuisances)
    _effect_data: EffectData | None = field(default=None, repr=False)

    @property
    def X(self) -> pd.DataFrame:
        return self.design.X

    @property
    def effect_data(self) -> EffectData:
        """The analysis's roles (covariates, arm, OS, CRS and grade) as one checked object,
        built once: what every estimator's ``fit`` takes."""
        if self._effect_data is None:
            t, d = self.survival_outcome() if self.has_os else (None, None)
            cohort = self.cohort
            self._effect_data = EffectData.from_arrays(
                self.X,
                self.treatment,
                time=t,
                event=d,
                crs=cohort[CRS].to_numpy(dtype=int) if CRS in cohort.columns else None,
                crs_grade=cohort[CRS_GRADE].to_numpy() if CRS_GRADE in cohort.columns else None,
                allow_nan=True,
            )
        return self._effect_data

    @property
    def has_os(self) -> bool:
        return OS_MONTHS in self.cohort.columns and DEATH in self.cohort.columns

    def survival_outcome(self) -> tuple[np.ndarray, np.ndarray]:
        return (
            self.cohort[OS_MONTHS].to_numpy(dtype=float),
            self.cohort[DEATH].to_numpy(dtype=bool),
        )


@dataclass
class FittedEffect:
    """One estimator fitted for one target: the model, its estimate on the analysed cohort, the
    per-arm predictions it offers, or the error that stopped it."""

    estimator: str  # the config name
    kind: str
    outcome: str  # "os" | "crs"
    target: str  # "survival" | "rmst" | "crs" | "crs_g3"
    horizon: float | None
    model: Any = None
    estimate: Any = None  # hte.estimators.EffectEstimate
    arms: dict[str, np.ndarray] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    fix: str | None = None  # how to fix the error, in words

    @property
    def key(self) -> str:
        return fit_key(self.estimator, self.target)


# --------------------------------------------------------------------------------------------------
# Stage 1: the cohort


def prepare_cohort(
    config: ExperimentConfig, facts: DataFacts | None = None
) -> tuple[pd.DataFrame, dict]:
    """The validated cohort and its fingerprint (sha256, n, columns).

    Synthetic: ``simulate_cohort(n, seed, scenario)``, fingerprinted by its canonical CSV. File:
    the cohort the pre-flight already loaded (``facts.cohort``) or ``load_cohort`` with the
    column map, fingerprinted by the file's bytes. OMOP: the cohort the pre-flight built from the
    database (or built here), fingerprinted by its canonical CSV, with the database named.

    The day-zero rule (``hte.data.day_zero``) is applied here, the one place it is applied (to
    every source): follow-up of 0 counts as ``outcomes.os.day_zero_days``; ``data_rules`` says
    what it did.
    """
    from hte.data.day_zero import apply_day_zero

    data = config.data
    if isinstance(data, OmopData):
        cohort = facts.cohort if facts is not None and facts.cohort is not None else None
        if cohort is None:
            from hte.data.omop.build import build_cohort

            cohort = build_cohort(data.db, data.spec).cohort
        from hte.data.omop.connection import hide_password

        fingerprint = {**fingerprint_frame(cohort), "source": f"omop: {hide_password(data.db)}"}
    elif isinstance(data, FileData):
        cohort = facts.cohort if facts is not None and facts.cohort is not None else None
        if cohort is None:
            from hte.data.load import load_cohort

            cohort = load_cohort(data.path, column_map=data.columns, max_file_mb=data.max_file_mb)
        fingerprint = fingerprint_file(data.path, cohort)
    else:
        from hte.data.simulate import simulate_cohort

        cohort = simulate_cohort(n=data.n, seed=int(data.seed), scenario=data.scenario)
        fingerprint = fingerprint_frame(cohort)
    ruled, moved = apply_day_zero(cohort, config.outcomes.os.day_zero_days)
    ruled = ruled.copy() if ruled is cohort else ruled
    ruled.attrs[DAY_ZERO_ATTR] = moved.as_dict()
    return ruled, fingerprint


def data_rules(config: ExperimentConfig, cohort: pd.DataFrame) -> dict:
    """What the data rules did to a cohort from ``prepare_cohort`` (metrics.json
    ``data_rules``): the day-zero rule (offset, rows moved, deaths and censorings among them),
    the columns the column map excluded, and the true_* columns a file cohort carries (ignored:
    truth metrics are for the simulator's cohorts)."""
    from hte.data.columns import TRUTH_PREFIX

    day_zero = cohort.attrs.get(DAY_ZERO_ATTR)
    if day_zero is None:  # a cohort that did not come through prepare_cohort
        raise ValueError("data_rules needs the cohort prepare_cohort returned")
    out: dict[str, Any] = {"day_zero": dict(day_zero)}
    if isinstance(config.data, FileData):
        out["excluded_columns"] = {
            name: "column map: exclude" for name in config.data.columns.exclude
        }
        truth = [str(c) for c in cohort.columns if str(c).startswith(TRUTH_PREFIX)]
        if truth and config.evaluation.truth_metrics != True:  # noqa: E712 (True, not "auto")
            out["truth_columns_ignored"] = (
                f"{len(truth)} true_* column(s) in a file cohort are ignored (truth metrics are "
                "for simulated cohorts; set evaluation.truth_metrics: true to use them)"
            )
    return out


# --------------------------------------------------------------------------------------------------
# Stage 2: time zero and design


def prepare_analysis(cohort: pd.DataFrame, analysis: TimeZeroAnalysis) -> AnalysisData:
    """Apply one analysis time zero and encode the analysed cohort's covariates.

    Missing covariate values are imputed with the median plus a ``<col>_missing`` indicator (the
    encoding records it; nothing is imputed silently, see ``DesignMatrix.describe_missing``).
    """
    from hte.design.time_zero import apply_time_zero

    moved = apply_time_zero(cohort, analysis.mode, analysis.landmark_days)
    analysed = moved.cohort.reset_index(drop=True)
    design = build_design_matrix(analysed, impute="median")
    return AnalysisData(
        label=str(analysis.label),
        mode=analysis.mode,
        cohort=analysed,
        n_excluded_by_reason=dict(moved.n_excluded_by_reason),
        description=moved.description,
        design=design,
        treatment=treatment_array(analysed),
    )


def fit_analysis_nuisances(data: AnalysisData, config: ExperimentConfig) -> Nuisances:
    """Cross-fit the analysis's nuisances once (``hte.estimators.shared_nuisances``): the
    propensity, event and censoring survival on one grid reaching the largest OS horizon (the
    causal survival forest's default settings, the run's seed) and the CRS arm risks; stored on
    ``data`` and read by the design diagnostics, baselines, estimator fits, DR scores and
    refutation originals."""
    os_cfg = config.outcomes.os
    horizons = [h for _, h in os_cfg.targets()] if os_cfg.enabled and data.has_os else []
    crs = crs_outcomes(config, data.cohort) if CRS in data.cohort.columns else []
    data.nuisances = fit_nuisances(
        data.effect_data,
        horizons=horizons,
        crs_outcomes=crs,
        random_state=config.seed,
        **DEFAULT_SURVIVAL,
    )
    return data.nuisances


def design_diagnostics(data: AnalysisData, seed: int) -> dict:
    """Cross-fitted propensity (stored on ``data``; the shared nuisances' when fitted), overlap
    summary and covariate balance before and after stabilized IPTW."""
    from hte.design.overlap import ate_weights, balance_table, overlap_summary
    from hte.design.propensity import cross_fit_propensity

    if data.nuisances is not None and data.nuisances.settings["random_state"] == seed:
        e = data.nuisances.propensity
    else:
        e = cross_fit_propensity(data.X, data.treatment, random_state=seed)
    data.propensity = e
    overlap = overlap_summary(e, data.treatment).as_dict()
    weights = ate_weights(e, data.treatment, kind="ipw")
    table = balance_table(data.X, data.treatment, weights=weights)
    smd = table[["smd", "smd_w"]].abs()
    return {
        "propensity": {
            "method": "5-fold cross-fitted gradient boosting (hte.design.propensity)",
            "mean_cart": float(e[data.treatment == 1].mean()),
            "mean_tec": float(e[data.treatment == 0].mean()),
        },
        "overlap": overlap,
        "balance": {
            "max_abs_smd": float(smd["smd"].max()),
            "max_abs_smd_iptw": float(smd["smd_w"].max()),
            "smd": {c: {"unweighted": r.smd, "iptw": r.smd_w} for c, r in table.iterrows()},
        },
    }


# --------------------------------------------------------------------------------------------------
# Stage 3: baseline averages beside published numbers


def _iptw(data: AnalysisData) -> np.ndarray:
    from hte.design.overlap import ate_weights

    if data.propensity is None:
        raise RuntimeError("run design_diagnostics first (it sets the cross-fitted propensity)")
    return ate_weights(data.propensity, data.treatment, kind="ipw")


def crs_outcomes(config: ExperimentConfig, cohort: pd.DataFrame) -> list[str]:
    return config.outcomes.crs.outcomes(has_grade=CRS_GRADE in cohort.columns)


def baseline_averages(data: AnalysisData, config: ExperimentConfig) -> dict:
    """Average effects with intervals: IPTW Cox hazard ratio, IPTW Kaplan-Meier differences
    (survival at its horizon, RMST up to its horizon) and AIPW CRS risk differences."""
    from hte.estimators import (
        average_treatment_effect_survival,
        weighted_cox_hazard_ratio,
    )

    out: dict[str, Any] = {}
    alpha = config.evaluation.alpha
    weights = _iptw(data)
    if config.outcomes.os.enabled and data.has_os:
        t, d = data.survival_outcome()
        cut = np.minimum(t, HR_HORIZON_MONTHS)
        hr = weighted_cox_hazard_ratio(
            cut, d & (t <= HR_HORIZON_MONTHS), data.treatment, weights, alpha=alpha
        )
        out["hazard_ratio_iptw"] = asdict(hr) | {
            "method": f"Cox on treatment, IPTW, robust SE, follow-up cut at {HR_HORIZON_MONTHS:g} mo"
        }
        for target, horizon in config.outcomes.os.targets():
            ate = average_treatment_effect_survival(
                t,
                d,
                data.treatment,
                weights,
                horizon=horizon,
                alpha=alpha,
                n_bootstrap=KM_BOOTSTRAP,
                random_state=config.seed,
            )
            out[f"ate_{target}_iptw_km"] = asdict(getattr(ate, target))
        if config.evaluation.matching:
            from hte.pipeline.matched import matched_comparison

            out["matched"] = matched_comparison(
                data.propensity, data.treatment, data.X, (t, d), config, KM_BOOTSTRAP
            )
    for outcome in crs_outcomes(config, data.cohort):
        out[f"ate_{outcome}_aipw"] = asdict(_aipw_crs(data, outcome, alpha, config.seed))
    return out


def _aipw_crs(data: AnalysisData, outcome: str, alpha: float, seed: int):
    """AIPW risk difference with cross-fitted outcome models (boosting on covariates + arm)."""
    from hte.estimators import average_treatment_effect_binary

    _, y, w, e, mu1, mu0 = crs_nuisances(data, outcome, seed)
    return average_treatment_effect_binary(y, w, e, mu1=mu1, mu0=mu0, alpha=alpha, target=outcome)


def crs_nuisances(data: AnalysisData, outcome: str, seed: int):
    """Cross-fitted CRS nuisances of one analysis: ``(keep, y, w, e, mu1, mu0)`` over the rows
    ``keep`` that carry the outcome; e is the design's cross-fitted propensity, mu1/mu0 come from
    boosting on covariates + arm fitted on the other folds."""
    from hte.estimators.crs_outcomes import crs_binary_outcome
    from hte.evaluation.average_effects import cross_fit_arm_risks

    shared = data.nuisances
    if shared is not None and shared.settings["random_state"] == seed and outcome in shared.crs:
        risks = shared.crs[outcome]
        e_all = data.propensity if data.propensity is not None else shared.propensity
        w, e = data.treatment[risks.keep], e_all[risks.keep]
        return risks.keep, risks.y, w, e, risks.mu1, risks.mu0
    grade = data.cohort[CRS_GRADE].to_numpy() if CRS_GRADE in data.cohort.columns else None
    y, keep = crs_binary_outcome(
        data.cohort[CRS].to_numpy(dtype=int), grade, outcome, len(data.cohort)
    )
    X = data.X.to_numpy(dtype=float)[keep]
    w, e, y = data.treatment[keep], data.propensity[keep], y[keep]
    mu1, mu0 = cross_fit_arm_risks(X, w, y, seed)
    return keep, y, w, e, mu1, mu0


# --------------------------------------------------------------------------------------------------
# Stage 4: estimators


def _fit_targets(config: ExperimentConfig, outcome: str, cohort: pd.DataFrame) -> list:
    if outcome == "os":
        return list(config.outcomes.os.targets())
    return [(name, None) for name in crs_outcomes(config, cohort)]


def fit_estimators(
    data: AnalysisData,
    config: ExperimentConfig,
    on_fit: Callable[[str], None] | None = None,
    n_jobs: int | None = None,
) -> list[FittedEffect]:
    """Fit every configured estimator for every target on one analysis; a failure is recorded in
    its ``FittedEffect.error`` (and logged) and the others go on. ``on_fit(description)`` is
    called before each fit's result is awaited (progress bars).

    An estimator whose fitted model serves every OS target (``for_target``: the survival
    meta-learners and Cox) is fitted once and read for each target. The fits are independent:
    where they go is ``fit_placement`` (``n_jobs``, default ``FIT_JOBS``). They come back in
    config order with the same numbers either way. The average (``evaluation.model_average``)
    follows, composed from its members' fits (``hte.pipeline.model_average``)."""
    from hte.pipeline.model_average import average_fits
    from hte.pipeline.parallel import effective_jobs, map_tasks

    tasks = fit_tasks(config, data.cohort)
    jobs = effective_jobs(FIT_JOBS if n_jobs is None else n_jobs)
    away = fit_placement(tasks, config, jobs)
    fit_task = partial(_fit_task, data=data, config=config)
    # the workers start on their fits now (map_tasks dispatches at once), this process on its own
    there = map_tasks(fit_task, [t for t, a in zip(tasks, away, strict=True) if a], jobs)
    here = map_tasks(fit_task, [t for t, a in zip(tasks, away, strict=True) if not a], 1)
    results: dict[int, list] = {}
    for source, wanted in ((here, False), (there, True)):
        for k, (spec, targets) in enumerate(tasks):
            if away[k] == wanted:
                for target, _ in targets if on_fit is not None else ():
                    on_fit(f"{data.label}: {spec.name} ({target})")
                results[k] = next(source)
    fits = []
    for k in range(len(tasks)):
        for fit, trace in results[k]:
            if trace is not None:
                log.error("%s %s failed on %s:\n%s", fit.estimator, fit.target, data.label, trace)
            fits.append(fit)
    return fits + average_fits(fits, config)


def fit_tasks(config: ExperimentConfig, cohort: pd.DataFrame) -> list[tuple]:
    """The fits to make, as (spec, ((target, horizon), ...)): one task per estimator and target,
    or one per estimator when its fitted model serves every target (``for_target``)."""
    tasks = []
    for spec in config.estimators:
        targets = tuple(_fit_targets(config, spec.outcome, cohort))
        if len(targets) > 1 and _serves_every_target(spec, targets[0], config):
            tasks.append((spec, targets))
        else:
            tasks.extend((spec, (target,)) for target in targets)
    return tasks


def fit_placement(tasks: list[tuple], config: ExperimentConfig, jobs: int) -> list[bool]:
    """Per task of ``fit_tasks``, whether it runs in a worker process. With ``jobs`` > 1 and
    more than one task, every fit goes to the workers except those whose fitted model crosses a
    process boundary slowly (``sent_slowly``), which run in this process at the same time; a
    lone fit, or every fit when ``jobs`` is 1, runs here."""
    if jobs < 2 or len(tasks) < 2:
        return [False] * len(tasks)
    return [not sent_slowly(unfitted_model(spec, targets[0], config)) for spec, targets in tasks]


def sent_slowly(model) -> bool:
    """Whether a fitted model takes about as long to cross a process boundary as to fit (the
    estimator says so: ``sent_slowly``; a Bayesian causal forest's sampler travels as JSON)."""
    return bool(getattr(model, "sent_slowly", False))


def _serves_every_target(spec, first: tuple, config: ExperimentConfig) -> bool:
    return spec.outcome == "os" and hasattr(unfitted_model(spec, first, config), "for_target")


def unfitted_model(spec, target_horizon: tuple, config: ExperimentConfig):
    """The unfitted model of a task, or None when its parameters fail (its fit records why)."""
    try:
        return _build(spec, *target_horizon, config)
    except STAGE_FAILURES:
        return None


def _build(spec, target: str, horizon, config: ExperimentConfig):
    if spec.outcome == "os":
        return spec.build(target=target, horizon=horizon, random_state=config.seed)
    return spec.build(crs_outcome=target, random_state=config.seed)


def _fit_task(task: tuple, data: AnalysisData, config: ExperimentConfig) -> list[tuple]:
    """The task's fits: the first target fitted, the others read from it (``for_target``), or
    fitted themselves when the first failed."""
    spec, ((target, horizon), *others) = task
    first = _fit_one(spec, target, horizon, data, config)
    out = [first]
    for other, other_horizon in others:
        if first[0].error is not None:
            out.append(_fit_one(spec, other, other_horizon, data, config))
        else:
            out.append(_read_for(first[0], other, other_horizon, data, config))
    return out


def _read_for(fitted: FittedEffect, target: str, horizon, data: AnalysisData, config):
    """A fitted model read for another target: its own ``FittedEffect``, nothing refitted."""
    fit = FittedEffect(fitted.estimator, fitted.kind, fitted.outcome, target, horizon)
    return _recorded(fit, lambda: fitted.model.for_target(target, horizon), data, config)


def _fit_one(
    spec, target: str, horizon, data: AnalysisData, config
) -> tuple[FittedEffect, str | None]:
    """One fit and, when it failed, its traceback (logged by the caller: a worker process's
    log records would not reach the run's log)."""

    def fitted():
        model = _build(spec, target, horizon, config)
        return model.fit(data.effect_data, **shared_nuisance_kwargs(model, data.nuisances))

    fit = FittedEffect(spec.name, spec.kind, spec.outcome, target, horizon)
    return _recorded(fit, fitted, data, config)


def _recorded(fit: FittedEffect, model, data: AnalysisData, config) -> tuple:
    """``fit`` with the model ``model()`` gives, its estimate and arm predictions, and its
    seconds; or the error that stopped it, its fix and traceback."""
    trace = None
    started = time.perf_counter()
    try:
        fit.model = model()
        fit.estimate = fit.model.estimate(data.X, alpha=config.evaluation.alpha)
        fit.arms = arm_predictions(fit.model, data.X, fit.target, fit.horizon)
    except STAGE_FAILURES as exc:  # recorded in metrics and the log, the run goes on
        fit.error = f"{type(exc).__name__}: {exc}"
        fit.fix = failure_fix(exc, fit.kind)
        trace = traceback.format_exc()
    fit.seconds = time.perf_counter() - started
    return fit, trace


def shared_nuisance_kwargs(model, nuisances: Nuisances | None) -> dict:
    """``{"nuisances": nuisances}`` when ``model.fit`` takes shared nuisances and these are the
    ones it would cross-fit itself (same settings, seed, horizon); else nothing (it fits its
    own)."""
    import inspect

    fit = getattr(model, "fit", None)  # a model average is composed, not fitted
    if nuisances is None or fit is None or "nuisances" not in inspect.signature(fit).parameters:
        return {}
    return {"nuisances": nuisances} if nuisances.serves(model) else {}


def arm_predictions(model, X: pd.DataFrame, target: str, horizon) -> dict[str, np.ndarray]:
    """Per-arm predictions a model offers: S_cart/S_tec at the horizon (survival target of a
    counterfactual-curve model), CRS risk per arm (``predict_risk``)."""
    if target == "survival" and hasattr(model, "predict_survival"):
        curves = model.predict_survival(X, times=[float(horizon)])
        return {"s_cart": curves.surv_cart[:, 0], "s_tec": curves.surv_tec[:, 0]}
    if target in CRS_TARGETS and hasattr(model, "predict_risk"):
        p1, p0 = model.predict_risk(X)
        return {"risk_cart": np.asarray(p1), "risk_tec": np.asarray(p0)}
    return {}
