"""Cross-fitted survival nuisances on a time grid, and the AIPCW transform built from them.

The causal survival forest and the DR-learner both need, for every training patient and out of fold:
the event survival S(t | x, w) under both arms and the observed arm, and the censoring survival
C(t | x, w) under the observed arm. Both are step functions on a grid ``g_1 < ... < g_K = horizon``;
an observed time u is placed in the grid cell ``(g_{k-1}, g_k]`` (rounded up), deaths before
censorings at a tie (the usual convention: a patient censored at t was at risk of dying at t,
a patient dying at t was not at risk of being censored at t).

The event and censoring models are the survival learners of ``hte.estimators.survival_learners``
(boosted discrete-time hazard, random survival forest, or Kaplan-Meier), cross-fitted here.

``aipcw_pseudo_outcome`` turns them into the doubly robust censoring-adjusted pseudo-outcome of
f(T) (min(T, h) for RMST, 1{T > h} for survival) that docs/methods.md writes the forest's score
with: A = (W - e)(Y* - m), J = (W - e)^2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from hte.array_checks import interval_z
from hte.design.propensity import clip_propensity, cross_fit_propensity
from hte.estimators.survival_learners import RiskSet, make_survival_learner
from hte.vocabulary import OS_TARGETS

TARGETS = OS_TARGETS  # the survival targets of hte.vocabulary


# --------------------------------------------------------------------------------------------
# grid and discretization
# --------------------------------------------------------------------------------------------


def make_grid(time: np.ndarray, horizon: float, max_points: int | None = 25) -> np.ndarray:
    """Grid of the distinct follow-up times <= horizon (thinned to quantiles), ending at horizon.

    With ``max_points=None`` every distinct time is kept (exact, slower); otherwise at most
    ``max_points`` points at empirical quantiles of the follow-up times below the horizon.
    """
    t = np.asarray(time, dtype=float)
    inside = np.unique(t[t < horizon])
    if max_points is not None and inside.size > max_points - 1:
        probs = np.linspace(0.0, 1.0, int(max_points))[1:]
        inside = np.unique(np.quantile(t[t < horizon], probs[:-1], method="inverted_cdf"))
    return np.append(inside[inside < horizon], float(horizon))


def discretize(time: np.ndarray, event: np.ndarray, grid: np.ndarray):
    """Grid cell of each follow-up time (truncated at the horizon) and what happened in it.

    Returns ``cell`` (0-based index of the first grid time >= min(time, horizon)), ``died`` (death
    seen at or before the horizon) and ``censored`` (censored at or before the horizon); a patient
    followed beyond the horizon has neither, and is in the last cell.
    """
    horizon = grid[-1]
    t = np.asarray(time, dtype=float)
    d = np.asarray(event, dtype=bool)
    y = np.minimum(t, horizon)
    cell = np.searchsorted(grid, y, side="left")
    died = d & (t <= horizon)
    censored = ~d & (t <= horizon)
    return cell, died, censored


def risk_sets(time: np.ndarray, event: np.ndarray, grid: np.ndarray) -> tuple[RiskSet, RiskSet]:
    """Risk sets for the event (death) model and for the censoring model."""
    horizon = grid[-1]
    t = np.minimum(np.asarray(time, dtype=float), horizon)
    cell, died, censored = discretize(time, event, grid)
    lower = np.concatenate([[0.0], grid[:-1]])[cell]
    frac = np.clip((t - lower) / (grid[cell] - lower), 0.0, 1.0)
    ev = RiskSet(cell, died, np.where(censored, frac, 1.0), t)
    on_grid = t >= grid[cell]
    death_exposure = np.where(on_grid, 0.0, frac)
    # continuous-time learners: a death tied with a censoring time comes first
    ce = RiskSet(
        cell, censored, np.where(died, death_exposure, 1.0), np.where(died, t * (1 - 1e-9), t)
    )
    return ev, ce


# --------------------------------------------------------------------------------------------
# cross-fitting
# --------------------------------------------------------------------------------------------


def _subset(rs: RiskSet, idx: np.ndarray) -> RiskSet:
    return RiskSet(rs.cell[idx], rs.label[idx], rs.last_weight[idx], rs.time[idx])


@dataclass(frozen=True)
class SurvivalNuisances:
    """Out-of-fold survival curves on ``grid`` for every training patient.

    ``surv`` / ``surv1`` / ``surv0``: event survival P(T > g_k | x, w) at the observed arm, at w=1
    and at w=0; ``cens``: censoring survival P(C > g_k | x, w) at the observed arm. All (n, K).
    """

    grid: np.ndarray
    surv: np.ndarray
    surv1: np.ndarray
    surv0: np.ndarray
    cens: np.ndarray


def _fit_fold(X, W, ev_rs, ce_rs, grid, tr, te, event_learner, censoring_learner, seed):
    """Fit both survival models on ``tr``; curves for ``te`` (surv, surv1, surv0, cens).

    One OpenMP thread per fit, set in the worker thread itself (the limit is per thread): many
    small boosting fits are far faster single-threaded, and folds run side by side instead.
    The curve under each patient's own arm is read from the two arms' curves (the same rows
    given to the same model), not predicted a third time.
    """
    n_te = te.size
    with threadpool_limits(limits=1):
        ev = make_survival_learner(event_learner, seed).fit(X[tr], W[tr], _subset(ev_rs, tr), grid)
        ce = make_survival_learner(censoring_learner, seed).fit(
            X[tr], W[tr], _subset(ce_rs, tr), grid
        )
        surv1 = ev.predict(X[te], np.ones(n_te, dtype=int))
        surv0 = ev.predict(X[te], np.zeros(n_te, dtype=int))
        surv = np.where((W[te] == 1)[:, None], surv1, surv0)
        return surv, surv1, surv0, ce.predict(X[te], W[te])


def cross_fit_survival(
    X: np.ndarray,
    W: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    grid: np.ndarray,
    *,
    event_learner="hazard_gbm",
    censoring_learner="hazard_gbm",
    n_folds: int = 5,
    random_state: int | None = None,
    n_jobs: int | None = 1,
) -> SurvivalNuisances:
    """Cross-fit S(t|x,w) and C(t|x,w) on the grid (K folds stratified on arm x event).

    Folds run in ``n_jobs`` threads (the learners release the GIL in their compiled parts).
    """
    X = np.asarray(X, dtype=float)
    W = np.asarray(W, dtype=int)
    ev_rs, ce_rs = risk_sets(time, event, grid)
    n, K = X.shape[0], grid.size
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    splits = list(folds.split(X, 2 * W + ev_rs.label))
    seeds = [None if random_state is None else random_state + f for f in range(n_folds)]
    results = Parallel(n_jobs=n_jobs, backend="threading")(
        delayed(_fit_fold)(X, W, ev_rs, ce_rs, grid, tr, te, event_learner, censoring_learner, seed)
        for (tr, te), seed in zip(splits, seeds, strict=True)
    )
    out = {name: np.empty((n, K)) for name in ("surv", "surv1", "surv0", "cens")}
    for (_, te), curves in zip(splits, results, strict=True):
        for name, values in zip(("surv", "surv1", "surv0", "cens"), curves, strict=True):
            out[name][te] = values
    return SurvivalNuisances(grid=grid, **out)


# --------------------------------------------------------------------------------------------
# functionals of S and the AIPCW transform
# --------------------------------------------------------------------------------------------


def _check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}")
    return target


def conditional_target(
    surv: np.ndarray, grid: np.ndarray, target: str
) -> tuple[np.ndarray, np.ndarray]:
    """E[f(T) | x] and Q_k = E[f(T) | T > g_k, x] from survival curves on the grid (n, K).

    RMST: E[min(T, h)] = g_1 + sum_k S_k (g_{k+1} - g_k), Q_k = g_k + sum_{j>=k} S_j dg_j / S_k.
    Survival: E[1{T > h}] = S_K, Q_k = S_K / S_k.
    """
    _check_target(target)
    S = np.asarray(surv, dtype=float)
    safe = np.maximum(S, 1e-12)
    if target == "survival":
        mean = S[:, -1].copy()
        Q = np.where(S > 1e-12, S[:, -1:] / safe, 0.0)
        return mean, np.minimum(Q, 1.0)
    step = np.diff(grid, append=grid[-1])  # (K,), last = 0
    tail = np.cumsum((S * step)[:, ::-1], axis=1)[:, ::-1]  # sum_{j>=k} S_j dg_j
    mean = grid[0] + tail[:, 0]
    Q = grid[None, :] + np.where(S > 1e-12, tail / safe, 0.0)
    return mean, np.minimum(Q, grid[-1])


def observed_target(time: np.ndarray, event: np.ndarray, horizon: float, target: str) -> np.ndarray:
    """f(T) where it is known (complete cases); meaningless for the others (they get Q instead)."""
    _check_target(target)
    t = np.asarray(time, dtype=float)
    if target == "rmst":
        return np.minimum(t, horizon)
    d = np.asarray(event, dtype=bool)
    # alive past h: seen beyond h, or censored exactly at h (censored means T > C)
    return ((t > horizon) | ((t == horizon) & ~d)).astype(float)


def aipcw_pseudo_outcome(
    time: np.ndarray,
    event: np.ndarray,
    nuis: SurvivalNuisances,
    target: str,
    *,
    censoring_floor: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Doubly robust censoring-adjusted pseudo-outcome Y* of f(T), and m(x) ingredients.

    For patient i with truncated follow-up Y = min(U, h) in grid cell k and complete-case flag D_h
    (death seen, or followed to h)::

        Y* = [D_h f(Y) + (1 - D_h) Q(Y)] / C(Y*) - sum_{grid t in risk(i)} dLambda_C(t) / C(t) Q(t)

    with C(Y*) = C(Y-) and risk(i) = grid times before Y for complete cases, C(Y) and times up to
    and including Y for censored ones (censoring at risk only while T > t). dLambda_C is derived from
    the floored C, so the weights satisfy sum = 1 exactly and subtracting m(x) from Y* is the score
    of docs/methods.md. Returns (Y*, Q at the observed arm (n, K), diagnostics).
    """
    grid = nuis.grid
    horizon = float(grid[-1])
    cell, _, censored = discretize(time, event, grid)
    complete = ~censored
    n, K = nuis.cens.shape
    G = np.maximum(np.minimum.accumulate(nuis.cens, axis=1), censoring_floor)
    G_prev = np.column_stack([np.ones(n), G[:, :-1]])
    dlam = 1.0 - G / G_prev  # censoring hazard increments in each cell
    _, Q = conditional_target(nuis.surv, grid, target)
    rows = np.arange(n)
    # weight of the observed outcome
    g_star = np.where(complete, G_prev[rows, cell], G[rows, cell])
    f_obs = observed_target(time, event, horizon, target)
    main = np.where(complete, f_obs, Q[rows, cell]) / g_star
    # augmentation: grid cells where the patient was at risk of censoring
    last = np.where(complete, cell - 1, cell)
    in_risk = np.arange(K)[None, :] <= last[:, None]
    aug = np.sum(np.where(in_risk, dlam / G * Q, 0.0), axis=1)
    diag = {
        "min_censoring_survival": float(np.min(nuis.cens)),
        "share_floored": float(np.mean(g_star <= censoring_floor)),
        "complete_share": float(np.mean(complete)),
    }
    return main - aug, Q, diag


# Constructor parameters that the CSF and the DR-learner hand unchanged to the nuisance step.
NUISANCE_PARAMS = (
    "target",
    "grid_size",
    "event_learner",
    "censoring_learner",
    "n_folds",
    "censoring_floor",
    "propensity_clip",
    "random_state",
    "n_jobs",
)


def nuisance_params(estimator) -> dict:
    """The nuisance settings of a CSF / DR-learner instance, as keyword arguments for
    ``cross_fit_pseudo_outcomes`` (horizon as a float)."""
    kwargs = {name: getattr(estimator, name) for name in NUISANCE_PARAMS}
    kwargs["horizon"] = float(estimator.horizon)
    return kwargs


def cross_fit_pseudo_outcomes(
    X: np.ndarray,
    W: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    *,
    target: str,
    horizon: float,
    grid_size: int | None = 25,
    event_learner="hazard_gbm",
    censoring_learner="hazard_gbm",
    propensity_learner=None,
    n_folds: int = 5,
    censoring_floor: float = 0.05,
    propensity_clip: float = 0.01,
    random_state: int | None = None,
    n_jobs: int | None = 1,
    propensity: np.ndarray | None = None,
) -> dict:
    """All cross-fitted nuisances and the AIPCW pseudo-outcome, shared by the CSF and DR-learner.

    ``propensity``: the cross-fitted propensity when the caller already has it, the very
    cross-fit this would make (same learner, folds and seed: the refutations share one between
    their targets); it is clipped to ``propensity_clip`` here instead of being refitted.

    Returns a dict with ``e`` (propensity), ``mu1`` / ``mu0`` (E[f(T) | x, w]), ``m`` =
    e mu1 + (1 - e) mu0, ``pseudo_outcome`` (Y*), ``grid``, ``nuisances`` and ``diagnostics``.
    """
    _check_target(target)
    grid = make_grid(time, horizon, grid_size)
    with threadpool_limits(limits=1):  # many small OpenMP fits: one thread each is much faster
        if propensity is None:
            e = cross_fit_propensity(
                X,
                W,
                learner=propensity_learner,
                n_folds=n_folds,
                random_state=random_state,
                clip=propensity_clip,
            )
        else:
            e = clip_propensity(propensity, np.asarray(W).shape[0], propensity_clip)
        nuis = cross_fit_survival(
            X,
            W,
            time,
            event,
            grid,
            event_learner=event_learner,
            censoring_learner=censoring_learner,
            n_folds=n_folds,
            random_state=random_state,
            n_jobs=n_jobs,
        )
    return pseudo_outcomes_from_nuisances(
        time, event, e, nuis, target=target, censoring_floor=censoring_floor
    )


def pseudo_outcomes_from_nuisances(
    time: np.ndarray,
    event: np.ndarray,
    propensity: np.ndarray,
    nuis: SurvivalNuisances,
    *,
    target: str,
    censoring_floor: float = 0.05,
) -> dict:
    """The dict of ``cross_fit_pseudo_outcomes`` from nuisances already in hand.

    The cross-fitted path ends here; supplying known nuisances (e.g. a simulator's true
    propensity and survival curves) gives oracle scores through exactly the same maths.
    """
    _check_target(target)
    grid = nuis.grid
    e = np.asarray(propensity, dtype=float)
    n = np.asarray(time).shape[0]
    shapes = {"surv": nuis.surv, "surv1": nuis.surv1, "surv0": nuis.surv0, "cens": nuis.cens}
    for name, arr in shapes.items():
        if arr.shape != (n, grid.size):
            raise ValueError(f"nuisances.{name} must have shape {(n, grid.size)}; got {arr.shape}")
    if e.shape != (n,) or not np.all((e > 0) & (e < 1)):
        raise ValueError(f"propensity must have shape ({n},) with values in (0, 1)")
    ystar, _, diag = aipcw_pseudo_outcome(
        time, event, nuis, target, censoring_floor=censoring_floor
    )
    mu1, _ = conditional_target(nuis.surv1, grid, target)
    mu0, _ = conditional_target(nuis.surv0, grid, target)
    return {
        "e": e,
        "mu1": mu1,
        "mu0": mu0,
        "m": e * mu1 + (1.0 - e) * mu0,
        "pseudo_outcome": ystar,
        "grid": grid,
        "nuisances": nuis,
        "diagnostics": diag,
    }


def aipw_average(gamma: np.ndarray, alpha: float = 0.05) -> tuple[float, float, float]:
    """(estimate, lower, upper): the mean of doubly robust scores with its normal interval."""
    est, se = float(gamma.mean()), float(gamma.std(ddof=1) / np.sqrt(gamma.size))
    z = interval_z(alpha)
    return est, est - z * se, est + z * se


def dr_scores(scores: dict) -> np.ndarray:
    """Doubly robust effect scores from a pseudo-outcome dict with ``W`` added:
    Gamma = mu1 - mu0 + (W - e) / (e (1 - e)) (Y* - mu_W) (hte.evaluation.rate's formula)."""
    w, e, y = scores["W"], scores["e"], scores["pseudo_outcome"]
    mu1, mu0 = scores["mu1"], scores["mu0"]
    return mu1 - mu0 + (w - e) / (e * (1.0 - e)) * (y - np.where(w == 1, mu1, mu0))
