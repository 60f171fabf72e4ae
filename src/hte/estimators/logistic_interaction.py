"""Logistic regression of CRS with treatment x covariate interactions: a baseline beside
published analyses; the CRS risk difference per patient with delta-method intervals."""

from __future__ import annotations

import time as _time

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator

from hte.array_checks import check_new_covariates, check_weights, interval_z
from hte.design.effect_data import unpack_crs_fit
from hte.errors import FitError
from hte.estimators.crs_outcomes import crs_fit_inputs
from hte.estimators.result import IntervalEstimateMixin


def _newton_logistic(
    Z: np.ndarray, y: np.ndarray, sw: np.ndarray, penalty: float, max_iter: int = 100
) -> np.ndarray:
    """Weighted logistic regression by Newton-Raphson with an L2 penalty on all but column 0."""
    beta = np.zeros(Z.shape[1])
    ridge = np.full(Z.shape[1], penalty)
    ridge[0] = 0.0
    for _ in range(max_iter):
        p = expit(Z @ beta)
        grad = Z.T @ (sw * (y - p)) - ridge * beta
        hess = (Z * (sw * p * (1 - p))[:, None]).T @ Z + np.diag(ridge)
        step = np.linalg.solve(hess, grad)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            return beta
        if np.max(np.abs(beta)) > 30:
            break
    raise FitError(
        "logistic regression did not converge (likely separation: some covariate pattern has "
        "only CRS or only no CRS in one arm); set penalty > 0 or drop sparse covariates"
    )


class LogisticInteractionModel(IntervalEstimateMixin, BaseEstimator):
    """Logistic regression of CRS on covariates, treatment and treatment x covariate interactions.

    ``fit(X, crs, treatment, crs_grade=None, sample_weight=None)``; ``outcome="crs_g3"`` uses
    grade >= 3 on rows with a recorded grade (count in ``n_excluded_missing_grade_``). The effect
    is the risk difference ``expit(z1'b) - expit(z0'b)``; ``predict_interval`` uses the delta
    method with the model-based covariance (sandwich covariance when weighted). Covariates are
    standardized internally, which leaves unpenalized fits unchanged.
    """

    def __init__(self, outcome: str = "crs", *, penalty: float = 0.0) -> None:
        self.outcome = outcome
        self.penalty = penalty

    def _design(self, X: np.ndarray, arm: np.ndarray) -> np.ndarray:
        Xs = (X - self.x_mean_) / self.x_scale_
        w = arm.astype(float).reshape(-1, 1)
        return np.hstack([np.ones((X.shape[0], 1)), Xs, w, w * Xs])

    def fit(self, X, crs=None, treatment=None, *, crs_grade=None, sample_weight=None):
        """Fit by (penalized) maximum likelihood; see class docstring. X may be an
        ``EffectData`` (its weights as ``sample_weight``)."""
        X, crs, treatment, crs_grade, sample_weight = unpack_crs_fit(
            X, crs, treatment, crs_grade, sample_weight
        )
        Xa, names, w, y, keep = crs_fit_inputs(X, crs, treatment, crs_grade, self.outcome)
        self.n_excluded_missing_grade_ = int((~keep).sum())
        sw = check_weights(sample_weight, keep.shape[0], "sample_weight")[keep]
        start = _time.perf_counter()
        self.n_features_in_ = Xa.shape[1]
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.x_mean_ = Xa.mean(axis=0)
        scale = Xa.std(axis=0)
        self.x_scale_ = np.where(scale > 0, scale, 1.0)
        Z = self._design(Xa, w)
        self.coef_ = _newton_logistic(Z, y, sw, float(self.penalty))
        p = expit(Z @ self.coef_)
        ridge = np.full(Z.shape[1], float(self.penalty))
        ridge[0] = 0.0
        bread = np.linalg.inv((Z * (sw * p * (1 - p))[:, None]).T @ Z + np.diag(ridge))
        if sample_weight is None:
            self.covariance_ = bread
        else:
            scores = Z * (sw * (y - p))[:, None]
            self.covariance_ = bread @ (scores.T @ scores) @ bread
        self.fit_seconds_ = _time.perf_counter() - start
        return self

    def _check_X(self, X) -> np.ndarray:
        return check_new_covariates(self, X, fitted_attribute="coef_")

    def predict_risk(self, X) -> tuple[np.ndarray, np.ndarray]:
        """P(outcome | x, CAR-T) and P(outcome | x, tec) per row."""
        Xa = self._check_X(X)
        ones = np.ones(Xa.shape[0])
        return (
            expit(self._design(Xa, ones) @ self.coef_),
            expit(self._design(Xa, 0 * ones) @ self.coef_),
        )

    def predict(self, X) -> np.ndarray:
        """Risk difference CAR-T minus teclistamab per row."""
        p1, p0 = self.predict_risk(X)
        return p1 - p0

    def _delta_se(self, Xa: np.ndarray) -> np.ndarray:
        ones = np.ones(Xa.shape[0])
        z1, z0 = self._design(Xa, ones), self._design(Xa, 0 * ones)
        p1, p0 = expit(z1 @ self.coef_), expit(z0 @ self.coef_)
        grad = z1 * (p1 * (1 - p1))[:, None] - z0 * (p0 * (1 - p0))[:, None]
        return np.sqrt(np.einsum("ij,jk,ik->i", grad, self.covariance_, grad))

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Delta-method (1 - alpha) interval of the risk difference."""
        Xa = self._check_X(X)
        rd, se = self.predict(Xa), self._delta_se(Xa)
        z = interval_z(alpha)
        return rd - z * se, rd + z * se

    def _estimate_labels(self) -> tuple[str, float | None, str]:
        return self.outcome, None, "LogisticInteractionModel"
