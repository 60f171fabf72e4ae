"""Is the heterogeneity real? Rank-weighted average treatment effects (RATE) on held-out data.

Yadlowsky, Fleming, Shah, Brunskill and Wager (2021/2024), "Evaluating treatment prioritization
rules via rank-weighted average treatment effects". A prioritization rule (here: predicted CATE on
patients the model did not see) is scored by the Targeting Operator Characteristic

    TOC(q) = E[Gamma | priority in the top q fraction] - E[Gamma],

where Gamma_i are doubly robust scores whose mean is the average effect (AIPW for a binary
outcome, AIPCW pseudo-outcome based scores for survival). Two weightings of the curve:

    AUTOC = int_0^1 TOC(q) dq           (weights the top of the ranking most)
    Qini  = int_0^1 q TOC(q) dq          (weights a broader part of the ranking)

If the effect is the same for everybody (or the ranking is unrelated to it) both are zero. Standard
errors come from a (cluster) bootstrap with priorities held fixed; intervals are normal
(estimate +- z * se) and the p-value is two-sided for H0: RATE = 0.

Ties in the priorities are handled as the paper recommends: the TOC is averaged over all orderings
consistent with the ties, which equals replacing each score by its tie-group mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.model_selection import KFold, StratifiedKFold

KINDS = ("autoc", "qini")


@dataclass(frozen=True, eq=False)  # eq=False: the TOC arrays make == ambiguous
class RateResult:
    """A RATE estimate with its bootstrap standard error, normal interval and two-sided p-value.

    ``toc_q`` / ``toc`` hold the estimated TOC curve at q = 1/n, 2/n, ..., 1.
    """

    estimate: float
    std_err: float
    lower: float
    upper: float
    kind: str
    n: int
    p_value: float
    alpha: float
    n_bootstrap: int
    toc_q: np.ndarray
    toc: np.ndarray


# --------------------------------------------------------------------------------------------
# doubly robust scores
# --------------------------------------------------------------------------------------------
def _as_vector(name: str, values, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have length {n}; got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite; rows {np.flatnonzero(bad)[:5].tolist()} are not")
    return arr


def _check_propensity(e: np.ndarray) -> None:
    bad = (e <= 0) | (e >= 1)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"propensity e must be strictly in (0, 1); rows {rows} are not")


def _check_binary(name: str, values: np.ndarray) -> None:
    bad = (values != 0) & (values != 1)
    if bad.any():
        raise ValueError(f"{name} must be 0/1; rows {np.flatnonzero(bad)[:5].tolist()} are not")


def dr_scores_from_pseudo_outcomes(pseudo_outcome, treatment, e, mu1, mu0) -> np.ndarray:
    """Doubly robust effect scores from a censoring-adjusted pseudo-outcome Y* (survival).

    Gamma = mu1 - mu0 + (W - e) / (e (1 - e)) * (Y* - mu_W); the mean of Gamma estimates the
    average effect on f(T) (e.g. survival at the horizon), per patient it is an unbiased but noisy
    signal of the CATE. Use cross-fitted nuisances (hte.estimators.nuisance).
    """
    y = _as_vector("pseudo_outcome", pseudo_outcome)
    n = y.shape[0]
    w = _as_vector("treatment", treatment, n)
    _check_binary("treatment", w)
    e = _as_vector("e", e, n)
    _check_propensity(e)
    mu1 = _as_vector("mu1", mu1, n)
    mu0 = _as_vector("mu0", mu0, n)
    mu_w = np.where(w == 1, mu1, mu0)
    return mu1 - mu0 + (w - e) / (e * (1.0 - e)) * (y - mu_w)


def aipw_scores_binary(y, w, e, mu1, mu0) -> np.ndarray:
    """AIPW scores for an outcome observed in full (binary CRS, or any uncensored outcome).

    Same formula as ``dr_scores_from_pseudo_outcomes`` with Y in place of Y*; ``y`` must be 0/1.
    """
    y = _as_vector("y", y)
    _check_binary("y", y)
    return dr_scores_from_pseudo_outcomes(y, w, e, mu1, mu0)


# --------------------------------------------------------------------------------------------
# TOC and RATE
# --------------------------------------------------------------------------------------------
def _sorted_with_ties(priorities: np.ndarray, scores: np.ndarray):
    """Scores sorted by decreasing priority and the tie-group id (0, 1, ...) of each position."""
    order = np.argsort(-priorities, kind="stable")
    p_sorted = priorities[order]
    group = np.concatenate([[0], np.cumsum(p_sorted[1:] != p_sorted[:-1])])
    return scores[order], group


def _tie_averaged(scores_sorted: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Replace each score by its tie-group mean (the average over orderings within the ties)."""
    sums = np.bincount(group, weights=scores_sorted)
    counts = np.bincount(group)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    return means[group]


def _toc_from_sorted(scores_sorted: np.ndarray, group: np.ndarray) -> np.ndarray:
    """TOC at q = j/n for j = 1..n from scores already sorted by decreasing priority."""
    s = _tie_averaged(scores_sorted, group)
    n = s.shape[0]
    top_mean = np.cumsum(s) / np.arange(1, n + 1)
    return top_mean - s.mean()


def _rate_from_toc(toc: np.ndarray, kind: str) -> float:
    """Riemann sum of the TOC over q = j/n: AUTOC weights 1, Qini weights q."""
    n = toc.shape[0]
    if kind == "autoc":
        return float(np.mean(toc))
    q = np.arange(1, n + 1) / n
    return float(np.mean(q * toc))


def _check_inputs(priorities, scores) -> tuple[np.ndarray, np.ndarray]:
    s = _as_vector("scores", scores)
    p = _as_vector("priorities", priorities, s.shape[0])
    if s.shape[0] < 2:
        raise ValueError(f"need at least 2 patients; got {s.shape[0]}")
    return p, s


def toc_curve(priorities, scores, grid=None) -> tuple[np.ndarray, np.ndarray]:
    """Estimated TOC curve: (q, TOC(q)).

    ``grid``: fractions in (0, 1]; TOC(q) uses the top ceil(q n) patients. Default: every j/n.
    """
    p, s = _check_inputs(priorities, scores)
    s_sorted, group = _sorted_with_ties(p, s)
    toc = _toc_from_sorted(s_sorted, group)
    n = s.shape[0]
    if grid is None:
        return np.arange(1, n + 1) / n, toc
    q = np.asarray(grid, dtype=float)
    if q.ndim != 1 or np.any(~np.isfinite(q)) or np.any((q <= 0) | (q > 1)):
        raise ValueError("grid must be a one-dimensional array of fractions in (0, 1]")
    k = np.clip(np.ceil(q * n - 1e-9).astype(int), 1, n)
    return q, toc[k - 1]


def _cluster_members(clusters_sorted: np.ndarray) -> list[np.ndarray]:
    """Positions (in priority order) of each cluster's patients."""
    _, inverse = np.unique(clusters_sorted, return_inverse=True)
    return [np.flatnonzero(inverse == c) for c in range(inverse.max() + 1)]


def _sorted_cluster_members(clusters, order: np.ndarray, n: int) -> list[np.ndarray] | None:
    """Each cluster's positions in priority order (None without clusters: patients resampled)."""
    if clusters is None:
        return None
    cl = np.asarray(clusters)
    if cl.shape != (n,):
        raise ValueError(f"clusters must have shape ({n},); got {cl.shape}")
    return _cluster_members(cl[order])


def _bootstrap_positions(rng, n: int, members: list[np.ndarray] | None) -> np.ndarray:
    """Positions (in priority order) of one bootstrap draw, sorted so the order is kept."""
    if members is None:
        return np.sort(rng.integers(0, n, n))
    picked = rng.integers(0, len(members), len(members))
    return np.sort(np.concatenate([members[c] for c in picked]))


def rate(
    priorities,
    scores,
    *,
    kind: str = "autoc",
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    random_state: int | np.random.Generator | None = None,
    clusters=None,
) -> RateResult:
    """RATE (AUTOC or Qini) of a prioritization rule, with a bootstrap interval.

    ``priorities``: higher = treat first (held-out predicted CATE); ``scores``: doubly robust
    scores Gamma_i; ``clusters``: optional ids, resampled whole (e.g. patients of one centre).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be an integer >= 2; got {n_bootstrap!r}")
    p, s = _check_inputs(priorities, scores)
    n = s.shape[0]
    order = np.argsort(-p, kind="stable")
    s_sorted, group = _sorted_with_ties(p, s)
    toc = _toc_from_sorted(s_sorted, group)
    estimate = _rate_from_toc(toc, kind)

    members = _sorted_cluster_members(clusters, order, n)
    rng = np.random.default_rng(random_state)
    boot = np.empty(int(n_bootstrap))
    for b in range(int(n_bootstrap)):
        pos = _bootstrap_positions(rng, n, members)
        # regroup the ties of the resample (group ids stay non-decreasing along pos)
        boot[b] = _rate_from_toc(_toc_from_sorted(s_sorted[pos], group[pos]), kind)
    se = float(np.std(boot, ddof=1))
    z = float(stats.norm.ppf(1 - alpha / 2))
    p_value = float(2 * stats.norm.sf(abs(estimate) / se)) if se > 0 else float("nan")
    return RateResult(
        estimate=estimate,
        std_err=se,
        lower=estimate - z * se,
        upper=estimate + z * se,
        kind=kind,
        n=n,
        p_value=p_value,
        alpha=alpha,
        n_bootstrap=int(n_bootstrap),
        toc_q=np.arange(1, n + 1) / n,
        toc=toc,
    )


@dataclass(frozen=True, eq=False)  # eq=False: array fields
class TocBand:
    """The TOC curve at fractions ``q`` with a pointwise bootstrap band.

    ``lower`` / ``upper`` are toc -/+ z * se, se the bootstrap standard deviation at each q (the
    same normal form as the RATE intervals); TOC(1) = 0 by construction, so its band is [0, 0].
    """

    q: np.ndarray
    toc: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    n_bootstrap: int


def _toc_at(toc: np.ndarray, q: np.ndarray) -> np.ndarray:
    """TOC at fractions q: the value using the top ceil(q m) of the m patients."""
    m = toc.shape[0]
    k = np.clip(np.ceil(q * m - 1e-9).astype(int), 1, m)
    return toc[k - 1]


def toc_band(
    priorities,
    scores,
    grid=None,
    *,
    n_bootstrap: int = 200,
    alpha: float = 0.05,
    random_state: int | np.random.Generator | None = None,
    clusters=None,
) -> TocBand:
    """TOC(q) on ``grid`` (default 0.05, 0.10, ..., 1.0) with a pointwise (1 - alpha) band.

    The bootstrap resamples patients (or whole clusters) with priorities held fixed, drawing the
    same resamples as ``rate`` with the same ``random_state``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be an integer >= 2; got {n_bootstrap!r}")
    p, s = _check_inputs(priorities, scores)
    n = s.shape[0]
    q = np.arange(1, 21) / 20 if grid is None else np.asarray(grid, dtype=float)
    if q.ndim != 1 or np.any(~np.isfinite(q)) or np.any((q <= 0) | (q > 1)):
        raise ValueError("grid must be a one-dimensional array of fractions in (0, 1]")
    order = np.argsort(-p, kind="stable")
    s_sorted, group = _sorted_with_ties(p, s)
    toc = _toc_at(_toc_from_sorted(s_sorted, group), q)
    members = _sorted_cluster_members(clusters, order, n)
    rng = np.random.default_rng(random_state)
    boot = np.empty((int(n_bootstrap), q.shape[0]))
    for b in range(int(n_bootstrap)):
        pos = _bootstrap_positions(rng, n, members)
        boot[b] = _toc_at(_toc_from_sorted(s_sorted[pos], group[pos]), q)
    se = np.std(boot, axis=0, ddof=1)
    z = float(stats.norm.ppf(1 - alpha / 2))
    return TocBand(q, toc, se, toc - z * se, toc + z * se, alpha, int(n_bootstrap))


# --------------------------------------------------------------------------------------------
# held-out priorities
# --------------------------------------------------------------------------------------------
def cross_fitted_priorities(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    X,
    n_folds: int = 5,
    random_state: int | None = None,
    stratify=None,
) -> np.ndarray:
    """Out-of-fold predictions: for each of K folds, ``fit_predict(train_idx, test_idx)`` fits on
    the other folds and returns predictions for ``test_idx``, so RATE is judged out of sample.

    ``X`` gives the number of rows (any array or frame); the callable closes over the data it needs.
    ``stratify``: optional labels (e.g. arm x outcome) each fold keeps in proportion, so every
    training half has both arms and some events.
    """
    n = len(X)
    if int(n_folds) != n_folds or n_folds < 2 or n_folds > n:
        raise ValueError(f"n_folds must be an integer in [2, {n}]; got {n_folds!r}")
    out = np.full(n, np.nan)
    rows = np.zeros((n, 1))
    if stratify is None:
        splits = KFold(n_splits=int(n_folds), shuffle=True, random_state=random_state).split(rows)
    else:
        labels = np.asarray(stratify)
        if labels.shape != (n,):
            raise ValueError(f"stratify must have shape ({n},); got {labels.shape}")
        folds = StratifiedKFold(n_splits=int(n_folds), shuffle=True, random_state=random_state)
        splits = folds.split(rows, labels)
    for train, test in splits:
        pred = np.asarray(fit_predict(train, test), dtype=float).reshape(-1)
        if pred.shape[0] != test.shape[0]:
            raise ValueError(
                f"fit_predict must return {test.shape[0]} predictions for the held-out fold; "
                f"got {pred.shape[0]}"
            )
        out[test] = pred
    return out
