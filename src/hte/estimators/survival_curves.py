"""Step survival functions: evaluation on a grid, value at a horizon, exact RMST, and a shared base
for estimators that produce counterfactual survival curves per arm.

A fitted survival model gives, per patient, survival values ``S[i, j]`` at increasing knots ``t_j``
(event or follow-up times). The curve is a right-continuous step function: 1 before the first knot,
``S[i, j]`` on ``[t_j, t_{j+1})`` and held at its last value afterwards. RMST up to a horizon is the
exact area under that step function, so no quadrature error enters effect estimates.
"""

from __future__ import annotations

import copy as _copy
import time as _time

import numpy as np
from sklearn.base import BaseEstimator

from hte.array_checks import (
    check_covariates,
    check_new_covariates,
    check_survival_outcome,
    check_treatment,
)
from hte.design.effect_data import unpack_survival_fit
from hte.estimators.result import EffectEstimate, SurvivalCurves
from hte.vocabulary import OS_TARGETS

SURVIVAL_TARGETS = OS_TARGETS  # the survival targets of hte.vocabulary
# months, as configs/default.yaml (docs/methods.md, "Estimands")
DEFAULT_HORIZON = {"survival": 12.0, "rmst": 24.0}


def _check_knots(knots: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    knots = np.asarray(knots, dtype=float)
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if knots.ndim != 1 or values.shape[1] != knots.shape[0]:
        raise ValueError(
            f"survival values must have one column per knot: knots {knots.shape}, "
            f"values {values.shape}"
        )
    if knots.size > 1 and np.any(np.diff(knots) <= 0):
        raise ValueError("knots must be strictly increasing")
    return knots, values


def evaluate_step(knots, values, grid) -> np.ndarray:
    """Step survival functions evaluated at ``grid``: (n, len(grid)); 1 before the first knot."""
    knots, values = _check_knots(knots, values)
    grid = np.atleast_1d(np.asarray(grid, dtype=float))
    idx = np.searchsorted(knots, grid, side="right") - 1
    out = np.ones((values.shape[0], grid.size))
    inside = idx >= 0
    out[:, inside] = values[:, idx[inside]]
    return out


def survival_at(knots, values, horizon: float) -> np.ndarray:
    """S(horizon) per row of ``values``: (n,)."""
    return evaluate_step(knots, values, [horizon])[:, 0]


def restricted_mean(knots, values, horizon: float) -> np.ndarray:
    """Exact RMST, the integral of the step function from 0 to ``horizon``, per row: (n,)."""
    if horizon <= 0:
        raise ValueError(f"horizon must be > 0; got {horizon}")
    knots, values = _check_knots(knots, values)
    before = knots < horizon
    edges = np.concatenate([[0.0], knots[before], [horizon]])
    widths = np.diff(edges)
    # value 1 on [0, t_1), then S_j on [t_j, t_{j+1}) clipped at the horizon
    levels = np.concatenate([np.ones((values.shape[0], 1)), values[:, before]], axis=1)
    return levels @ widths


def check_horizon_per_arm(time: np.ndarray, treatment: np.ndarray, horizon: float) -> None:
    """Reject a horizon beyond the longest follow-up of either arm: curves there are extrapolated."""
    check_horizon_within(longest_follow_up(time, treatment), horizon)


def longest_follow_up(time: np.ndarray, treatment: np.ndarray) -> dict[int, float]:
    """The longest follow-up of each arm (1 = CAR-T, 0 = teclistamab)."""
    return {arm: float(time[treatment == arm].max()) for arm in (1, 0)}


def check_horizon_within(longest: dict[int, float], horizon: float) -> None:
    """``check_horizon_per_arm`` from each arm's longest follow-up."""
    for arm, name in ((1, "CAR-T (1)"), (0, "teclistamab (0)")):
        if horizon > longest[arm]:
            raise ValueError(
                f"horizon {horizon} is beyond the longest follow-up in the {name} arm "
                f"({longest[arm]:.2f}); choose a horizon within follow-up of both arms"
            )


def stratified_bootstrap(treatment: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row indices resampled with replacement within each arm, so both arms keep their size."""
    parts = []
    for arm in (0, 1):
        rows = np.flatnonzero(treatment == arm)
        parts.append(rng.choice(rows, size=rows.size, replace=True))
    return np.sort(np.concatenate(parts))


class CounterfactualSurvivalEstimator(BaseEstimator):
    """Base for survival estimators that give S_cart(t|x) and S_tec(t|x) as step functions.

    Subclasses implement ``_fit_state`` (fit on one data set, return any fitted state) and
    ``_arm_steps`` (state, X -> knots and values per arm). This base does validation, the effect
    at the target/horizon, curves on a grid, and optional bootstrap intervals: with
    ``n_bootstrap = 0`` intervals are NaN (the point estimators themselves offer none).
    """

    def __init__(
        self,
        *,
        target: str = "rmst",
        horizon: float | None = None,
        n_bootstrap: int = 0,
        random_state: int | None = None,
    ) -> None:
        self.target = target
        self.horizon = horizon
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def point_only_params(self) -> dict:
        """Settings of a copy fitted for point effects only (held-out refits): no bootstrap
        refits, which serve the intervals alone."""
        return {"n_bootstrap": 0}

    # --- to implement -------------------------------------------------------------------------
    def _fit_state(self, X, time, event, treatment, sample_weight, seed):
        """Fit on one data set; return the fitted state (models)."""
        raise NotImplementedError

    def _arm_steps(self, state, X):
        """Return ((knots_cart, S_cart), (knots_tec, S_tec)) for rows of X."""
        raise NotImplementedError

    _allow_nan = False
    _supports_weights = False

    # --- fitting ------------------------------------------------------------------------------
    def _resolved_horizon(self) -> float:
        if self.target not in SURVIVAL_TARGETS:
            raise ValueError(f"target must be one of {SURVIVAL_TARGETS}; got {self.target!r}")
        horizon = DEFAULT_HORIZON[self.target] if self.horizon is None else float(self.horizon)
        if not horizon > 0:
            raise ValueError(f"horizon must be > 0; got {self.horizon}")
        return horizon

    def fit(self, X, time=None, event=None, treatment=None, sample_weight=None):
        """Fit on covariates X, follow-up ``time`` (months), ``event`` (1 = death), ``treatment``
        (or an ``EffectData`` as X, its weights as ``sample_weight``)."""
        X, time, event, treatment, sample_weight = unpack_survival_fit(
            X, time, event, treatment, sample_weight
        )
        horizon = self._resolved_horizon()
        if int(self.n_bootstrap) < 0:
            raise ValueError(f"n_bootstrap must be >= 0; got {self.n_bootstrap}")
        Xa, names = check_covariates(X, allow_nan=self._allow_nan)
        n = Xa.shape[0]
        w = check_treatment(treatment, n)
        t, d = check_survival_outcome(time, event, n, horizon=horizon)
        self.longest_follow_up_ = longest_follow_up(t, w)
        check_horizon_within(self.longest_follow_up_, horizon)
        for arm, name in ((1, "CAR-T (1)"), (0, "teclistamab (0)")):
            if not d[w == arm].any():
                raise ValueError(
                    f"no events in the {name} arm: its survival curve is not estimable"
                )
        sw = self._check_weights(sample_weight, n)
        self.horizon_ = horizon
        self.n_features_in_ = Xa.shape[1]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.max_time_ = float(t.max())
        rng = np.random.default_rng(self.random_state)
        start = _time.perf_counter()
        self.state_ = self._fit_state(Xa, t, d, w, sw, int(rng.integers(2**31 - 1)))
        self.fit_seconds_ = _time.perf_counter() - start  # point fit only, not the bootstrap
        self.bootstrap_states_ = []
        for _ in range(int(self.n_bootstrap)):
            rows = stratified_bootstrap(w, rng)
            sw_b = None if sw is None else sw[rows]
            self.bootstrap_states_.append(
                self._fit_state(
                    Xa[rows], t[rows], d[rows], w[rows], sw_b, int(rng.integers(2**31 - 1))
                )
            )
        return self

    def for_target(self, target: str, horizon: float | None = None):
        """This fitted model read for another target or horizon: the same fitted curves (its
        survival models do not depend on the target), so nothing is refitted; equal to a model
        fitted for that target with the same ``random_state``. The horizon must lie within each
        arm's follow-up, as ``fit`` asks."""
        if not hasattr(self, "longest_follow_up_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")
        copy = _copy.copy(self)
        copy.target, copy.horizon = target, horizon
        resolved = copy._resolved_horizon()
        check_horizon_within(self.longest_follow_up_, resolved)
        copy.horizon_ = resolved
        return copy

    def _check_weights(self, sample_weight, n: int) -> np.ndarray | None:
        if sample_weight is None:
            return None
        if not self._supports_weights:
            raise ValueError(f"{type(self).__name__} does not take sample_weight")
        sw = np.asarray(sample_weight, dtype=float)
        if sw.shape != (n,) or not np.isfinite(sw).all() or (sw < 0).any() or sw.sum() <= 0:
            raise ValueError(
                f"sample_weight must be ({n},) finite, >= 0 and not all zero; got shape {sw.shape}"
            )
        return sw

    def _check_X(self, X) -> np.ndarray:
        return check_new_covariates(self, X, fitted_attribute="state_", allow_nan=self._allow_nan)

    # --- effects ------------------------------------------------------------------------------
    def _effect(self, state, Xa: np.ndarray) -> np.ndarray:
        (k1, s1), (k0, s0) = self._arm_steps(state, Xa)
        if self.target == "rmst":
            return restricted_mean(k1, s1, self.horizon_) - restricted_mean(k0, s0, self.horizon_)
        return survival_at(k1, s1, self.horizon_) - survival_at(k0, s0, self.horizon_)

    def predict(self, X) -> np.ndarray:
        """Per-patient effect of CAR-T vs teclistamab: RMST or survival difference at the horizon."""
        Xa = self._check_X(X)
        return self._effect(self.state_, Xa)

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Bootstrap percentile interval of the effect; NaN when ``n_bootstrap == 0``."""
        Xa = self._check_X(X)
        if not self.bootstrap_states_:
            nan = np.full(Xa.shape[0], np.nan)
            return nan, nan.copy()
        draws = np.stack([self._effect(s, Xa) for s in self.bootstrap_states_])
        return tuple(np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0))

    def predict_survival(self, X, times=None, alpha: float = 0.05) -> SurvivalCurves:
        """Counterfactual curves S_cart and S_tec on ``times`` (default: 100 points up to the
        longest follow-up), with bootstrap percentile bands when ``n_bootstrap > 0``.

        Curves are step functions held at their last value after the last fitted time: read
        nothing into times beyond follow-up."""
        Xa = self._check_X(X)
        grid = np.linspace(0.0, self.max_time_, 100) if times is None else np.asarray(times, float)
        if grid.ndim != 1 or np.any(np.diff(grid) <= 0) or (grid < 0).any():
            raise ValueError("times must be a 1-d increasing grid of values >= 0")
        (k1, s1), (k0, s0) = self._arm_steps(self.state_, Xa)
        bands = {}
        if self.bootstrap_states_:
            draws1, draws0 = [], []
            for state in self.bootstrap_states_:
                (b1, v1), (b0, v0) = self._arm_steps(state, Xa)
                draws1.append(evaluate_step(b1, v1, grid))
                draws0.append(evaluate_step(b0, v0, grid))
            q = [alpha / 2, 1 - alpha / 2]
            lo1, hi1 = np.quantile(np.stack(draws1), q, axis=0)
            lo0, hi0 = np.quantile(np.stack(draws0), q, axis=0)
            bands = dict(lower_cart=lo1, upper_cart=hi1, lower_tec=lo0, upper_tec=hi0)
        return SurvivalCurves(
            times=grid,
            surv_cart=evaluate_step(k1, s1, grid),
            surv_tec=evaluate_step(k0, s0, grid),
            **bands,
        )

    def estimate(self, X, alpha: float = 0.05, times=None) -> EffectEstimate:
        """Effect, (1 - alpha) interval (NaN without bootstrap) and counterfactual curves."""
        lo, hi = self.predict_interval(X, alpha)
        return EffectEstimate(
            effect=self.predict(X),
            lower=lo,
            upper=hi,
            target=self.target,
            horizon=self.horizon_,
            alpha=alpha,
            estimator=type(self).__name__,
            curves=self.predict_survival(X, times, alpha),
        )
