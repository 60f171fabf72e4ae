"""Run-folder heterogeneity tests: RATE (AUTOC, Qini) and the BLP calibration test per fit.

Doubly robust scores are computed once per target. OS targets: from the causal survival forest's
cross-fitted nuisances (``training_scores_``: e, mu1, mu0 and the AIPCW pseudo-outcome) when the
run fitted one for that target, else the target is skipped with the reason recorded. CRS: AIPW
scores with the design's cross-fitted propensity and cross-fitted boosted outcome models. Each
estimator's per-patient effects on the analysed cohort are its priorities; they are in-sample
predictions (the estimators were fitted on these patients), which metrics say as
``"in_sample": true`` - read the tests as optimistic.
"""

from __future__ import annotations

import logging

import numpy as np

from hte.evaluation.blp_calibration import blp_calibration_test
from hte.evaluation.rate import aipw_scores_binary, dr_scores_from_pseudo_outcomes, rate
from hte.pipeline.stages import AnalysisData, FittedEffect, crs_nuisances

log = logging.getLogger("hte.pipeline")

N_BOOTSTRAP = 200
CSF_KIND = "causal_survival_forest"


def survival_scores(fits: list[FittedEffect], target: str) -> tuple[np.ndarray | None, str]:
    """DR scores of an OS target from a fitted causal survival forest, or (None, reason)."""
    for fit in fits:
        scores = getattr(fit.model, "training_scores_", None)
        if fit.kind == CSF_KIND and fit.target == target and scores is not None:
            gamma = dr_scores_from_pseudo_outcomes(
                scores["pseudo_outcome"], scores["W"], scores["e"], scores["mu1"], scores["mu0"]
            )
            return gamma, f"cross-fitted nuisances of the causal survival forest {fit.estimator!r}"
    return None, (
        "skipped: no causal survival forest was fitted for this target, and no other fit keeps "
        "the cross-fitted nuisances (e, mu1, mu0) the doubly robust scores need"
    )


def _rate_summary(priorities, scores, kind: str, alpha: float, seed: int) -> dict:
    res = rate(priorities, scores, kind=kind, n_bootstrap=N_BOOTSTRAP, alpha=alpha,
               random_state=seed)  # fmt: skip
    return {
        "estimate": res.estimate,
        "std_err": res.std_err,
        "lower": res.lower,
        "upper": res.upper,
        "p_value": res.p_value if np.isfinite(res.p_value) else None,
    }


def fit_tests(priorities: np.ndarray, scores: np.ndarray, alpha: float, seed: int) -> dict:
    """AUTOC, Qini and BLP of one fit's priorities against DR scores (errors recorded)."""
    out: dict = {"in_sample": True, "n_bootstrap": N_BOOTSTRAP}
    for kind in ("autoc", "qini"):
        try:
            out[kind] = _rate_summary(priorities, scores, kind, alpha, seed)
        except ValueError as exc:
            out[kind] = {"error": str(exc)}
    try:
        blp = blp_calibration_test(priorities, scores=scores)
        out["blp"] = {
            "mean_coef": blp.mean_coef,
            "mean_se": blp.mean_se,
            "mean_p_value": blp.mean_p_value,
            "differential_coef": blp.differential_coef,
            "differential_se": blp.differential_se,
            "differential_p_value": blp.differential_p_value,
        }
    except ValueError as exc:
        out["blp"] = {"error": str(exc)}
    return out


def heterogeneity_tests(
    data: AnalysisData, fits: list[FittedEffect], alpha: float, seed: int
) -> tuple[dict[str, dict[str, dict]], dict[str, str]]:
    """Per estimator x target test results and, per target, where its DR scores came from (or
    why the target was skipped)."""
    ok = [f for f in fits if f.estimate is not None and f.error is None]
    sources: dict[str, str] = {}
    results: dict[str, dict[str, dict]] = {}
    for target in dict.fromkeys(f.target for f in ok):
        keep = np.ones(len(data.cohort), dtype=bool)
        try:
            if target in ("crs", "crs_g3"):
                keep, y, w, e, mu1, mu0 = crs_nuisances(data, target, seed)
                scores = aipw_scores_binary(y, w, e, mu1, mu0)
                sources[target] = "AIPW: cross-fitted propensity and boosted outcome models"
            else:
                scores, sources[target] = survival_scores(ok, target)
        except Exception as exc:  # an optional extra: the run goes on, the reason is recorded
            log.warning("no heterogeneity tests for %s/%s: %s", data.label, target, exc)
            scores, sources[target] = None, f"skipped: {exc}"
        if scores is None:
            continue
        for fit in (f for f in ok if f.target == target):
            # rounded: last-bit differences between identical runs must not reorder near-ties
            priorities = np.round(np.asarray(fit.estimate.effect, dtype=float)[keep], 10)
            results.setdefault(fit.estimator, {})[target] = fit_tests(
                priorities, scores, alpha, seed
            )
    return results, sources
