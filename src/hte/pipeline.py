"""The experiment pipeline: config -> data -> design -> estimators -> evaluation -> run folder.

Every stage is a plain function a notebook can call on its own:

- ``prepare_cohort(config)``: the synthetic draw, or the user's file through its column map.
- ``prepare_analysis(cohort, analysis)``: one analysis time zero (exclusions counted by reason),
  the design matrix (encoding fitted on the analysed cohort, reused by ``hte predict``), treatment.
- ``design_diagnostics(data, seed)``: cross-fitted propensity, overlap summary, covariate balance.
- ``baseline_averages(data, config)``: IPTW Cox hazard ratio, IPTW Kaplan-Meier survival and RMST
  differences, AIPW CRS risk difference, to set beside published numbers.
- ``fit_estimators(data, config)``: every configured estimator, once per OS target / CRS outcome.
- ``effects_frame``, ``estimator_summary``, ``truth_summary``, ``time_zero_comparison``: tables
  and metrics from the fits.

``run_experiment`` chains them and writes the run folder (layout in ``hte.runs``).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte.config import (
    DataFacts,
    ExperimentConfig,
    FileData,
    TimeZeroAnalysis,
    preflight,
    resolved_config_dict,
)
from hte.data.calibration import HR_HORIZON_MONTHS
from hte.data.columns import (
    CRS,
    CRS_GRADE,
    DEATH,
    INFUSION_DAY,
    OS_MONTHS,
    PATIENT_ID,
    TREATMENT,
    TRUTH_PREFIX,
)
from hte.design.design_matrix import DesignMatrix, build_design_matrix, treatment_array
from hte.runs import (
    CONFIG_FILE,
    EFFECTS_FILE,
    FIGURES_DIR,
    FINGERPRINT_FILE,
    LOG_FILE,
    METRICS_FILE,
    SEEDS_FILE,
    TIMINGS_FILE,
    VERSIONS_FILE,
    ModelStore,
    config_hash,
    create_run_dir,
    fingerprint_file,
    fingerprint_frame,
    make_run_id,
    package_versions,
    write_json,
)

__all__ = [
    "AnalysisData",
    "FittedEffect",
    "RunResult",
    "baseline_averages",
    "design_diagnostics",
    "effects_frame",
    "estimator_summary",
    "fit_estimators",
    "prepare_analysis",
    "prepare_cohort",
    "run_experiment",
    "time_zero_comparison",
    "truth_column",
    "truth_summary",
]

log = logging.getLogger("hte.pipeline")

ANALYSIS = "analysis"
# (target, horizon) -> simulated truth column (decision-time truth of the synthetic cohort)
_TRUTH_COLUMNS = {
    ("survival", 12.0): "true_cate_surv12",
    ("rmst", 24.0): "true_cate_rmst24",
    ("crs", None): "true_cate_crs",
    ("crs_g3", None): "true_cate_crs_g3",
}
KM_BOOTSTRAP = 200  # bootstrap draws of the IPTW Kaplan-Meier intervals


@dataclass(frozen=True)
class RunResult:
    """What ``run_experiment`` returns: the run folder (None when nothing was written), the
    metrics (JSON-ready, as in metrics.json) and the per-patient effects table."""

    run_dir: Path | None
    metrics: dict
    effects: pd.DataFrame


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

    @property
    def X(self) -> pd.DataFrame:
        return self.design.X

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

    @property
    def key(self) -> str:
        return f"{self.estimator}__{self.target}"


# --------------------------------------------------------------------------------------------------
# Stage 1: the cohort


def prepare_cohort(
    config: ExperimentConfig, facts: DataFacts | None = None
) -> tuple[pd.DataFrame, dict]:
    """The validated cohort and its fingerprint (sha256, n, columns).

    Synthetic: ``simulate_cohort(n, seed, scenario)``, fingerprinted by its canonical CSV. File:
    the cohort the pre-flight already loaded (``facts.cohort``) or ``load_cohort`` with the
    column map, fingerprinted by the file's bytes.
    """
    data = config.data
    if isinstance(data, FileData):
        cohort = facts.cohort if facts is not None and facts.cohort is not None else None
        if cohort is None:
            from hte.data.load import load_cohort

            cohort = load_cohort(data.path, column_map=data.columns)
        return cohort, fingerprint_file(data.path, cohort)
    from hte.data.simulate import simulate_cohort

    cohort = simulate_cohort(n=data.n, seed=int(data.seed), scenario=data.scenario)
    return cohort, fingerprint_frame(cohort)


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


def design_diagnostics(data: AnalysisData, seed: int) -> dict:
    """Cross-fitted propensity (stored on ``data``), overlap summary and covariate balance before
    and after stabilized IPTW."""
    from hte.design.overlap import ate_weights, balance_table, overlap_summary
    from hte.design.propensity import cross_fit_propensity

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


def _crs_outcomes(config: ExperimentConfig, cohort: pd.DataFrame) -> list[str]:
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
    for outcome in _crs_outcomes(config, data.cohort):
        out[f"ate_{outcome}_aipw"] = asdict(_aipw_crs(data, outcome, alpha, config.seed))
    return out


def _aipw_crs(data: AnalysisData, outcome: str, alpha: float, seed: int):
    """AIPW risk difference with cross-fitted outcome models (boosting on covariates + arm)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    from hte.estimators import average_treatment_effect_binary
    from hte.estimators.crs_forest import crs_binary_outcome

    grade = data.cohort[CRS_GRADE].to_numpy() if CRS_GRADE in data.cohort.columns else None
    y, keep = crs_binary_outcome(
        data.cohort[CRS].to_numpy(dtype=int), grade, outcome, len(data.cohort)
    )
    X = data.X.to_numpy(dtype=float)[keep]
    w, e, y = data.treatment[keep], data.propensity[keep], y[keep]
    mu1, mu0 = np.empty(len(y)), np.empty(len(y))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    strata = 2 * w + y
    for train, test in folds.split(X, strata):
        model = HistGradientBoostingClassifier(
            max_depth=2, max_iter=100, min_samples_leaf=30, l2_regularization=1.0,
            early_stopping=False,
        )  # fmt: skip
        with threadpool_limits(limits=1, user_api="openmp"):
            model.fit(np.column_stack([X[train], w[train]]), y[train])
            ones = np.ones(len(test))
            mu1[test] = model.predict_proba(np.column_stack([X[test], ones]))[:, 1]
            mu0[test] = model.predict_proba(np.column_stack([X[test], 0 * ones]))[:, 1]
    return average_treatment_effect_binary(y, w, e, mu1=mu1, mu0=mu0, alpha=alpha, target=outcome)


# --------------------------------------------------------------------------------------------------
# Stage 4: estimators


def _fit_targets(config: ExperimentConfig, outcome: str, cohort: pd.DataFrame) -> list:
    if outcome == "os":
        return list(config.outcomes.os.targets())
    return [(name, None) for name in _crs_outcomes(config, cohort)]


def fit_estimators(
    data: AnalysisData,
    config: ExperimentConfig,
    on_fit: Callable[[str], None] | None = None,
) -> list[FittedEffect]:
    """Fit every configured estimator for every target on one analysis; a failure is recorded in
    its ``FittedEffect.error`` (and logged) and the others go on. ``on_fit(description)`` is
    called before each fit (progress bars)."""
    fits = []
    for spec in config.estimators:
        for target, horizon in _fit_targets(config, spec.outcome, data.cohort):
            if on_fit is not None:
                on_fit(f"{data.label}: {spec.name} ({target})")
            fits.append(_fit_one(spec, target, horizon, data, config))
    return fits


def _fit_one(spec, target: str, horizon, data: AnalysisData, config) -> FittedEffect:
    fit = FittedEffect(spec.name, spec.kind, spec.outcome, target, horizon)
    started = time.perf_counter()
    try:
        if spec.outcome == "os":
            model = spec.build(target=target, horizon=horizon, random_state=config.seed)
            t, d = data.survival_outcome()
            model.fit(data.X, time=t, event=d, treatment=data.treatment)
        else:
            model = spec.build(crs_outcome=target, random_state=config.seed)
            grade = data.cohort[CRS_GRADE].to_numpy() if CRS_GRADE in data.cohort else None
            crs = data.cohort[CRS].to_numpy(dtype=int)
            model.fit(data.X, crs=crs, treatment=data.treatment, crs_grade=grade)
        fit.model = model
        fit.estimate = model.estimate(data.X, alpha=config.evaluation.alpha)
        fit.arms = arm_predictions(model, data.X, target, horizon)
    except Exception as exc:  # recorded in metrics and the log, the run goes on
        fit.error = f"{type(exc).__name__}: {exc}"
        log.error("%s %s failed on %s:\n%s", spec.name, target, data.label, traceback.format_exc())
    fit.seconds = time.perf_counter() - started
    return fit


def arm_predictions(model, X: pd.DataFrame, target: str, horizon) -> dict[str, np.ndarray]:
    """Per-arm predictions a model offers: S_cart/S_tec at the horizon (survival target of a
    counterfactual-curve model), CRS risk per arm (``predict_risk``)."""
    if target == "survival" and hasattr(model, "predict_survival"):
        curves = model.predict_survival(X, times=[float(horizon)])
        return {"s_cart": curves.surv_cart[:, 0], "s_tec": curves.surv_tec[:, 0]}
    if target in ("crs", "crs_g3") and hasattr(model, "predict_risk"):
        p1, p0 = model.predict_risk(X)
        return {"risk_cart": np.asarray(p1), "risk_tec": np.asarray(p0)}
    return {}


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
        cols[f"{fit.key}__effect"] = np.asarray(fit.estimate.effect, dtype=float)
        cols[f"{fit.key}__lower"] = np.asarray(fit.estimate.lower, dtype=float)
        cols[f"{fit.key}__upper"] = np.asarray(fit.estimate.upper, dtype=float)
        for name, values in fit.arms.items():
            cols[f"{fit.key}__{name}"] = np.asarray(values, dtype=float)
    return pd.DataFrame(cols)


def estimator_summary(fit: FittedEffect, alpha: float, X: pd.DataFrame | None = None) -> dict:
    """Average of the per-patient effects, with an interval for the average where the estimator
    offers one (causal survival forest: AIPW over its cross-fitted scores; CRS forest: econml's
    average-effect inference)."""
    out: dict[str, Any] = {
        "kind": fit.kind,
        "target": fit.target,
        "horizon": fit.horizon,
    }
    if fit.error is not None:
        return out | {"error": fit.error}
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
    return out


def _average_interval(fit: FittedEffect, X: pd.DataFrame | None, alpha: float) -> dict | None:
    model = fit.model
    try:
        if hasattr(model, "average_effect"):
            est, lo, hi = model.average_effect(alpha=alpha)
            return {"estimate": est, "lower": lo, "upper": hi, "method": "AIPW on forest scores"}
        inner = getattr(model, "model_", None)
        if X is not None and inner is not None and hasattr(inner, "ate_interval"):
            arr = X.to_numpy(dtype=float)
            lo, hi = inner.ate_interval(arr, alpha=alpha)
            return {
                "estimate": float(np.ravel(inner.ate(arr))[0]),
                "lower": float(np.ravel(lo)[0]),
                "upper": float(np.ravel(hi)[0]),
                "method": "econml average-effect inference over the analysed patients",
            }
    except Exception as exc:  # an optional extra: say why it is absent
        log.warning("no average interval for %s: %s", fit.key, exc)
    return None


def truth_column(target: str, horizon: float | None) -> str | None:
    """The simulated true-CATE column of a target, or None when the simulator has none for it."""
    return _TRUTH_COLUMNS.get((target, None if horizon is None else float(horizon)))


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


def _truth_enabled(config: ExperimentConfig, cohort: pd.DataFrame) -> bool:
    setting = config.evaluation.truth_metrics
    has_truth = any(str(c).startswith(TRUTH_PREFIX) for c in cohort.columns)
    return bool(setting) and has_truth if setting != "auto" else has_truth


def decision_truth(cohort: pd.DataFrame, config: ExperimentConfig) -> dict:
    """Averages of the decision-time truth over the whole cohort: true ATEs per target and a
    'true' marginal hazard ratio (Cox on both potential outcome draws of every patient, no
    censoring)."""
    from hte.data.calibration import true_marginal_hr

    out: dict[str, Any] = {}
    for target, horizon in config.outcomes.os.targets():
        column = truth_column(target, horizon)
        if column in cohort.columns:
            out[f"ate_{target}"] = float(cohort[column].mean())
    t1, t0 = "true_os_months_cart", "true_os_months_tec"
    if {t1, t0} <= set(cohort.columns):
        out["hazard_ratio"] = true_marginal_hr(cohort)
        out["hazard_ratio_method"] = (
            "Cox on both potential survival times of every patient, cut at "
            f"{HR_HORIZON_MONTHS:g} mo (hte.data.calibration.true_marginal_hr)"
        )
    return out


def time_zero_comparison(analyses: dict[str, dict], truth: dict) -> list[dict]:
    """Per analysis: hazard ratio and average effects (IPTW baselines and each estimator's mean
    CATE) beside the decision-time truth of the whole cohort, with the bias."""
    rows = []
    for label, metrics in analyses.items():
        base = metrics.get("baselines", {})
        row: dict[str, Any] = {
            ANALYSIS: label,
            "mode": metrics["mode"],
            "n_analysed": metrics["n_analysed"],
            "n_excluded": sum(metrics["n_excluded_by_reason"].values()),
        }
        hr = base.get("hazard_ratio_iptw")
        if hr is not None:
            row["hazard_ratio_iptw"] = hr["hr"]
            row["hazard_ratio_iptw_ci"] = [hr["lower"], hr["upper"]]
            if "hazard_ratio" in truth:
                row["hazard_ratio_true"] = truth["hazard_ratio"]
        for target in ("survival", "rmst"):
            true = truth.get(f"ate_{target}")
            ate = base.get(f"ate_{target}_iptw_km")
            if ate is not None:
                row[f"ate_{target}_iptw_km"] = ate["estimate"]
                if true is not None:
                    row[f"ate_{target}_iptw_km_bias"] = ate["estimate"] - true
            if true is not None:
                row[f"ate_{target}_true"] = true
            for name, by_target in metrics.get("estimators", {}).items():
                summary = by_target.get(target)
                if summary and "mean_effect" in summary:
                    row[f"{name}__{target}__mean"] = summary["mean_effect"]
                    if true is not None:
                        row[f"{name}__{target}__bias"] = summary["mean_effect"] - true
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Figures


def _figures(run_dir: Path, analyses: list[AnalysisData], fits: dict[str, list]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for data in analyses:
        ok = [f for f in fits[data.label] if f.estimate is not None]
        targets = list(dict.fromkeys(f.target for f in ok))
        if targets:
            fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.4))
            for ax, target in zip(np.atleast_1d(axes), targets, strict=True):
                for f in (f for f in ok if f.target == target):
                    ax.hist(f.estimate.effect, bins=30, histtype="step", label=f.estimator)
                ax.axvline(0, color="grey", lw=0.8)
                ax.set_title(f"{target}" + (f" ({f.horizon:g} mo)" if f.horizon else ""))
                ax.set_xlabel("CATE, CAR-T minus teclistamab")
            np.atleast_1d(axes)[0].set_ylabel("patients")
            np.atleast_1d(axes)[-1].legend(fontsize=7)
            fig.suptitle(f"Per-patient effects, {data.label} time zero")
            fig.tight_layout()
            name = f"cate_{data.label}.png"
            fig.savefig(run_dir / FIGURES_DIR / name, dpi=100)
            plt.close(fig)
            written.append(name)
        if data.propensity is not None:
            fig, ax = plt.subplots(figsize=(4.5, 3.4))
            bins = np.linspace(0, 1, 21)
            for arm, label in ((1, "CAR-T"), (0, "teclistamab")):
                ax.hist(data.propensity[data.treatment == arm], bins=bins, alpha=0.5, label=label)
            ax.set_xlabel("propensity P(CAR-T | x), cross-fitted")
            ax.set_ylabel("patients")
            ax.set_title(f"Overlap, {data.label} time zero")
            ax.legend()
            fig.tight_layout()
            name = f"overlap_{data.label}.png"
            fig.savefig(run_dir / FIGURES_DIR / name, dpi=100)
            plt.close(fig)
            written.append(name)
    return written


# --------------------------------------------------------------------------------------------------
# Progress and logging


class _Stages:
    """A rich progress bar over the run's stages (or nothing, when ``enabled`` is False)."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self) -> _Stages:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<48}"), BarColumn(), TextColumn("{task.completed}/"
                "{task.total}"), TimeElapsedColumn(), transient=False,
            )  # fmt: skip
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def step(self, description: str) -> None:
        """Start a stage (the previous one is counted as done)."""
        log.info(description)
        if self._progress is not None:
            done = self._progress.tasks[0].completed
            started = getattr(self, "_started", False)
            self._progress.update(
                self._task, description=description, completed=done + (1 if started else 0)
            )
            self._started = True

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.total, description="done")
            self._progress.__exit__(*exc)


@contextmanager
def _run_log(path: Path | None) -> Iterator[None]:
    """Send hte's log records to ``path`` for the duration of the run."""
    logger = logging.getLogger("hte")
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


# --------------------------------------------------------------------------------------------------
# The whole run


def _n_stages(config: ExperimentConfig) -> int:
    per_fit = 0
    has_grade = True  # an upper bound is fine for a progress bar
    for spec in config.estimators:
        if spec.outcome == "os":
            per_fit += len(config.outcomes.os.targets())
        else:
            per_fit += len(config.outcomes.crs.outcomes(has_grade))
    return 2 + len(config.time_zero) * (3 + per_fit) + 2


def run_experiment(
    config: ExperimentConfig,
    *,
    output_root: Path | None = None,
    progress: bool = True,
    write_models: bool = True,
) -> RunResult:
    """Run a whole experiment and write its run folder ``<root>/<name>/<run-id>/``.

    The pre-flight runs first (``ConfigError`` before anything is fitted). ``output_root``
    overrides ``config.output.root``; ``progress`` shows a rich progress bar of the stages;
    ``write_models=False`` skips saving fitted models (sweeps). Same config and seed give a
    byte-identical metrics.json.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    facts = preflight(config)
    timings["preflight"] = time.perf_counter() - clock
    resolved = resolved_config_dict(config)
    run_id = make_run_id(resolved)
    root = Path(output_root) if output_root is not None else Path(config.output.root)
    run_dir = create_run_dir(root, config.name, run_id)
    with _run_log(run_dir / LOG_FILE), _Stages(_n_stages(config), progress) as stages:
        log.info("run %s of %s in %s", run_id, config.name, run_dir)
        result = _run(config, facts, run_dir, run_id, resolved, stages, timings, write_models)
    timings["total"] = time.perf_counter() - clock
    write_json(run_dir / TIMINGS_FILE, timings)
    return result


def _run(config, facts, run_dir, run_id, resolved, stages, timings, write_models) -> RunResult:
    import yaml

    seed = config.seed
    stages.step("cohort")
    clock = time.perf_counter()
    cohort, fingerprint = prepare_cohort(config, facts)
    timings["cohort"] = time.perf_counter() - clock
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False), "utf-8")
    write_json(run_dir / FINGERPRINT_FILE, fingerprint)
    write_json(run_dir / VERSIONS_FILE, package_versions())
    write_json(
        run_dir / SEEDS_FILE,
        {"global": seed, "data": getattr(config.data, "seed", None), "estimators": seed,
         "folds": seed, "bootstrap": seed},
    )  # fmt: skip
    with_truth = _truth_enabled(config, cohort)
    store = ModelStore(run_dir, run_id) if write_models else None
    analyses: dict[str, dict] = {}
    prepared: list[AnalysisData] = []
    all_fits: dict[str, list[FittedEffect]] = {}
    frames = []
    for analysis in config.time_zero:
        label = str(analysis.label)
        stages.step(f"{label}: time zero and design")
        clock = time.perf_counter()
        data = prepare_analysis(cohort, analysis)
        prepared.append(data)
        stages.step(f"{label}: propensity, overlap, balance")
        diagnostics = design_diagnostics(data, seed)
        stages.step(f"{label}: IPTW baselines")
        baselines = baseline_averages(data, config)
        timings[f"{label}/design_and_baselines"] = time.perf_counter() - clock
        fits = fit_estimators(data, config, on_fit=stages.step)
        all_fits[label] = fits
        for fit in fits:
            timings[f"{label}/{fit.key}"] = fit.seconds
        frames.append(effects_frame(data, fits))
        estimators: dict[str, dict] = {}
        for fit in fits:
            summary = estimator_summary(fit, config.evaluation.alpha, data.X)
            if with_truth:
                truth = truth_summary(fit, data.cohort)
                if truth is not None:
                    summary["truth"] = truth
            estimators.setdefault(fit.estimator, {})[fit.target] = summary
        analyses[label] = {
            "mode": data.mode,
            "description": data.description,
            "n_analysed": len(data.cohort),
            "n_by_arm": {"cart": int(data.treatment.sum()), "tec": int((1 - data.treatment).sum())},
            "n_excluded_by_reason": data.n_excluded_by_reason,
            "design": {
                "features": data.design.feature_names,
                "missing": data.design.describe_missing(),
            },
            **diagnostics,
            "baselines": baselines,
            "estimators": estimators,
        }
        if store is not None:
            _save_models(store, data, fits)
    stages.step("run folder: metrics, effects, figures")
    effects = pd.concat(frames, ignore_index=True)
    metrics: dict[str, Any] = {
        "experiment": {
            "name": config.name,
            "config_sha256": config_hash(resolved),
            "seed": seed,
            "alpha": config.evaluation.alpha,
        },
        "data": fingerprint,
        "analyses": analyses,
        "truth_metrics": with_truth,
    }
    if with_truth:
        truth = decision_truth(cohort, config)
        metrics["decision_truth"] = truth
        if len(config.time_zero) > 1 or config.time_zero[0].mode != "decision":
            metrics["time_zero_comparison"] = time_zero_comparison(analyses, truth)
    failures = [
        f"{label}/{f.key}: {f.error}" for label, fs in all_fits.items() for f in fs if f.error
    ]
    metrics["failures"] = failures
    metrics_text = write_json(run_dir / METRICS_FILE, metrics).read_text(encoding="utf-8")
    effects.to_parquet(run_dir / EFFECTS_FILE, index=False)
    metrics["figures"] = _figures(run_dir, prepared, all_fits)
    if store is not None:
        store.write_manifest()
    import json

    return RunResult(run_dir=run_dir, metrics=json.loads(metrics_text), effects=effects)


def _save_models(store: ModelStore, data: AnalysisData, fits: list[FittedEffect]) -> None:
    store.save(
        f"{data.label}/encoder.joblib",
        data.design.encoder,
        role="encoder",
        analysis=data.label,
        features=data.design.feature_names,
    )
    for fit in fits:
        if fit.model is None:
            continue
        store.save(
            f"{data.label}/{fit.key}.joblib",
            fit.model,
            role="estimator",
            analysis=data.label,
            estimator=fit.estimator,
            kind=fit.kind,
            outcome=fit.outcome,
            target=fit.target,
            horizon=fit.horizon,
        )


# --------------------------------------------------------------------------------------------------
# Scoring new patients with a run's models


class PredictError(ValueError):
    """New patients that the run's models cannot score (schema, unseen levels, unknown analysis)."""


def load_run_config(run_dir: Path) -> ExperimentConfig:
    """The resolved config a run folder was written with."""
    import yaml

    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise PredictError(f"{run_dir} is not a run folder written by `hte run` (no {CONFIG_FILE})")
    return ExperimentConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def read_new_patients(path: Path, config: ExperimentConfig) -> pd.DataFrame:
    """New patients' covariates validated by hte.data's schema (types, ranges, codes), through the
    run's column map when the run was on a file. Treatment, outcomes and infusion_day are not
    used for scoring: they are dropped, and placeholders stand in for the schema's table rules
    (both arms, an outcome) during validation only."""
    from hte.data.load import CohortFileError, read_table
    from hte.data.schema import CohortValidationError, validate_cohort

    column_map = config.data.columns if isinstance(config.data, FileData) else None
    id_column = PATIENT_ID
    if column_map is not None:
        id_column = next((k for k, v in column_map.columns.items() if v == PATIENT_ID), id_column)
    unused = [TREATMENT, OS_MONTHS, DEATH, CRS, CRS_GRADE, INFUSION_DAY]
    try:
        raw = read_table(path, text_columns=(id_column,))
        if column_map is not None:
            present = set(map(str, raw.columns))
            # columns the scoring does not use may be absent from new data
            kept = {s: t for s, t in column_map.columns.items() if s in present or t not in unused}
            raw = column_map.model_copy(update={"columns": kept}).apply(raw)
        raw = raw.drop(columns=[c for c in unused if c in raw.columns])
        n = len(raw)
        frame = raw
        if n == 1 and PATIENT_ID in raw.columns:  # a second row, so both arms can be present
            twin = raw.assign(**{PATIENT_ID: raw[PATIENT_ID].astype(str) + " (copy)"})
            frame = pd.concat([raw, twin], ignore_index=True)
        frame = frame.assign(
            **{TREATMENT: np.where(np.arange(len(frame)) % 2 == 0, "cart", "tec"), CRS: False}
        )
        cohort = validate_cohort(frame).iloc[:n]
    except CohortFileError as exc:
        raise PredictError(f"cannot read {path}: {exc}") from None
    except CohortValidationError as exc:
        raise PredictError(f"{path} does not fit the cohort schema:\n{exc}") from None
    return cohort.drop(columns=[TREATMENT, CRS]).reset_index(drop=True)


def predict_run(
    run_dir: Path, data_path: Path, *, analysis: str | None = None, alpha: float | None = None
) -> pd.DataFrame:
    """Score new patients with a run's fitted models (hash-checked, see ``hte.runs.load_model``).

    Returns one row per patient: patient_id, analysis, and per fitted model
    ``<estimator>__<target>__effect/lower/upper`` plus per-arm predictions where the model offers
    them (``s_cart``/``s_tec`` at the horizon, ``risk_cart``/``risk_tec``), as in effects.parquet.
    ``analysis`` picks the time-zero analysis (default: the run's first one).
    """
    from hte.runs import load_model, read_manifest

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    labels = [str(a.label) for a in config.time_zero]
    label = labels[0] if analysis is None else analysis
    if label not in labels:
        raise PredictError(f"the run has no analysis {label!r}; choose one of {', '.join(labels)}")
    manifest = read_manifest(run_dir)
    entries = {p: e for p, e in manifest["files"].items() if e.get("analysis") == label}
    encoder_path = f"{label}/encoder.joblib"
    if encoder_path not in entries:
        raise PredictError(f"the run folder has no saved encoding for analysis {label!r}")
    cohort = read_new_patients(Path(data_path), config)
    encoder = load_model(run_dir, encoder_path, manifest)
    try:
        X = encoder.transform(cohort)
    except ValueError as exc:
        raise PredictError(f"{data_path}: {exc}") from None
    alpha = config.evaluation.alpha if alpha is None else alpha
    out: dict[str, Any] = {
        PATIENT_ID: cohort[PATIENT_ID].astype(str).to_numpy(),
        ANALYSIS: np.full(len(cohort), label, dtype=object),
    }
    order = {spec.name: i for i, spec in enumerate(config.estimators)}
    for path, entry in sorted(
        entries.items(), key=lambda kv: (order.get(kv[1].get("estimator"), -1), kv[0])
    ):
        if entry.get("role") != "estimator":
            continue
        model = load_model(run_dir, path, manifest)
        key = f"{entry['estimator']}__{entry['target']}"
        est = model.estimate(X, alpha=alpha)
        out[f"{key}__effect"] = np.asarray(est.effect, dtype=float)
        out[f"{key}__lower"] = np.asarray(est.lower, dtype=float)
        out[f"{key}__upper"] = np.asarray(est.upper, dtype=float)
        for name, values in arm_predictions(model, X, entry["target"], entry["horizon"]).items():
            out[f"{key}__{name}"] = np.asarray(values, dtype=float)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------------
# Console summary


def _num(x, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _ci(lo, hi, digits: int = 3) -> str:
    return "" if lo is None or hi is None else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _target_label(target: str, horizon) -> str:
    return f"{target} {horizon:g}mo" if horizon else target


def render_summary(metrics: dict):
    """Rich tables for the console: per analysis, estimator x target averages (with the interval
    of the average where available and the truth when known), the IPTW baselines, and the
    time-zero comparison when the run has one."""
    from rich.console import Group
    from rich.table import Table

    parts = []
    for label, a in metrics["analyses"].items():
        excluded = sum(a["n_excluded_by_reason"].values())
        title = f"{label} time zero: {a['n_analysed']} patients" + (
            f" ({excluded} excluded)" if excluded else ""
        )
        table = Table(title=title, title_justify="left")
        table.add_column("estimator", no_wrap=True)
        table.add_column("target", no_wrap=True)
        for col in ("mean", "95% CI of mean", "truth", "nMSE", "cover"):
            table.add_column(col, justify="right", no_wrap=True)
        for name, by_target in a["estimators"].items():
            for target, s in by_target.items():
                tgt = _target_label(target, s.get("horizon"))
                if "error" in s:
                    table.add_row(name, tgt, "[red]failed[/red]", "see metrics.json", "", "", "")
                    continue
                avg = s.get("average") or {}
                truth = s.get("truth", {})
                table.add_row(
                    name, tgt, _num(s["mean_effect"]), _ci(avg.get("lower"), avg.get("upper")),
                    _num(truth.get("ate_true")), _num(truth.get("normalized_mse"), 2),
                    _num(truth.get("coverage"), 2),
                )  # fmt: skip
        truth = metrics.get("decision_truth", {})
        for key, b in a["baselines"].items():
            if key == "hazard_ratio_iptw":
                table.add_row("IPTW Cox", "hazard ratio", _num(b["hr"], 2),
                              _ci(b["lower"], b["upper"], 2), _num(truth.get("hazard_ratio"), 2),
                              "", "")  # fmt: skip
            else:
                method = "IPTW KM" if "iptw_km" in key else "AIPW"
                table.add_row(method, _target_label(b["target"], b.get("horizon")),
                              _num(b["estimate"]), _ci(b["lower"], b["upper"]), "", "", "")  # fmt: skip
        parts.append(table)
    comparison = metrics.get("time_zero_comparison")
    if comparison:
        table = Table(title="Time zero vs the decision-time truth", title_justify="left")
        for col in ("analysis", "n", "HR IPTW", "true HR", "surv ATE", "true", "RMST ATE",
                    "true"):  # fmt: skip
            table.add_column(col, justify="left" if col == "analysis" else "right", no_wrap=True)
        for row in comparison:
            table.add_row(
                row["analysis"], str(row["n_analysed"]), _num(row.get("hazard_ratio_iptw"), 2),
                _num(row.get("hazard_ratio_true"), 2), _num(row.get("ate_survival_iptw_km")),
                _num(row.get("ate_survival_true")), _num(row.get("ate_rmst_iptw_km"), 2),
                _num(row.get("ate_rmst_true"), 2),
            )  # fmt: skip
        parts.append(table)
    if metrics.get("failures"):
        parts.append(f"[red]{len(metrics['failures'])} fit(s) failed[/red]: see metrics.json")
    return Group(*parts)
