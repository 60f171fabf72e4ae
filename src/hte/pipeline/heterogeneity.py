"""Run-folder heterogeneity tests on held-out priorities: RATE (AUTOC, Qini, TOC) and BLP.

Is the heterogeneity an estimator found real? Two ingredients, both out of sample:

* Doubly robust scores per target (``target_scores``), computed once and independent of which
  estimators the run fitted. OS targets: AIPCW scores
  ``Gamma = mu1 - mu0 + (W - e) / (e (1 - e)) (Y* - mu_W)`` from 5-fold cross-fitted nuisances
  (propensity, event and censoring survival): the analysis's shared nuisances
  (``hte.estimators.shared_nuisances``, the ones the estimators were fitted with). CRS: AIPW
  scores with the shared cross-fitted propensity and boosted arm risks.
* Held-out priorities per fit (``heldout_effects``): the fitted estimator is cloned and refitted
  on one half of the patients to predict the other half (2 folds, stratified by arm x outcome,
  seeded), so no patient is ranked by a model that saw its outcome. Estimators that take shared
  nuisances (causal survival forest, DR-learner) read nuisances cross-fitted on the training
  half only, fitted once per fold and shared by all of them (``fold_nuisances``).

Each fit's priorities are then tested against its target's scores: AUTOC and Qini with bootstrap
intervals, the TOC curve with a pointwise band, and the BLP calibration test (mean and
differential forest prediction). Metrics say ``"in_sample": false``.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from hte.array_checks import check_survival_outcome
from hte.data.columns import CRS, CRS_GRADE
from hte.errors import STAGE_FAILURES
from hte.estimators.nuisance import cross_fit_pseudo_outcomes
from hte.estimators.shared_nuisances import DEFAULT_SURVIVAL, Nuisances, fit_nuisances
from hte.evaluation.blp_calibration import blp_calibration_test
from hte.evaluation.rate import (
    aipw_scores_binary,
    cross_fitted_priorities,
    dr_scores_from_pseudo_outcomes,
    rate,
    toc_band,
)
from hte.evaluation.selection import Residuals
from hte.pipeline.parallel import map_tasks
from hte.pipeline.stages import (
    AnalysisData,
    FittedEffect,
    crs_nuisances,
    shared_nuisance_kwargs,
)
from hte.vocabulary import CRS_TARGETS

log = logging.getLogger("hte.pipeline")

N_BOOTSTRAP = 200
N_FOLDS = 2  # held-out priorities: each patient is ranked by a model fitted on the other half
# the held-out refits of different fits are independent: run them in this many processes (each
# limited to one thread, so 2 processes use the 2 cores without oversubscription); 1 = in-process
N_JOBS = 2
TOC_GRID = np.arange(1, 21) / 20  # q = 0.05, 0.10, ..., 1.0
# Survival nuisances of the OS scores: the causal survival forest's defaults, so a forest fitted
# with its defaults and the run's seed holds exactly these scores (and they are reused).
SURVIVAL_NUISANCE = {
    "grid_size": 25,
    "event_learner": "hazard_gbm",
    "censoring_learner": "hazard_gbm",
    "n_folds": 5,
    "censoring_floor": 0.05,
    "propensity_clip": 0.01,
}
Scores = tuple[np.ndarray, np.ndarray, str]


# --------------------------------------------------------------------------------------------
# doubly robust scores per target
# --------------------------------------------------------------------------------------------
def target_scores(data: AnalysisData, fits: list[FittedEffect], seed: int) -> dict[str, Scores]:
    """Per fitted target: (keep mask over ``data.cohort`` rows, doubly robust scores of the kept
    rows, where they come from). A target whose scores cannot be computed is left out (logged);
    ``heterogeneity_tests`` records the reason."""
    scores, _ = _scores_and_reasons(data, fits, seed)
    return scores


def _scores_and_reasons(
    data: AnalysisData, fits: list[FittedEffect], seed: int
) -> tuple[dict[str, Scores], dict[str, str]]:
    scores: dict[str, Scores] = {}
    skipped: dict[str, str] = {}
    for target, horizon in _targets(fits).items():
        try:
            if target in CRS_TARGETS:
                scores[target] = crs_scores(data, target, seed)
            else:
                scores[target] = aipcw_scores(data, fits, target, horizon, seed)
        except STAGE_FAILURES as exc:  # an optional extra: the run goes on, the reason is recorded
            log.warning("no doubly robust scores for %s/%s: %s", data.label, target, exc)
            skipped[target] = f"skipped: {type(exc).__name__}: {exc}"
    return scores, skipped


def _targets(fits: list[FittedEffect]) -> dict[str, float | None]:
    """Each target the run fitted (successfully or not) and its horizon."""
    out: dict[str, float | None] = {}
    for fit in fits:
        out.setdefault(fit.target, None if fit.horizon is None else float(fit.horizon))
    return out


def crs_scores(data: AnalysisData, target: str, seed: int) -> Scores:
    """AIPW scores of a CRS target over the rows that carry it."""
    keep, y, w, e, mu1, mu0 = crs_nuisances(_with_propensity(data, seed), target, seed)
    source = (
        "AIPW: the design's 5-fold cross-fitted propensity and 5-fold cross-fitted boosted "
        f"outcome models (covariates + arm), {int(keep.sum())} patients with the outcome"
    )
    return keep, aipw_scores_binary(y, w, e, mu1, mu0), source


def _with_propensity(data: AnalysisData, seed: int) -> AnalysisData:
    """``data`` with a cross-fitted propensity (fitted here when the analysis has none)."""
    if data.propensity is not None:
        return data
    from hte.design.propensity import cross_fit_propensity

    e = cross_fit_propensity(data.X, data.treatment, random_state=seed)
    return dataclasses.replace(data, propensity=e)


def aipcw_scores(
    data: AnalysisData, fits: list[FittedEffect], target: str, horizon: float | None, seed: int
) -> Scores:
    """AIPCW scores of an OS target ("survival" or "rmst" at ``horizon``), every patient kept.

    Read from the analysis's shared nuisances (``data.nuisances``, cross-fitted once with
    ``SURVIVAL_NUISANCE`` and the seed: the ones the causal survival forest and DR-learner were
    fitted with); cross-fitted here with the same settings when the analysis has none. ``fits``
    is kept for the signature (the scores do not depend on which estimators ran).
    """
    s, what = _aipcw_pseudo_outcomes(data, target, horizon, seed)
    W = data.treatment
    gamma = dr_scores_from_pseudo_outcomes(s["pseudo_outcome"], W, s["e"], s["mu1"], s["mu0"])
    return np.ones(len(W), dtype=bool), gamma, what


def _aipcw_pseudo_outcomes(
    data: AnalysisData, target: str, horizon: float | None, seed: int
) -> tuple[dict, str]:
    """The AIPCW pseudo-outcomes and nuisances of an OS target, and where they come from."""
    if horizon is None:
        raise ValueError(f"target {target!r} needs a horizon")
    t, d = data.survival_outcome()
    W = data.treatment
    check_survival_outcome(t, d, len(t), horizon)
    what = (
        f"AIPCW: 5-fold cross-fitted propensity, event and censoring survival (discrete-time "
        f"hazard boosting on a grid of up to 25 points per horizon to {horizon:g} months, "
        f"censoring survival floored at 0.05)"
    )
    floor, clip = SURVIVAL_NUISANCE["censoring_floor"], SURVIVAL_NUISANCE["propensity_clip"]
    shared = data.nuisances
    if shared is not None and _serves_default(shared, horizon, seed):
        shared.check_rows(W)
        s = shared.pseudo_outcomes(
            t, d, target=target, horizon=horizon, censoring_floor=floor, propensity_clip=clip
        )
        what += "; the analysis's shared nuisances, the ones its estimators were fitted with"
    else:
        X = data.X.to_numpy(dtype=float)
        s = cross_fit_pseudo_outcomes(
            X,
            W,
            t,
            d,
            target=target,
            horizon=horizon,
            random_state=seed,
            n_jobs=2,
            **SURVIVAL_NUISANCE,
        )
    return s, what


def r_loss_residuals(
    data: AnalysisData, fits: list[FittedEffect], targets, seed: int
) -> dict[str, Residuals]:
    """Per target of ``targets``: the cross-fitted residuals of the R-loss over the same rows and
    from the same nuisances as its DR scores. OS: ``Y* - (e mu1 + (1 - e) mu0)`` and ``W - e``
    with the AIPCW pseudo-outcome Y*; CRS: ``Y - (e mu1 + (1 - e) mu0)`` and ``W - e``."""
    horizons = _targets(fits)
    out: dict[str, Residuals] = {}
    for target in targets:
        if target in CRS_TARGETS:
            _, y, w, e, mu1, mu0 = crs_nuisances(_with_propensity(data, seed), target, seed)
        else:
            s, _ = _aipcw_pseudo_outcomes(data, target, horizons[target], seed)
            y, w, e, mu1, mu0 = s["pseudo_outcome"], data.treatment, s["e"], s["mu1"], s["mu0"]
        out[target] = Residuals(y - (e * mu1 + (1 - e) * mu0), w - e)
    return out


def _serves_default(nuisances: Nuisances, horizon: float, seed: int) -> bool:
    """Shared nuisances fitted with ``SURVIVAL_NUISANCE``'s settings and ``seed``, reaching
    ``horizon``."""
    wanted = {k: SURVIVAL_NUISANCE[k] for k in DEFAULT_SURVIVAL} | {"random_state": seed}
    same = all(nuisances.settings.get(k) == v for k, v in wanted.items())
    return same and any(np.isclose(horizon, h) for h in nuisances.horizons)


# --------------------------------------------------------------------------------------------
# held-out priorities
# --------------------------------------------------------------------------------------------
def _point_only(model):
    """An unfitted copy of ``model`` without bootstrap refits (priorities need point effects)."""
    copy = clone(model)
    if int(copy.get_params().get("n_bootstrap", 0) or 0) > 0:
        copy.set_params(n_bootstrap=0)
    return copy


def cross_fitted_effects(
    model,
    X: pd.DataFrame,
    fit_kwargs: dict[str, Any],
    *,
    strata: np.ndarray | None = None,
    n_folds: int = N_FOLDS,
    random_state: int | None = None,
) -> np.ndarray:
    """Out-of-fold effects ``model.predict`` over every row of X: a fresh clone of ``model`` is
    fitted on the other folds with ``fit(X_train, **fit_kwargs_train)``.

    ``fit_kwargs`` values are per-row arrays (subset per fold) or None (passed as is).
    """
    template = _point_only(model)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        kwargs = {k: None if v is None else np.asarray(v)[train] for k, v in fit_kwargs.items()}
        refit = clone(template).fit(X.iloc[train], **kwargs)
        return refit.predict(X.iloc[test])

    return cross_fitted_priorities(
        fit_predict, X, n_folds=n_folds, random_state=random_state, stratify=strata
    )


def _fit_arguments(fit: FittedEffect, data: AnalysisData) -> tuple[dict, np.ndarray]:
    """Keyword arguments of the estimator's fit (as in ``stages._fit_one``) and fold strata."""
    W = data.treatment
    if fit.outcome == "os":
        t, d = data.survival_outcome()
        return {"time": t, "event": d, "treatment": W}, 2 * W + d.astype(int)
    crs = data.cohort[CRS].to_numpy(dtype=int)
    grade = data.cohort[CRS_GRADE].to_numpy() if CRS_GRADE in data.cohort else None
    label = crs.copy()
    if fit.target == "crs_g3" and grade is not None:
        g = pd.to_numeric(pd.Series(grade, dtype=object), errors="coerce").to_numpy(dtype=float)
        label = np.where(np.isnan(g), 2, g >= 3).astype(int)
    return {"crs": crs, "treatment": W, "crs_grade": grade}, 3 * W + label


def _usable_strata(strata: np.ndarray, treatment: np.ndarray, n_folds: int) -> np.ndarray:
    """Arm x outcome strata when each has at least ``n_folds`` patients, else the arm alone."""
    counts = np.unique(strata, return_counts=True)[1]
    return strata if counts.min() >= n_folds else treatment


@dataclasses.dataclass(frozen=True, eq=False)
class FoldNuisances:
    """One held-out fold: its training and test rows, and nuisances cross-fitted on the
    training rows only (inside them, ``fit_nuisances``'s folds)."""

    train: np.ndarray
    test: np.ndarray
    nuisances: Nuisances


def heldout_splits(strata: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, ...]]:
    """The (train, test) rows of the held-out folds: the splits ``cross_fitted_priorities``
    makes with these strata and seed."""
    folds = StratifiedKFold(n_splits=int(n_folds), shuffle=True, random_state=seed)
    return list(folds.split(np.zeros((len(strata), 1)), strata))


def _os_strata(data: AnalysisData, n_folds: int) -> np.ndarray:
    _, d = data.survival_outcome()
    return _usable_strata(2 * data.treatment + d.astype(int), data.treatment, n_folds)


def fold_nuisances(
    data: AnalysisData, seed: int, horizons, n_folds: int = N_FOLDS
) -> list[FoldNuisances]:
    """Per held-out fold of the OS fits, the shared nuisances fitted on its training half only:
    once per fold, read by every estimator refitted on that half (none of the test half's
    outcomes enters them)."""
    out = []
    for train, test in heldout_splits(_os_strata(data, n_folds), n_folds, seed):
        nuis = fit_nuisances(
            data.effect_data.subset(train),
            horizons=horizons,
            random_state=seed,
            **DEFAULT_SURVIVAL,
        )
        out.append(FoldNuisances(train, test, nuis))
    return out


def _uses_shared(model, data: AnalysisData) -> bool:
    return bool(shared_nuisance_kwargs(model, data.nuisances))


def heldout_effects(
    fit: FittedEffect,
    data: AnalysisData,
    seed: int,
    n_folds: int = N_FOLDS,
    folds: list[FoldNuisances] | None = None,
) -> np.ndarray:
    """``n_folds``-fold cross-fitted effects of one fit's estimator over ``data.cohort`` rows
    (folds stratified by arm x outcome and seeded).

    An estimator that takes the analysis's shared nuisances is refitted on each training half
    with nuisances cross-fitted on that half only: ``folds`` (from ``fold_nuisances``, shared by
    the run's estimators), or fitted here for this one fit."""
    fit_kwargs, strata = _fit_arguments(fit, data)
    strata = _usable_strata(strata, data.treatment, n_folds)
    if fit.outcome == "os" and _uses_shared(fit.model, data):
        if folds is None:
            folds = fold_nuisances(data, seed, data.nuisances.horizons, n_folds)
        return _shared_heldout(fit.model, data, strata, n_folds, seed, folds)
    return cross_fitted_effects(
        fit.model, data.X, fit_kwargs, strata=strata, n_folds=n_folds, random_state=seed
    )


def _shared_heldout(model, data, strata, n_folds, seed, folds) -> np.ndarray:
    template = _point_only(model)
    out = np.full(len(data.cohort), np.nan)
    splits = heldout_splits(strata, n_folds, seed)
    if len(splits) != len(folds):
        raise ValueError(f"{len(folds)} fold nuisances for {len(splits)} held-out folds")
    for (train, test), fold in zip(splits, folds, strict=True):
        if not (np.array_equal(fold.train, train) and np.array_equal(fold.test, test)):
            raise ValueError("fold nuisances were fitted on other held-out folds")
        refit = clone(template).fit(
            data.effect_data.subset(train), **shared_nuisance_kwargs(template, fold.nuisances)
        )
        out[test] = refit.predict(data.X.iloc[test])
    return out


# --------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------
def _priorities_note(seed: int, n_folds: int = N_FOLDS) -> str:
    others = "the other half" if n_folds == 2 else f"the other {n_folds - 1} folds"
    return (
        f"{n_folds}-fold cross-fitted CATE predictions: each patient ranked by the estimator "
        f"refitted on {others} (folds stratified by arm x outcome, seed {seed})"
    )


def _rate_summary(priorities, scores, kind: str, alpha: float, seed: int) -> dict:
    res = rate(
        priorities, scores, kind=kind, n_bootstrap=N_BOOTSTRAP, alpha=alpha, random_state=seed
    )
    return {
        "estimate": res.estimate,
        "std_err": res.std_err,
        "lower": res.lower,
        "upper": res.upper,
        "p_value": res.p_value if np.isfinite(res.p_value) else None,
    }


def _toc_summary(priorities, scores, alpha: float, seed: int) -> dict:
    band = toc_band(
        priorities, scores, TOC_GRID, n_bootstrap=N_BOOTSTRAP, alpha=alpha, random_state=seed
    )
    return {
        "q": [round(float(q), 2) for q in band.q],
        "toc": band.toc.tolist(),
        "lower": band.lower.tolist(),
        "upper": band.upper.tolist(),
    }


def fit_tests(
    priorities: np.ndarray, scores: np.ndarray, alpha: float, seed: int, *, in_sample: bool = False
) -> dict:
    """AUTOC, Qini, TOC and BLP of one fit's priorities against DR scores (errors recorded)."""
    out: dict = {"in_sample": in_sample, "n_bootstrap": N_BOOTSTRAP}
    for kind in ("autoc", "qini"):
        try:
            out[kind] = _rate_summary(priorities, scores, kind, alpha, seed)
        except ValueError as exc:
            out[kind] = {"error": str(exc)}
    try:
        out["toc"] = _toc_summary(priorities, scores, alpha, seed)
    except ValueError as exc:
        out["toc"] = {"error": str(exc)}
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
    data: AnalysisData,
    fits: list[FittedEffect],
    alpha: float,
    seed: int,
    scores: dict[str, Scores] | None = None,
    refits: dict[str, np.ndarray | str] | None = None,
    n_folds: int = N_FOLDS,
) -> tuple[dict[str, dict[str, dict]], dict[str, str]]:
    """Per estimator x target held-out test results and, per target, where its DR scores came
    from (or why the target was skipped).

    ``scores``: ``target_scores(data, fits, seed)`` when the caller already has it (computed
    here otherwise). ``refits``: ``all_heldout_effects(fits, data, seed)`` when the caller
    already has it, made with ``n_folds`` folds (the number the results are labelled with). A
    fit whose held-out refit fails gets ``{"error": ...}`` and the rest go on.
    """
    skipped: dict[str, str] = {}
    if scores is None:
        scores, skipped = _scores_and_reasons(data, fits, seed)
    ok = [f for f in fits if f.estimate is not None and f.error is None]
    sources: dict[str, str] = {}
    results: dict[str, dict[str, dict]] = {}
    for target in dict.fromkeys(f.target for f in ok if f.target not in scores):
        sources[target] = skipped.get(target, "skipped: no doubly robust scores for it")
    tested = [f for f in ok if f.target in scores]
    if refits is None:
        refits = all_heldout_effects(tested, data, seed, n_folds=n_folds)
    for target in dict.fromkeys(f.target for f in tested):
        keep, gamma, sources[target] = scores[target]
        for fit in (f for f in tested if f.target == target):
            results.setdefault(fit.estimator, {})[target] = _heldout_tests(
                fit, refits[fit.key], data, keep, gamma, alpha, seed, n_folds
            )
    return results, sources


def _heldout_or_error(
    fit: FittedEffect, data: AnalysisData, seed: int, folds=None, n_folds: int = N_FOLDS
):
    """One fit's held-out effects, or the error that stopped its refit."""
    try:
        return heldout_effects(fit, data, seed, n_folds=n_folds, folds=folds)
    except STAGE_FAILURES as exc:  # recorded for this fit, the others go on
        return f"{type(exc).__name__}: {exc}"


def heldout_fold_nuisances(
    fits: list[FittedEffect], data: AnalysisData, seed: int, n_folds: int = N_FOLDS
) -> list[FoldNuisances] | None:
    """The held-out folds' nuisances when a usable OS fit takes shared nuisances (else None):
    fitted once per fold, for all of them. A failure is logged and returns None (each such fit
    then cross-fits its own in its refit, and records what fails)."""
    usable = [f for f in fits if f.estimate is not None and f.error is None]
    if not any(f.outcome == "os" and _uses_shared(f.model, data) for f in usable):
        return None
    try:
        return fold_nuisances(data, seed, data.nuisances.horizons, n_folds)
    except STAGE_FAILURES as exc:
        log.warning("held-out fold nuisances failed on %s: %s", data.label, exc)
        return None


def all_heldout_effects(
    fits: list[FittedEffect], data: AnalysisData, seed: int, folds=None, n_folds: int = N_FOLDS
) -> dict:
    """Held-out effects of every usable fit, keyed by ``fit.key`` (an array, or the error that
    stopped the refit). Nuisances of the held-out folds (``folds``, from
    ``heldout_fold_nuisances``; fitted here when not given) are fitted once per fold and shared
    by the estimators that take them; the refits run in ``N_JOBS`` processes, each sent only an
    unfitted copy of its estimator (same seeds, same numbers)."""
    fits = [f for f in fits if f.estimate is not None and f.error is None]
    light = [
        dataclasses.replace(f, model=_point_only(f.model), estimate=None, arms={}) for f in fits
    ]
    if folds is None:
        folds = heldout_fold_nuisances(fits, data, seed, n_folds)
    task = partial(_heldout_or_error, data=data, seed=seed, folds=folds, n_folds=n_folds)
    out = list(map_tasks(task, light, N_JOBS))  # each single-threaded, in or out of process
    return {f.key: r for f, r in zip(fits, out, strict=True)}


def _heldout_tests(
    fit, effects, data, keep, gamma, alpha: float, seed: int, n_folds: int = N_FOLDS
) -> dict:
    note = {"in_sample": False, "priorities": _priorities_note(seed, n_folds)}
    if isinstance(effects, str):
        log.warning(
            "held-out refit of %s/%s failed on %s: %s",
            fit.estimator,
            fit.target,
            data.label,
            effects,
        )
        return note | {"error": f"held-out refit failed: {effects}"}
    # rounded: last-bit differences between identical runs must not reorder near-ties
    priorities = np.round(effects[keep], 10)
    return note | fit_tests(priorities, gamma, alpha, seed)
