"""Run-folder heterogeneity tests on held-out priorities: RATE (AUTOC, Qini, TOC) and BLP.

Is the heterogeneity an estimator found real? Two ingredients, both out of sample:

* Doubly robust scores per target (``hte.pipeline.target_scores``), computed once and
  independent of which estimators the run fitted.
* Held-out priorities per fit (``heldout_effects``): the fitted estimator is cloned and refitted
  on the other folds of the patients to predict each fold (``evaluation.heldout_folds``, 5 by
  default, stratified by arm x outcome, seeded), so no patient is ranked by a model that saw its
  outcome. Estimators that take shared nuisances (causal survival forest, DR-learner) read
  nuisances cross-fitted on the training folds only, fitted once per fold and shared by all of
  them (``fold_nuisances``).

Each fit's priorities are then tested against its target's scores: AUTOC and Qini with bootstrap
intervals, the TOC curve with a pointwise band, and the BLP calibration test (mean and
differential forest prediction). Metrics say ``"in_sample": false``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from hte.config.sections import HeldoutFolds
from hte.data.columns import CRS, CRS_GRADE
from hte.errors import STAGE_FAILURES
from hte.estimators.shared_nuisances import DEFAULT_SURVIVAL, Nuisances, fit_nuisances
from hte.evaluation.blp_calibration import blp_calibration_test
from hte.evaluation.rate import (
    cross_fitted_priorities,
    rate,
    toc_band,
)
from hte.pipeline.model_average import average_heldout, is_average
from hte.pipeline.parallel import map_tasks
from hte.pipeline.stages import (
    AnalysisData,
    FittedEffect,
    shared_nuisance_kwargs,
)
from hte.pipeline.target_scores import Scores, _scores_and_reasons

log = logging.getLogger("hte.pipeline")

N_BOOTSTRAP = 200
HELDOUT_FOLDS = HeldoutFolds()  # the run's default folds per outcome (evaluation.heldout_folds)
N_FOLDS = HELDOUT_FOLDS.os  # one fit's default: each patient is ranked by a refit on the others


def folds_of(n_folds: int | HeldoutFolds, outcome: str) -> int:
    """The folds of a fit's held-out refit: ``n_folds`` itself, or its entry for ``outcome``."""
    return n_folds.of(outcome) if isinstance(n_folds, HeldoutFolds) else int(n_folds)


# the held-out refits of different fits are independent: run them in this many processes (each
# limited to one thread, so 2 processes use the 2 cores without oversubscription); 1 = in-process
N_JOBS = 2
TOC_GRID = np.arange(1, 21) / 20  # q = 0.05, 0.10, ..., 1.0


# --------------------------------------------------------------------------------------------
# held-out priorities
# --------------------------------------------------------------------------------------------
def _point_only(model):
    """An unfitted copy of ``model`` for point effects (what priorities, losses and calibration
    read), with the settings the model names for them in ``point_only_params`` when it has
    that method (no bootstrap refits for the survival curve models, fewer posterior draws for
    BCF)."""
    copy = clone(model)
    if hasattr(copy, "point_only_params"):
        copy.set_params(**copy.point_only_params())
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
    outcomes enters them). The folds are fitted side by side in ``N_JOBS`` worker processes,
    where the run's own process may be busy saving the models (``hte.pipeline.model_saving``)."""
    return list(start_fold_nuisances(data, seed, horizons, n_folds))


def start_fold_nuisances(
    data: AnalysisData, seed: int, horizons, n_folds: int = N_FOLDS
) -> Iterator[FoldNuisances]:
    """``fold_nuisances`` under way: the folds' tasks go to the worker processes now and the
    returned iterator gives their results, in fold order, as they are read (the run starts
    them beside its estimator fits: ``hte.pipeline.heldout_start``)."""
    splits = heldout_splits(_os_strata(data, n_folds), n_folds, seed)
    task = partial(_fold_nuisances, data=data, seed=seed, horizons=tuple(horizons))
    return map_tasks(task, splits, N_JOBS)


def _fold_nuisances(split: tuple[np.ndarray, np.ndarray], data, seed, horizons) -> FoldNuisances:
    train, test = split
    nuis = fit_nuisances(
        data.effect_data.subset(train), horizons=horizons, random_state=seed, **DEFAULT_SURVIVAL
    )
    return FoldNuisances(train, test, nuis)


def _uses_shared(model, data: AnalysisData) -> bool:
    return bool(shared_nuisance_kwargs(model, data.nuisances))


def reads_fold_nuisances(fit: FittedEffect, data: AnalysisData) -> bool:
    """Whether the held-out refits of ``fit`` read the folds' nuisances: an OS estimator that
    takes the analysis's shared nuisances (``fold_nuisances``)."""
    return fit.outcome == "os" and _uses_shared(fit.model, data)


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
    if reads_fold_nuisances(fit, data):
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
    n_folds: int | HeldoutFolds = HELDOUT_FOLDS,
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
        scores, skipped, _ = _scores_and_reasons(data, fits, seed)
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
                fit, refits[fit.key], data, keep, gamma, alpha, seed, folds_of(n_folds, fit.outcome)
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
    fits: list[FittedEffect],
    data: AnalysisData,
    seed: int,
    n_folds: int | HeldoutFolds = HELDOUT_FOLDS,
    started: Iterator[FoldNuisances] | None = None,
) -> list[FoldNuisances] | None:
    """The held-out folds' nuisances when a usable OS fit takes shared nuisances (else None):
    fitted once per fold, for all of them (``started``: the ones already under way, from
    ``hte.pipeline.heldout_start``). A failure is logged and returns None (each such fit
    then cross-fits its own in its refit, and records what fails)."""
    usable = [f for f in fits if f.estimate is not None and f.error is None]
    if not any(reads_fold_nuisances(f, data) for f in usable):
        return None
    try:
        if started is not None:
            return list(started)
        return fold_nuisances(data, seed, data.nuisances.horizons, folds_of(n_folds, "os"))
    except STAGE_FAILURES as exc:
        log.warning("held-out fold nuisances failed on %s: %s", data.label, exc)
        return None


@dataclasses.dataclass(eq=False)
class StartedRefits:
    """Held-out refits under way in the worker processes (``start_refits``): each group's fit
    keys, and its results as they are read."""

    keys: list[tuple[str, ...]]
    pending: Iterator[list]

    def results(self) -> dict[tuple[str, ...], list]:
        """Every group's results (waiting for the ones still running), by its fit keys."""
        return dict(zip(self.keys, self.pending, strict=True))


def _group_keys(group: list[FittedEffect]) -> tuple[str, ...]:
    return tuple(f.key for f in group)


def _point_group(group: list[FittedEffect]) -> list[FittedEffect]:
    """A refit group as sent to a worker: unfitted point-only copies, no estimates."""
    return [
        dataclasses.replace(f, model=_point_only(f.model), estimate=None, arms={}) for f in group
    ]


def start_refits(
    groups: list[list[FittedEffect]], data, seed: int, n_folds: int | HeldoutFolds
) -> StartedRefits:
    """The held-out refits of ``groups`` (``refit_groups``, of estimators that read no fold
    nuisances) sent to the worker processes now; ``all_heldout_effects`` takes their results
    when its groups match."""
    task = partial(_heldout_group, data=data, seed=seed, folds=None, n_folds=n_folds)
    pending = map_tasks(task, [_point_group(g) for g in groups], N_JOBS)
    return StartedRefits([_group_keys(g) for g in groups], pending)


def all_heldout_effects(
    fits: list[FittedEffect],
    data: AnalysisData,
    seed: int,
    folds=None,
    n_folds: int | HeldoutFolds = HELDOUT_FOLDS,
    started: StartedRefits | None = None,
) -> dict:
    """Held-out effects of every usable fit, keyed by ``fit.key`` (an array, or the error that
    stopped the refit). Nuisances of the held-out folds (``folds``, from
    ``heldout_fold_nuisances``; fitted here when not given) are fitted once per fold and shared
    by the estimators that take them; the refits run in ``N_JOBS`` processes, each sent only an
    unfitted copy of its estimator (same seeds, same numbers). ``started``: refits the run
    began before its fits (``hte.pipeline.heldout_start``), used for the groups whose fits all
    succeeded. A model average is not refitted: its held-out effects are its members'
    averaged (``hte.pipeline.model_average``)."""
    usable = [f for f in fits if f.estimate is not None and f.error is None]
    fits = [f for f in usable if not is_average(f)]
    if folds is None:
        folds = heldout_fold_nuisances(fits, data, seed, n_folds)
    groups = refit_groups(fits, data)
    done = started.results() if started is not None else {}
    todo = [g for g in groups if _group_keys(g) not in done]
    task = partial(_heldout_group, data=data, seed=seed, folds=folds, n_folds=n_folds)
    out = map_tasks(task, [_point_group(g) for g in todo], N_JOBS)  # single-threaded each
    done.update(zip([_group_keys(g) for g in todo], out, strict=True))
    refits = {
        f.key: r for group in groups for f, r in zip(group, done[_group_keys(group)], strict=True)
    }
    for fit in usable:
        if is_average(fit):
            refits[fit.key] = average_heldout(fit, refits)
    return refits


def refit_groups(fits: list[FittedEffect], data: AnalysisData) -> list[list[FittedEffect]]:
    """The held-out refits to make: one per fit, except that the fits of one estimator whose
    model serves every target (``for_target``; no shared nuisances) share one refit per fold."""
    groups: dict[tuple, list[FittedEffect]] = {}
    for fit in fits:
        serves = hasattr(fit.model, "for_target") and not _uses_shared(fit.model, data)
        groups.setdefault(("estimator", fit.estimator) if serves else ("fit", fit.key), []).append(
            fit
        )
    return list(groups.values())


def _heldout_group(group: list[FittedEffect], data, seed, folds, n_folds) -> list:
    """Held-out effects (or errors) of a group from ``refit_groups``, in its order (one outcome;
    ``n_folds`` an integer or the folds per outcome)."""
    n_folds = folds_of(n_folds, group[0].outcome)
    if len(group) == 1:
        return [_heldout_or_error(group[0], data, seed, folds, n_folds)]
    try:
        return _heldout_for_targets(group, data, seed, n_folds)
    except STAGE_FAILURES:  # the shared refit failed: each fit on its own records its error
        return [_heldout_or_error(f, data, seed, folds, n_folds) for f in group]


def _heldout_for_targets(group: list[FittedEffect], data, seed, n_folds) -> list:
    """One refit per held-out fold of the group's estimator (on the training half only), read
    for each fit's target: what ``heldout_effects`` gives each fit, with one refit instead of
    one per target."""
    fit_kwargs, strata = _fit_arguments(group[0], data)
    strata = _usable_strata(strata, data.treatment, n_folds)
    template = _point_only(group[0].model)
    out: list = [np.full(len(data.cohort), np.nan) for _ in group]
    for train, test in heldout_splits(strata, n_folds, seed):
        kwargs = {k: None if v is None else np.asarray(v)[train] for k, v in fit_kwargs.items()}
        refit = clone(template).fit(data.X.iloc[train], **kwargs)
        for k, fit in enumerate(group):
            if isinstance(out[k], str):
                continue
            try:
                out[k][test] = refit.for_target(fit.target, fit.horizon).predict(data.X.iloc[test])
            except STAGE_FAILURES as exc:  # recorded for this target, the others go on
                out[k] = f"{type(exc).__name__}: {exc}"
    return out


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
