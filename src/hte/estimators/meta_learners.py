"""Survival T- and S-learners: counterfactual survival curves per arm from scikit-survival models.

T-learner: one survival model per arm; S_a(t|x) from the arm-a model. S-learner: one model on
(X, treatment) and, for Cox, treatment x covariate interactions; S_a(t|x) by setting treatment to a.
Effects (RMST difference or survival difference at a horizon) come from the models' step survival
functions (``predict_survival_function``), integrated exactly (``survival_curves``).
"""

from __future__ import annotations

import inspect

import numpy as np
from sksurv.ensemble import RandomSurvivalForest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from hte.estimators.boosted_cox import BoostedCoxSurvival
from hte.estimators.serial_prediction import predict_in_one_thread
from hte.estimators.survival_curves import CounterfactualSurvivalEstimator

BASE_LEARNERS = ("rsf", "gbsa", "cox")

# Defaults from a small measured comparison at n = 2,000 on 2 cores (exponential design, 4
# covariates): accuracy of the survival-difference CATE was flat across these settings, so the
# faster ones were kept (RSF ~1 s, GBSA ~2 s, Cox < 0.2 s per fit).
_DEFAULTS = {
    "rsf": dict(n_estimators=200, min_samples_leaf=20, max_features=0.5, max_samples=0.5),
    "gbsa": dict(
        n_estimators=100, learning_rate=0.1, max_depth=2, subsample=0.8, min_samples_leaf=10
    ),
    "cox": dict(alpha=1e-4, ties="efron"),
}
# "auto" time resolution (months): RSF stores a survival curve per node over all distinct times,
# so rounding follow-up up to ~1 week cuts its fit time and memory several-fold.
_AUTO_RESOLUTION = {"rsf": 0.25, "gbsa": None, "cox": None}
_CLASSES = {
    "rsf": RandomSurvivalForest,
    "gbsa": BoostedCoxSurvival,  # scikit-survival's GBSA without its per-stage loss values
    "cox": CoxPHSurvivalAnalysis,
}
_MANAGED = {"self", "random_state", "n_jobs"}  # set by the estimator, never by base_params


def make_base_learner(name: str, params: dict | None, random_state: int | None, n_jobs: int | None):
    """A scikit-survival model by short name with this module's defaults, overridden by params."""
    if name not in BASE_LEARNERS:
        raise ValueError(f"base_learner must be one of {BASE_LEARNERS}; got {name!r}")
    _check_base_params(name, params or {})
    kwargs = {**_DEFAULTS[name], **(params or {})}
    if name == "rsf":
        return RandomSurvivalForest(random_state=random_state, n_jobs=n_jobs, **kwargs)
    if name == "gbsa":
        return BoostedCoxSurvival(random_state=random_state, **kwargs)
    return CoxPHSurvivalAnalysis(**kwargs)


def _check_base_params(name: str, params: dict) -> None:
    """``base_params`` must be constructor parameters of the base learner (random_state and n_jobs
    come from the estimator), so a typo is a clear error, not a TypeError deep in a fit."""
    cls = _CLASSES[name]
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in _MANAGED]
    unknown = [str(k) for k in params if k not in allowed]
    if unknown:
        raise ValueError(
            f"base_params {', '.join(map(repr, unknown))} not accepted by {cls.__name__} "
            f"(base_learner {name!r}); it takes {', '.join(allowed)}"
            + ("; random_state and n_jobs are set by hte" if set(unknown) & _MANAGED else "")
        )


def coarsen_times(time: np.ndarray, resolution: float | None) -> np.ndarray:
    """Round follow-up times up to multiples of ``resolution`` (None: unchanged)."""
    if resolution is None:
        return time
    if not resolution > 0:
        raise ValueError(f"time_resolution must be > 0, None or 'auto'; got {resolution}")
    return np.ceil(time / resolution - 1e-9) * resolution


def _steps(model, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = model.predict_survival_function(Z, return_array=True)
    return np.asarray(model.unique_times_, dtype=float), values


class _SurvivalMetaLearner(CounterfactualSurvivalEstimator):
    def __init__(
        self,
        base_learner: str = "cox",
        *,
        target: str = "rmst",
        horizon: float | None = None,
        base_params: dict | None = None,
        time_resolution: float | str | None = "auto",
        n_bootstrap: int = 0,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            target=target, horizon=horizon, n_bootstrap=n_bootstrap, random_state=random_state
        )
        self.base_learner = base_learner
        self.base_params = base_params
        self.time_resolution = time_resolution
        self.n_jobs = n_jobs

    def _resolution(self) -> float | None:
        if self.time_resolution == "auto":
            return _AUTO_RESOLUTION.get(self.base_learner)
        return self.time_resolution

    def _new_model(self, seed: int):
        return make_base_learner(self.base_learner, self.base_params, seed, self.n_jobs)

    @staticmethod
    def _fitted(model):
        """A fitted base learner that predicts in one thread: a random survival forest sums its
        trees in ``n_jobs`` threads in whatever order they finish, so two predictions of the
        same rows differed in the last bits (up to 1e-14 months of RMST)."""
        predict_in_one_thread(model)
        return model

    def _outcome(self, time, event):
        return Surv.from_arrays(event=event, time=coarsen_times(time, self._resolution()))


class TLearnerSurvival(_SurvivalMetaLearner):
    """T-learner: a separate survival model per arm (``base_learner`` "rsf" | "gbsa" | "cox").

    ``fit(X, time, event, treatment)``; ``predict(X)`` gives the RMST difference (``target="rmst"``,
    default horizon 24 months) or the survival difference at the horizon (``target="survival"``,
    default 12 months), CAR-T minus teclistamab. Intervals come from a stratified bootstrap when
    ``n_bootstrap > 0``; with the default ``n_bootstrap=0`` they are NaN. ``time_resolution``
    rounds follow-up up to that many months before fitting ("auto": 0.25 for RSF, exact otherwise).
    ``base_params`` override the defaults in ``_DEFAULTS``; ``n_jobs`` reaches RSF only (GBSA and
    Cox are single-threaded).
    """

    def _fit_state(self, X, time, event, treatment, sample_weight, seed):
        y = self._outcome(time, event)
        models = {}
        for arm in (1, 0):
            rows = treatment == arm
            models[arm] = self._fitted(self._new_model(seed + arm).fit(X[rows], y[rows]))
        return models

    def _arm_steps(self, state, X):
        return _steps(state[1], X), _steps(state[0], X)


class SLearnerSurvival(_SurvivalMetaLearner):
    """S-learner: one survival model on (X, treatment); counterfactuals by setting treatment.

    For ``base_learner="cox"`` the features also include treatment x covariate interactions
    (``interactions=True``, default), without which a Cox S-learner gives every patient the same
    hazard ratio. Tree learners ("rsf", "gbsa") take treatment as one more feature and find
    interactions themselves (``interactions`` is ignored for them). Intervals as in the T-learner.
    """

    def __init__(
        self,
        base_learner: str = "cox",
        *,
        target: str = "rmst",
        horizon: float | None = None,
        base_params: dict | None = None,
        interactions: bool = True,
        time_resolution: float | str | None = "auto",
        n_bootstrap: int = 0,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            base_learner,
            target=target,
            horizon=horizon,
            base_params=base_params,
            time_resolution=time_resolution,
            n_bootstrap=n_bootstrap,
            n_jobs=n_jobs,
            random_state=random_state,
        )
        self.interactions = interactions

    def _features(self, X: np.ndarray, treatment: np.ndarray) -> np.ndarray:
        w = treatment.reshape(-1, 1).astype(float)
        if self.base_learner == "cox" and self.interactions:
            return np.hstack([X, w, w * X])
        return np.hstack([X, w])

    def _fit_state(self, X, time, event, treatment, sample_weight, seed):
        model = self._new_model(seed).fit(self._features(X, treatment), self._outcome(time, event))
        return self._fitted(model)

    def _arm_steps(self, state, X):
        ones = np.ones(X.shape[0], dtype=int)
        return _steps(state, self._features(X, ones)), _steps(state, self._features(X, 0 * ones))
