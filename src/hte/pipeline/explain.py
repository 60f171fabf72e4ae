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
from pathlib import Path

import numpy as np
import pandas as pd

from hte.errors import STAGE_FAILURES, describe_failure
from hte.explain.attributions import (
    CateAttributions,
    arm_prediction,
    explain_cate,
    explain_function,
    global_importance,
)
from hte.pipeline.stages import AnalysisData, FittedEffect
from hte.runs import FIGURES_DIR, SHAP_PREFIX, attribution_path, shap_figure_name

log = logging.getLogger("hte.pipeline")

N_TOP = 5
# The forests' predictions differ between identical runs in the last bits (parallel float sums);
# the boosted surrogate can turn that into visible changes of its fidelity, so the predictions it
# is fitted to are rounded first (far below any clinically meaningful effect).
EFFECT_DECIMALS = 8


class RoundedEffect:
    """``model.predict`` rounded to ``decimals``: the same numbers on every identical run."""

    def __init__(self, model, decimals: int = EFFECT_DECIMALS):
        self.model = model
        self.decimals = decimals

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return np.round(np.asarray(self.model.predict(X), dtype=float), self.decimals)


def arm_attributions(model, sample: pd.DataFrame, seed: int) -> dict[str, CateAttributions]:
    """SHAP attributions of each arm's predicted risk (CRS models) or survival at the horizon
    (survival estimators with per-arm curves); empty for estimators without per-arm predictions
    (the causal forests estimate the difference only)."""
    out = {}
    for arm in ("cart", "tec"):
        try:
            predict, label = arm_prediction(model, arm)
        except TypeError:
            return {}

        def rounded(X, predict=predict):
            return np.round(np.asarray(predict(X), dtype=float), EFFECT_DECIMALS)

        out[arm] = explain_function(rounded, sample, random_state=seed, label=label)
    return out


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


def explain_fits(
    run_dir: Path | None,
    data: AnalysisData,
    fits: list[FittedEffect],
    n_patients: int,
    seed: int,
) -> dict[str, dict[str, dict]]:
    """Attributions of every fitted estimator x target of one analysis: writes the parquet files
    and beeswarm figures (when ``run_dir`` is given) and returns ``{estimator: {target: summary}}``
    (``{"error": ...}`` for a fit that could not be explained)."""
    from hte.explain.plots import plot_beeswarm

    X = data.X.reset_index(drop=True)
    sample = shap_sample(X, n_patients, seed)
    out: dict[str, dict[str, dict]] = {}
    for fit in fits:
        if fit.model is None or fit.error is not None:
            continue
        try:
            attr = explain_cate(RoundedEffect(fit.model), sample, random_state=seed)
        except STAGE_FAILURES as exc:  # one estimator failing to explain must not stop the run
            log.warning("no attributions for %s/%s: %s", data.label, fit.key, exc)
            out.setdefault(fit.estimator, {})[fit.target] = {"error": describe_failure(exc)}
            continue
        summary = attribution_summary(attr)
        try:
            arms = arm_attributions(fit.model, sample, seed)
        except STAGE_FAILURES as exc:  # optional: the CATE attributions stand on their own
            log.warning("no per-arm attributions for %s/%s: %s", data.label, fit.key, exc)
            arms = {}
        if arms:
            summary["arms"] = {
                arm: attribution_summary(a) | {"prediction": a.label} for arm, a in arms.items()
            }
        out.setdefault(fit.estimator, {})[fit.target] = summary
        if run_dir is not None:
            path = Path(run_dir) / attribution_path(data.label, fit.key)
            path.parent.mkdir(exist_ok=True)
            attribution_frame(attr).to_parquet(path, index=False)
            for arm, a in arms.items():
                arm_path = Path(run_dir) / attribution_path(data.label, fit.key, arm)
                attribution_frame(a).to_parquet(arm_path, index=False)
            fig = plot_beeswarm(attr, max_display=10)
            fig.savefig(
                Path(run_dir) / FIGURES_DIR / shap_figure_name(data.label, fit.key), dpi=100
            )
    return out
