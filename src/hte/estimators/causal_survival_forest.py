"""Causal survival forest (Cui, Kosorok, Sverdrup, Wager & Zhu, JRSSB 2023) on econml's GRF base.

The forest solves, locally in x, the doubly robust censoring-adjusted moment (derived in
docs/methods.md, "The causal survival forest's score"):

    sum_i alpha_i(x) [A_i - theta(x) J_i] = 0,   A_i = (W_i - e_i)(Y*_i - m_i),   J_i = (W_i - e_i)^2

where Y* is the AIPCW pseudo-outcome of f(T) (``hte.estimators.nuisance.aipcw_pseudo_outcome``),
e the cross-fitted propensity, m(x) = e mu_1 + (1 - e) mu_0 read off the cross-fitted event
survival. econml's ``BaseGRF`` takes per-sample A (``alpha``) and J (``pointJ``); with
``criterion="het"`` its split search regresses the GRF gradient pseudo-outcomes
rho_i = -J(P)^{-1}(J_i theta(P) - A_i) of the parent node, as grf does for this forest. Honest trees,
subsampling and the bootstrap of little bags give the confidence intervals. The trees are grown
by ``hte.estimators.histogram_grf`` (the same recipe on binned features; the forest 5-11x faster) unless
``forest_engine="econml"`` asks for econml's own tree builder.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator

from hte.array_checks import (
    check_covariates,
    check_new_covariates,
    check_survival_outcome,
    check_treatment,
)
from hte.design.effect_data import EffectData, unpack_survival_fit
from hte.estimators.histogram_grf import HistogramMomentForest
from hte.estimators.nuisance import (
    TARGETS,
    SurvivalNuisances,
    aipw_average,
    cross_fit_pseudo_outcomes,
    dr_scores,
    nuisance_params,
    pseudo_outcomes_from_nuisances,
)
from hte.estimators.result import EffectEstimate
from hte.estimators.serial_prediction import predict_in_one_thread
from hte.estimators.shared_nuisances import Nuisances, shared_pseudo_outcomes

FOREST_ENGINES = ("histogram", "econml")


def __getattr__(name: str):
    """``_MomentForest``, the econml engine's forest before it moved to its own module: the
    name models saved by earlier runs were pickled under."""
    if name == "_MomentForest":
        from hte.estimators.econml_moment_forest import MomentForest

        return MomentForest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def grf_max_features(n_features: int) -> int:
    """grf's default number of candidate split variables: min(ceil(sqrt(p) + 20), p).

    All features up to p = 25; fewer for wide cohorts, where the split search over every feature
    dominates a tree's cost (``max_features="grf"``; not the default: with 38 noise covariates
    of 43 it was a little less accurate, docs/learner_speed.md).
    """
    return min(math.ceil(math.sqrt(n_features) + 20), n_features)


def csf_scores(X: np.ndarray, W: np.ndarray, time: np.ndarray, event: np.ndarray, **kw) -> dict:
    """Per-sample score pieces A = (W - e)(Y* - m) and J = (W - e)^2 (plus the nuisances).

    Keyword arguments are those of ``hte.estimators.nuisance.cross_fit_pseudo_outcomes``.
    """
    return _add_moment(cross_fit_pseudo_outcomes(X, W, time, event, **kw), W)


def _add_moment(out: dict, W: np.ndarray) -> dict:
    resid = W - out["e"]
    out["A"] = resid * (out["pseudo_outcome"] - out["m"])
    out["J"] = resid**2
    return out


class CausalSurvivalForest(BaseEstimator):
    """Heterogeneous effect of treatment (1) vs control (0) on RMST or survival at ``horizon``.

    Parameters (defaults chosen on the Cui et al. 2023 designs, see benchmarks/bench_csf.py):
    target : "rmst" (E[min(T,h)] difference) or "survival" (P(T > h) difference).
    horizon : h, in the time unit of ``time``; must lie within follow-up.
    n_estimators, min_samples_leaf, max_samples, max_features, min_balancedness_tol, honest,
    subforest_size, criterion : GRF tree settings (``subforest_size`` trees per little bag;
        ``criterion`` only for ``forest_engine="econml"``: the histogram engine splits as "het").
        ``max_features``: None (default) tries every feature at each split, an int that many,
        ``"grf"`` grf's min(ceil(sqrt(p) + 20), p) (all up to p = 25): 30% less forest CPU at
        p = 43 but a little less accurate with many noise covariates (docs/learner_speed.md).
    forest_engine : "histogram" (default; ``hte.estimators.histogram_grf``: features binned once,
        256 to 4,096 bins; same accuracy on the Cui et al. designs for far less time) or "econml"
        (econml's ``BaseGRF`` with exact thresholds, the engine before 2026-12-07).
    local_linear : None (default) or a ridge penalty: the forest's weights with the effect linear
        in the standardized covariates around each x (``hte.estimators.histogram_local_linear``;
        histogram engine only). ``local_linear_variables``: slopes on only that many covariates,
        those the forest split on most (None: all).
    grid_size : time-grid points for the survival nuisances (None = every distinct time).
    event_learner, censoring_learner : "hazard_gbm" (boosted discrete-time hazard), "rsf"
        (scikit-survival forest), "km" (per-arm Kaplan-Meier) or a classifier for the hazard.
    propensity_learner : classifier for e(x) (default: hte.design.propensity's).
    n_folds : cross-fitting folds of the nuisances.
    censoring_floor : C(t|x,w) is floored at this value before inverse weighting.
    propensity_clip : e(x) is clipped to [clip, 1 - clip].
    """

    def __init__(
        self,
        target: str = "rmst",
        horizon: float | None = None,
        *,
        n_estimators: int = 2000,
        min_samples_leaf: int = 15,
        max_samples: float = 0.5,
        max_features=None,
        min_balancedness_tol: float = 0.45,
        honest: bool = True,
        subforest_size: int = 4,
        criterion: str = "het",
        forest_engine: str = "histogram",
        local_linear: float | None = None,
        local_linear_variables: int | None = None,
        grid_size: int | None = 25,
        event_learner="hazard_gbm",
        censoring_learner="hazard_gbm",
        propensity_learner=None,
        n_folds: int = 5,
        censoring_floor: float = 0.05,
        propensity_clip: float = 0.01,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ):
        self.target = target
        self.horizon = horizon
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.max_features = max_features
        self.min_balancedness_tol = min_balancedness_tol
        self.honest = honest
        self.subforest_size = subforest_size
        self.criterion = criterion
        self.forest_engine = forest_engine
        self.local_linear = local_linear
        self.local_linear_variables = local_linear_variables
        self.grid_size = grid_size
        self.event_learner = event_learner
        self.censoring_learner = censoring_learner
        self.propensity_learner = propensity_learner
        self.n_folds = n_folds
        self.censoring_floor = censoring_floor
        self.propensity_clip = propensity_clip
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}; got {self.target!r}")
        if self.horizon is None:
            raise ValueError("horizon is required (e.g. horizon=24.0 for 24 months)")
        if self.forest_engine not in FOREST_ENGINES:
            raise ValueError(
                f"forest_engine must be one of {FOREST_ENGINES}; got {self.forest_engine!r}"
            )
        if self.local_linear is not None and self.forest_engine != "histogram":
            raise ValueError("local_linear needs forest_engine='histogram'")
        if not 0.0 <= self.censoring_floor < 1.0:
            raise ValueError(f"censoring_floor must be in [0, 1); got {self.censoring_floor}")

    def fit(
        self,
        X,
        *,
        time=None,
        event=None,
        treatment=None,
        propensity: np.ndarray | None = None,
        survival_nuisances: SurvivalNuisances | None = None,
        nuisances: Nuisances | None = None,
    ) -> CausalSurvivalForest:
        """Fit nuisances (cross-fitted) and the forest. X: an ``EffectData`` (then no arrays),
        or an array / DataFrame with ``time``, ``event`` and ``treatment`` (0/1).

        ``nuisances``: the analysis's shared cross-fitted nuisances (``fit_nuisances`` on the
        same patients, with this forest's nuisance settings and seed): read instead of
        cross-fitting again, with identical maths. ``propensity`` (n,) and
        ``survival_nuisances`` (curves on a grid ending at ``horizon``) may be supplied together
        instead: a diagnostic hook (oracle nuisances from a simulator), not for real data.
        """
        self._check_params()
        row_ids = X.row_ids if isinstance(X, EffectData) else None
        X, time, event, treatment, weights = unpack_survival_fit(X, time, event, treatment)
        if weights is not None:
            raise ValueError("CausalSurvivalForest does not take weights")
        arr, names = check_covariates(X)
        n = arr.shape[0]
        W = check_treatment(treatment, n)
        t, d = check_survival_outcome(time, event, n, float(self.horizon))
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = arr.shape[1]
        supplied = (propensity is not None, survival_nuisances is not None)
        if nuisances is not None:
            if any(supplied):
                raise ValueError("give nuisances or propensity/survival_nuisances, not both")
            scores = _add_moment(shared_pseudo_outcomes(self, nuisances, t, d, W, row_ids), W)
        elif any(supplied):
            scores = self._supplied_scores(t, d, W, propensity, survival_nuisances, supplied)
        else:
            scores = self._cross_fit_scores(arr, W, t, d)
        self.shared_nuisances_used_ = nuisances is not None
        self.grid_ = scores["grid"]
        self.nuisance_diagnostics_ = scores["diagnostics"]
        self.propensity_ = scores["e"]
        self.pseudo_outcome_ = scores["pseudo_outcome"]
        self.training_scores_ = {k: scores[k] for k in ("e", "mu1", "mu0", "pseudo_outcome")}
        self.training_scores_["W"] = W
        self.forest_ = self._make_forest(n, arr.shape[1]).fit(arr, scores["J"], scores["A"])
        predict_in_one_thread(self.forest_)  # same numbers on every call
        return self

    def get_scores(self) -> np.ndarray:
        """The doubly robust scores of the training patients the forest was fitted with (as
        grf's get_scores): Gamma_i = mu1 - mu0 + (W - e) / (e (1 - e)) (Y* - mu_W)."""
        if not hasattr(self, "forest_"):
            raise RuntimeError("CausalSurvivalForest is not fitted; call fit first")
        return dr_scores(self.training_scores_)

    def _supplied_scores(self, t, d, W, propensity, nuis, supplied) -> dict:
        if not all(supplied):
            raise ValueError("propensity and survival_nuisances must be supplied together")
        if not np.isclose(nuis.grid[-1], float(self.horizon)):
            raise ValueError(
                f"survival_nuisances.grid must end at horizon={self.horizon}; "
                f"it ends at {nuis.grid[-1]}"
            )
        out = pseudo_outcomes_from_nuisances(
            t, d, propensity, nuis, target=self.target, censoring_floor=self.censoring_floor
        )
        return _add_moment(out, W)

    def _cross_fit_scores(self, arr, W, t, d) -> dict:
        return csf_scores(
            arr, W, t, d, propensity_learner=self.propensity_learner, **nuisance_params(self)
        )

    def _make_forest(self, n: int, n_features: int):
        # econml needs each tree's subsample to fit in a half-sample (little bags); as a count
        # this also works for odd n
        max_samples = self.max_samples
        if isinstance(max_samples, float):
            max_samples = max(1, min(int(max_samples * n), n // 2))
        max_features = self.max_features
        if max_features == "grf":
            max_features = grf_max_features(n_features)
        shared = dict(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_samples=max_samples,
            max_features=max_features,
            min_balancedness_tol=self.min_balancedness_tol,
            subforest_size=self.subforest_size,
            honest=self.honest,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        if self.forest_engine == "histogram":
            return HistogramMomentForest(
                **shared,
                local_linear=self.local_linear,
                local_linear_variables=self.local_linear_variables,
            )
        from hte.estimators.econml_moment_forest import MomentForest  # econml: on demand

        return MomentForest(**shared, criterion=self.criterion, inference=True, fit_intercept=False)

    def _check_X(self, X) -> np.ndarray:
        return check_new_covariates(self, X, fitted_attribute="forest_")

    def predict(self, X) -> np.ndarray:
        """Estimated effect theta(x) for each row, shape (n,)."""
        arr = self._check_X(X)
        return self.forest_.predict(arr).ravel()

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise (1 - alpha) confidence interval (bootstrap of little bags), each (n,)."""
        arr = self._check_X(X)
        _, lo, hi = self.forest_.predict(arr, interval=True, alpha=alpha)
        return lo.ravel(), hi.ravel()

    def predict_stderr(self, X) -> np.ndarray:
        """Standard error of theta(x), shape (n,)."""
        arr = self._check_X(X)
        return self.forest_.prediction_stderr(arr).ravel()

    def estimate(self, X, alpha: float = 0.05) -> EffectEstimate:
        """Effects with intervals as the shared result type."""
        arr = self._check_X(X)
        point, lo, hi = self.forest_.predict(arr, interval=True, alpha=alpha)
        return EffectEstimate(
            effect=point.ravel(),
            lower=lo.ravel(),
            upper=hi.ravel(),
            target=self.target,
            horizon=float(self.horizon),
            alpha=alpha,
            estimator="causal_survival_forest",
        )

    def average_effect(self, alpha: float = 0.05) -> tuple[float, float, float]:
        """Doubly robust (AIPW) average effect over the training sample: (estimate, lower, upper).

        Uses the cross-fitted pieces: Gamma_i = mu1 - mu0 + W (Y* - mu1) / e - (1 - W)(Y* - mu0) / (1 - e).
        """
        return aipw_average(self.get_scores(), alpha)
