"""Run-folder SHAP attributions of each fitted estimator's per-patient effect.

For every fitted estimator x target, ``hte.explain.explain_cate`` is run on a seeded sample of at
most ``explanation.n_patients_shap`` analysed patients. The SHAP table goes to
``attributions/<analysis>__<estimator>__<target>.parquet``, a beeswarm to ``figures/`` and the
method, surrogate fidelity and top global importances to metrics.json (all deterministic for a
fixed seed, so metrics.json stays byte-identical on rerun). Estimators with per-arm predictions
(CRS risk per arm, survival per arm at the horizon) also get attributions of each arm's prediction
(``..._arm_cart.parquet`` / ``..._arm_tec.parquet`` and ``attributions.arms`` in metrics).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from hte.errors import STAGE_FAILURES, describe_failure
from hte.explain.attributions import (
    CateAttributions,
    arm_prediction,
    explain_function,
    global_importance,
)
from hte.pipeline.parallel import map_tasks
from hte.pipeline.stages import AnalysisData, FittedEffect
from hte.runs import FIGURES_DIR, SHAP_PREFIX, attribution_path

log = logging.getLogger("hte.pipeline")

N_TOP = 5
# The forests' predictions differ between identical runs in the last bits (parallel float sums);
# the boosted surrogate can turn that into visible changes of its fidelity, so the predictions it
# is fitted to are rounded first (far below any clinically meaningful effect).
EFFECT_DECIMALS = 8
# the fits' explanations are independent: they run in 2 worker processes (hte.pipeline.parallel),
# warm by then from the held-out and refutation stages: the default run's SHAP stage took 9.2 s
# against 16.4 s in this process, for the same CPU (docs/speed.md); 1 = here
N_JOBS = 2


class RoundedEffect:
    """``model.predict`` rounded to ``decimals``: the same numbers on every identical run."""

    def __init__(self, model, decimals: int = EFFECT_DECIMALS):
        self.model = model
        self.decimals = decimals

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.round(np.asarray(self.model.predict(X), dtype=float), self.decimals)


def shap_sample(X: pd.DataFrame, n_max: int, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``n_max`` rows of X, in the cohort's row order."""
    if n_max >= X.shape[0]:
        return X
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(X.shape[0], size=int(n_max), replace=False))
    return X.iloc[rows]


def attribution_frame(attr: CateAttributions) -> pd.DataFrame:
    """One row per explained patient: ``row`` (position in the analysed cohort), one
    ``shap__<feature>`` column per feature, ``base_value``, ``effect`` (= base + sum of SHAP) and
    ``model_effect`` (the estimator's own prediction, rounded to ``EFFECT_DECIMALS``)."""
    frame = pd.DataFrame(attr.values, columns=[SHAP_PREFIX + name for name in attr.feature_names])
    frame.insert(0, "row", np.asarray(attr.X.index, dtype=np.int64))
    frame["base_value"] = attr.base_value
    frame["effect"] = attr.effect
    frame["model_effect"] = attr.model_effect
    return frame


def attribution_summary(attr: CateAttributions) -> dict:
    """metrics.json entry: method, fidelity and the top global importances (largest first)."""
    top = global_importance(attr).head(N_TOP)
    return {
        "method": attr.method,
        "n_patients": int(attr.X.shape[0]),
        "surrogate_r2_cv": attr.surrogate_r2,
        "surrogate_r2_in_sample": attr.surrogate_r2_in_sample,
        "top_importance": [[str(name), float(value)] for name, value in top.items()],
    }


class FixedPredictions:
    """The predictions of a model on one sample, computed once (picklable without the model):
    ``predict(X)`` returns them for that sample only."""

    def __init__(self, X: pd.DataFrame, values: np.ndarray):
        self.index = np.asarray(X.index)
        self.values = np.asarray(values, dtype=float)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if not np.array_equal(np.asarray(X.index), self.index):
            raise ValueError("FixedPredictions holds the predictions of another sample")
        return self.values


def _predictions(fit: FittedEffect, sample: pd.DataFrame) -> dict:
    """What explaining one fit needs from its model, computed here (the model stays in this
    process): its rounded CATE on the sample and each arm's rounded prediction, or the errors."""
    job: dict = {"fit": fit.key, "estimator": fit.estimator, "target": fit.target}
    try:
        job["cate"] = FixedPredictions(sample, RoundedEffect(fit.model).predict(sample))
    except STAGE_FAILURES as exc:  # one estimator failing to explain must not stop the run
        job["cate_error"] = describe_failure(exc)
        return job
    arms: dict[str, tuple[FixedPredictions, str]] = {}
    try:
        for arm in ("cart", "tec"):
            predict, label = arm_prediction(fit.model, arm)
            values = np.round(np.asarray(predict(sample), dtype=float), EFFECT_DECIMALS)
            arms[arm] = (FixedPredictions(sample, values), label)
    except TypeError:  # no per-arm predictions (the causal forests)
        arms = {}
    except STAGE_FAILURES as exc:  # optional: the CATE attributions stand on their own
        job["arms_error"] = describe_failure(exc)
        arms = {}
    job["arms"] = arms
    return job


def _explain_one(job: dict, sample: pd.DataFrame, seed: int, run_dir, label: str) -> dict:
    """One fit's attributions from its predictions (``_predictions``): the surrogates, TreeSHAP,
    the parquet files and the beeswarm figure; returns its metrics summary and any warning.
    Runs in a worker process."""
    from hte.explain.plots import plot_beeswarm

    if "cate_error" in job:
        return {"summary": {"error": job["cate_error"]}, "warning": job["cate_error"]}
    try:
        attr = explain_function(job["cate"].predict, sample, random_state=seed, label="CATE")
    except STAGE_FAILURES as exc:  # one estimator failing to explain must not stop the run
        return {"summary": {"error": describe_failure(exc)}, "warning": describe_failure(exc)}
    summary = attribution_summary(attr)
    warning = job.get("arms_error")
    try:
        arms = {
            arm: explain_function(fixed.predict, sample, random_state=seed, label=arm_label)
            for arm, (fixed, arm_label) in job["arms"].items()
        }
    except STAGE_FAILURES as exc:  # optional: the CATE attributions stand on their own
        warning, arms = describe_failure(exc), {}
    if arms:
        summary["arms"] = {
            arm: attribution_summary(a) | {"prediction": a.label} for arm, a in arms.items()
        }
    if run_dir is not None:
        path = Path(run_dir) / attribution_path(label, job["fit"])
        path.parent.mkdir(exist_ok=True)
        attribution_frame(attr).to_parquet(path, index=False)
        for arm, a in arms.items():
            arm_path = Path(run_dir) / attribution_path(label, job["fit"], arm)
            attribution_frame(a).to_parquet(arm_path, index=False)
        fig = plot_beeswarm(attr, max_display=10)
        fig.savefig(Path(run_dir) / FIGURES_DIR / f"shap_{label}__{job['fit']}.png", dpi=100)
    return {"summary": summary, "arms_warning": warning}


def explain_fits(
    run_dir: Path | None,
    data: AnalysisData,
    fits: list[FittedEffect],
    n_patients: int,
    seed: int,
) -> dict[str, dict[str, dict]]:
    """Attributions of every fitted estimator x target of one analysis: writes the parquet files
    and beeswarm figures (when ``run_dir`` is given) and returns ``{estimator: {target: summary}}``
    (``{"error": ...}`` for a fit that could not be explained).

    The models' predictions on the sample are computed here; the surrogates, TreeSHAP and the
    files of the fits are independent and run in ``N_JOBS`` worker processes
    (``hte.pipeline.parallel``; the same numbers as in this process)."""
    X = data.X.reset_index(drop=True)
    sample = shap_sample(X, n_patients, seed)
    jobs = [_predictions(fit, sample) for fit in fits if fit.model is not None and not fit.error]
    task = partial(_explain_one, sample=sample, seed=seed, run_dir=run_dir, label=data.label)
    out: dict[str, dict[str, dict]] = {}
    for job, result in zip(jobs, map_tasks(task, jobs, N_JOBS), strict=True):
        if result.get("warning"):
            log.warning("no attributions for %s/%s: %s", data.label, job["fit"], result["warning"])
        if result.get("arms_warning"):
            log.warning(
                "no per-arm attributions for %s/%s: %s",
                data.label,
                job["fit"],
                result["arms_warning"],
            )
        out.setdefault(job["estimator"], {})[job["target"]] = result["summary"]
    return out
