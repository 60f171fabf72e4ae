"""CRS effect: per-patient risk difference P(CRS | x, CAR-T) - P(CRS | x, tec) by a causal forest.

The forest solves the residual-on-residual moment of a causal forest, E[(y - m(x) - theta(x)
(w - e(x))) (w - e(x)) | x] = 0, with cross-fitted nuisances: the propensity e(x) and the mean
outcome m(x) = e(x) mu1(x) + (1 - e(x)) mu0(x) from the arm risks. Two engines grow it:

* ``"histogram"`` (default): hte's honest GRF builder (``hte.estimators.histogram_grf``) on the
  analysis's shared nuisances when the pipeline hands them over (the propensity and the boosted
  arm risks every AIPW estimate of CRS uses), or the same nuisances cross-fitted here;
* ``"econml"``: econml's ``CausalForestDML`` with random-forest classifier nuisances (the engine
  before; its final forest also fits a local intercept).

Both give bootstrap-of-little-bags intervals. ``outcome="crs_g3"`` estimates the effect on grade
>= 3 CRS from ``crs_grade``; rows without a recorded grade are excluded from that outcome, counted
and warned about, never silently dropped.
"""

from __future__ import annotations

import time as _time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedKFold

from hte.array_checks import check_new_covariates
from hte.design.effect_data import unpack_crs_fit
from hte.design.propensity import cross_fit_propensity
from hte.estimators.crs_outcomes import crs_fit_inputs
from hte.estimators.histogram_grf import HistogramMomentForest
from hte.estimators.nuisance import dr_scores
from hte.estimators.result import IntervalEstimateMixin
from hte.estimators.serial_prediction import predict_in_one_thread
from hte.estimators.shared_nuisances import check_crs_nuisances, cross_fit_arm_risks

FOREST_ENGINES = ("histogram", "econml")


def default_nuisance_classifier(random_state: int | None = None, n_jobs: int | None = 2):
    """Random forest classifier used for both nuisances (outcome and propensity).

    Chosen in a measured comparison against logistic regression and histogram gradient boosting
    (n = 2,000, linear and non-linear logistic designs): similar CATE error, forest robust to
    non-linear nuisances, and faster than gradient boosting under 5-fold cross-fitting.
    """
    return RandomForestClassifier(
        n_estimators=100, min_samples_leaf=20, n_jobs=n_jobs, random_state=random_state
    )


class CRSCausalForest(IntervalEstimateMixin, BaseEstimator):
    """Causal forest for the CRS risk difference of CAR-T vs teclistamab per patient.

    ``fit(X, crs, treatment, crs_grade=None, nuisances=None)``. ``outcome="crs"`` uses any-grade
    CRS; ``"crs_g3"`` uses ``crs_grade >= 3`` on rows with a grade
    (``n_excluded_missing_grade_``). ``forest_engine``: ``"histogram"`` (default) or
    ``"econml"`` (module docstring). Nuisances: with ``model_y``/``model_t`` left None, the
    histogram engine cross-fits the design's propensity learner and the boosted arm risks of
    ``hte.estimators.shared_nuisances`` over ``cv`` folds (or reads the analysis's shared ones),
    the econml engine :func:`default_nuisance_classifier`; a classifier given for ``model_y``
    (of y on x) or ``model_t`` (of w on x) is cross-fitted instead by either engine. The final
    forest is honest, and ``predict_interval`` gives bootstrap-of-little-bags intervals.
    """

    def __init__(
        self,
        outcome: str = "crs",
        *,
        model_y=None,
        model_t=None,
        cv: int = 5,
        n_estimators: int = 500,
        min_samples_leaf: int = 10,
        max_samples: float | int = 0.45,
        honest: bool = True,
        forest_engine: str = "histogram",
        propensity_clip: float = 0.01,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ) -> None:
        self.outcome = outcome
        self.model_y = model_y
        self.model_t = model_t
        self.cv = cv
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.honest = honest
        self.forest_engine = forest_engine
        self.propensity_clip = propensity_clip
        self.n_jobs = n_jobs
        self.random_state = random_state

    @property
    def uses_default_nuisances(self) -> bool:
        """Whether the analysis's shared CRS nuisances are the ones this forest would cross-fit
        itself (histogram engine, default learners; seed and folds are checked by them)."""
        return self.forest_engine == "histogram" and self.model_y is None and self.model_t is None

    @property
    def nuisance_folds(self) -> int:
        """The cross-fitting folds of this forest's nuisances (``cv``)."""
        return self.cv

    def _nuisance(self, model):
        # One thread for the default nuisance forests whatever n_jobs says: a threaded forest sums
        # its trees' probabilities in completion order, and the last-bit differences that leaves
        # can flip a split of the final forest, so two runs of one config would differ.
        if model is None:
            return default_nuisance_classifier(self.random_state, n_jobs=1)
        return clone(model)

    def _check_params(self) -> None:
        if self.forest_engine not in FOREST_ENGINES:
            raise ValueError(
                f"forest_engine must be one of {FOREST_ENGINES}; got {self.forest_engine!r}"
            )
        if self.n_estimators % 4:
            raise ValueError(f"n_estimators must be a multiple of 4; got {self.n_estimators}")
        if not 0.0 < self.propensity_clip < 0.5:
            raise ValueError(f"propensity_clip must be in (0, 0.5); got {self.propensity_clip}")

    def fit(self, X, crs=None, treatment=None, *, crs_grade=None, nuisances=None):
        """Fit on covariates X, any-grade ``crs`` (0/1), ``treatment`` (1 = CAR-T) and, for
        ``outcome="crs_g3"``, ``crs_grade``; or an ``EffectData`` as X. ``nuisances``: the
        analysis's shared ``Nuisances`` (histogram engine with default learners only)."""
        self._check_params()
        row_ids = getattr(X, "row_ids", None)
        X, crs, treatment, crs_grade, weights = unpack_crs_fit(X, crs, treatment, crs_grade)
        if weights is not None:
            raise ValueError("CRSCausalForest does not take weights")
        if nuisances is not None:
            check_crs_nuisances(self, nuisances, treatment, row_ids)
        Xa, names, w, y, keep = crs_fit_inputs(X, crs, treatment, crs_grade, self.outcome)
        self.n_excluded_missing_grade_ = int((~keep).sum())
        self.n_features_in_ = Xa.shape[1]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_fit_ = int(keep.sum())
        start = _time.perf_counter()
        if self.forest_engine == "econml":
            self._fit_econml(Xa, w, y)
        else:
            self._fit_histogram(Xa, w, y, keep, nuisances)
        self.fit_seconds_ = _time.perf_counter() - start
        return self

    def _fit_econml(self, Xa, w, y) -> None:
        from econml.dml import CausalForestDML  # only for this engine (econml: ~0.5 s to import)

        self.model_ = CausalForestDML(
            model_y=self._nuisance(self.model_y),
            model_t=self._nuisance(self.model_t),
            discrete_treatment=True,
            discrete_outcome=True,
            cv=self.cv,
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_samples=self.max_samples,
            honest=self.honest,
            inference=True,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            self.model_.fit(y, w, X=Xa)
        predict_in_one_thread(self.model_.model_cate)  # same numbers on every call

    def _fit_histogram(self, Xa, w, y, keep, nuisances) -> None:
        if nuisances is not None:
            risks = nuisances.arm_risks(self.outcome)
            e, arms = nuisances.propensity[keep], (risks.mu1, risks.mu0)
        else:
            e, arms = self._cross_fit_nuisances(Xa, w, y)
        e = np.clip(e, self.propensity_clip, 1.0 - self.propensity_clip)
        self.shared_nuisances_used_ = nuisances is not None
        if isinstance(arms, tuple):  # arm risks: m(x) from them, and AIPW scores
            mu1, mu0 = arms
            m = e * mu1 + (1.0 - e) * mu0
            self.training_scores_ = {"e": e, "mu1": mu1, "mu0": mu0, "pseudo_outcome": y, "W": w}
        else:  # model_y's mean outcome m(x)
            m = arms
        w_res, y_res = w - e, y - m
        n = Xa.shape[0]
        self.model_ = HistogramMomentForest(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_samples=_rows_per_tree(self.max_samples, n),
            honest=self.honest,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        ).fit(Xa, w_res * w_res, y_res * w_res)

    def _cross_fit_nuisances(self, Xa, w, y) -> tuple:
        """Out-of-fold e(x) and either the arm risks ``(mu1, mu0)`` (default: the design's
        propensity learner and the boosted arm risks, as the shared nuisances) or, with
        ``model_y``, the mean outcome m(x) from it (``model_t``, when given, gives e)."""
        learner_t = None if self.model_t is None else clone(self.model_t)
        e = cross_fit_propensity(
            Xa, w, learner=learner_t, n_folds=self.cv, random_state=self.random_state
        )
        if self.model_y is None:
            return e, cross_fit_arm_risks(Xa, w, y, self.random_state, n_folds=self.cv)
        return e, cross_fit_mean_outcome(self.model_y, Xa, y, self.cv, self.random_state)

    def get_scores(self) -> np.ndarray:
        """AIPW scores of the training patients from the nuisances the histogram forest used
        (as grf's get_scores)."""
        if not hasattr(self, "training_scores_"):
            raise RuntimeError("get_scores needs a histogram-engine fit with default model_y")
        return dr_scores(self.training_scores_)

    def _check_X(self, X) -> np.ndarray:
        return check_new_covariates(self, X, fitted_attribute="model_")

    def predict(self, X) -> np.ndarray:
        """Risk difference P(CRS | x, CAR-T) - P(CRS | x, tec) per row: (n,)."""
        Xa = self._check_X(X)
        if isinstance(self.model_, HistogramMomentForest):
            return self.model_.predict(Xa).ravel()
        return np.ravel(self.model_.effect(Xa))

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise (1 - alpha) confidence interval of the risk difference."""
        Xa = self._check_X(X)
        if isinstance(self.model_, HistogramMomentForest):
            _, lo, hi = self.model_.predict(Xa, interval=True, alpha=alpha)
        else:
            lo, hi = self.model_.effect_interval(Xa, alpha=alpha)
        return np.ravel(lo), np.ravel(hi)

    def _estimate_labels(self) -> tuple[str, float | None, str]:
        return self.outcome, None, "CRSCausalForest"


def _rows_per_tree(max_samples: float | int, n: int) -> int:
    """Rows per tree from a fraction of n (or a count, as econml takes), within a half-sample."""
    size = max_samples if isinstance(max_samples, int) else int(max_samples * n)
    return max(2, min(int(size), n // 2))


def cross_fit_mean_outcome(model, X: np.ndarray, y: np.ndarray, n_folds: int, seed) -> np.ndarray:
    """Out-of-fold P(y = 1 | x) from a classifier (folds stratified by y)."""
    out = np.empty(X.shape[0])
    folds = StratifiedKFold(n_splits=int(n_folds), shuffle=True, random_state=seed)
    for train, test in folds.split(X, y):
        fitted = clone(model).fit(X[train], y[train])
        out[test] = fitted.predict_proba(X[test])[:, list(fitted.classes_).index(1)]
    return out
