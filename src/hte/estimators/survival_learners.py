"""Survival learners on a time grid: one interface, ``fit(X, W, risk_set, grid)`` -> ``predict(X, W)``.

``predict`` returns S(g_k | x, w) for every grid point. The learners are named in LEARNERS:

* ``"hazard_gbm"``: discrete-time hazard, a gradient-boosting classifier (LightGBM) on the
  person-period table (one row per patient and grid cell at risk; features x, w, t).
* ``"rsf"``: scikit-survival's random survival forest on (x, w), read off on the grid.
* ``"km"``: Kaplan-Meier within each arm, ignoring x (a reference for tests and a baseline).

``hte.estimators.nuisance`` cross-fits them for the event and the censoring time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lightgbm import LGBMClassifier
from sklearn.base import clone

LEARNERS = ("hazard_gbm", "rsf", "km")


@dataclass(frozen=True)
class RiskSet:
    """What a hazard learner needs about each patient, for one event type on the grid.

    ``cell``: last grid cell; ``label``: the event happened in it; ``last_weight``: exposure in the
    last cell (1 for the event itself and for patients followed past it; the fraction of the cell
    lived for a competing exit inside it; 0 for a death tied with a censoring at a grid time in the
    censoring model, since deaths come first); ``time``: follow-up truncated at the horizon (deaths
    moved a hair earlier in the censoring model, to break ties the same way), for learners working
    in continuous time.
    """

    cell: np.ndarray
    label: np.ndarray
    last_weight: np.ndarray
    time: np.ndarray


def _person_period(rs: RiskSet, grid, X, W):
    """Long table of (x, w, t) rows for each cell at risk, label and exposure weight."""
    at_last = rs.last_weight > 0
    n_rows_each = rs.cell + at_last.astype(int)
    idx = np.repeat(np.arange(rs.cell.size), n_rows_each)
    starts = np.cumsum(n_rows_each) - n_rows_each
    k = np.arange(idx.size) - np.repeat(starts, n_rows_each)
    is_last = k == rs.cell[idx]
    label = is_last & rs.label[idx]
    weight = np.where(is_last, rs.last_weight[idx], 1.0)
    features = np.column_stack([X[idx], W[idx], grid[k]])
    return features, label.astype(int), weight


def _survival_from_hazard(hazard: np.ndarray) -> np.ndarray:
    return np.cumprod(1.0 - np.clip(hazard, 0.0, 1.0), axis=1)


# --------------------------------------------------------------------------------------------
# learners
# --------------------------------------------------------------------------------------------


def default_hazard_learner() -> LGBMClassifier:
    """Shallow boosting for the discrete-time hazard (depth 3, 100 rounds at 0.1, leaves >= 40,
    63 bins per feature).

    LightGBM, one thread, deterministic. Why not scikit-learn's HistGradientBoosting with the same
    settings: with the person-period exposure weights it bins every feature through weighted
    percentiles, and one fit on the 20,000-row table of n = 2,000 cost about 10x LightGBM's CPU
    time. 63 bins rather than 255: the better held-out log-loss of the two, and the causal
    survival forest's Cui et al. benchmark unchanged (docs/learner_speed.md).
    """
    return LGBMClassifier(
        max_depth=3,
        num_leaves=8,
        learning_rate=0.1,
        n_estimators=100,
        min_child_samples=40,
        reg_lambda=1.0,
        max_bin=63,
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
        verbose=-1,
    )


class _HazardBoosting:
    """Discrete-time hazard P(event in cell k | at risk in k, x, w) by boosting on person-periods."""

    def __init__(self, learner=None):
        self.learner = learner

    def fit(self, X, W, rs: RiskSet, grid):
        self.grid_ = grid
        self.constant_ = None
        if not rs.label.any():  # no events: hazard 0, survival 1
            self.constant_ = 0.0
            return self
        feats, y, weight = _person_period(rs, grid, X, W)
        learner = default_hazard_learner() if self.learner is None else self.learner
        self.model_ = clone(learner).fit(feats, y, sample_weight=weight)
        return self

    def predict(self, X, W) -> np.ndarray:
        n, K = X.shape[0], self.grid_.size
        if self.constant_ is not None:
            return np.ones((n, K))
        feats = np.column_stack([np.repeat(X, K, axis=0), np.repeat(W, K), np.tile(self.grid_, n)])
        hazard = self.model_.predict_proba(feats)[:, 1].reshape(n, K)
        return _survival_from_hazard(hazard)


class _SurvivalForest:
    """scikit-survival random survival forest on (x, w), read off as a step function on the grid."""

    def __init__(self, n_estimators=100, min_samples_leaf=15, max_features="sqrt", random_state=0):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def fit(self, X, W, rs: RiskSet, grid):
        from sksurv.ensemble import RandomSurvivalForest

        self.grid_ = grid
        self.constant_ = None
        if not rs.label.any():
            self.constant_ = 0.0
            return self
        y = np.empty(rs.time.size, dtype=[("event", bool), ("time", float)])
        y["event"], y["time"] = rs.label, rs.time
        self.model_ = RandomSurvivalForest(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            n_jobs=1,
            random_state=self.random_state,
        ).fit(np.column_stack([X, W]), y)
        return self

    def predict(self, X, W) -> np.ndarray:
        n, K = X.shape[0], self.grid_.size
        if self.constant_ is not None:
            return np.ones((n, K))
        surv = self.model_.predict_survival_function(np.column_stack([X, W]), return_array=True)
        pos = np.searchsorted(self.model_.unique_times_, self.grid_, side="right") - 1
        out = np.ones((n, K))
        ok = pos >= 0
        out[:, ok] = surv[:, pos[ok]]
        return out


class _KaplanMeier:
    """Kaplan-Meier within each arm on the grid (ignores x); exposure-weighted risk sets."""

    def fit(self, X, W, rs: RiskSet, grid):
        K = grid.size
        self.surv_ = {}
        for arm in (0, 1):
            s = W == arm
            # at risk in cell k: all whose last cell is after k, plus exposure of those ending in k
            ends = np.bincount(rs.cell[s], minlength=K)
            later = s.sum() - np.cumsum(ends)
            risk = later + np.bincount(rs.cell[s], weights=rs.last_weight[s], minlength=K)
            events = np.bincount(rs.cell[s & rs.label], minlength=K)
            hazard = np.divide(events, risk, out=np.zeros(K), where=risk > 0)
            self.surv_[arm] = np.cumprod(1.0 - hazard)
        return self

    def predict(self, X, W) -> np.ndarray:
        return np.where(np.asarray(W)[:, None] == 1, self.surv_[1], self.surv_[0])


def make_survival_learner(learner, random_state=None):
    """A survival learner from a name in LEARNERS or an estimator instance (used as the hazard model)."""
    if learner == "hazard_gbm":
        return _HazardBoosting()
    if learner == "rsf":
        return _SurvivalForest(random_state=random_state)
    if learner == "km":
        return _KaplanMeier()
    if isinstance(learner, str):
        raise ValueError(
            f"survival learner must be one of {LEARNERS} or a classifier; got {learner!r}"
        )
    return _HazardBoosting(learner)
