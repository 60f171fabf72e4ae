"""Baselines that sit beside published analyses.

- ``CoxInteractionModel``: Cox model (lifelines) with treatment, covariates and treatment x
  covariate interactions, optional weights; CATE from counterfactual curves with the Breslow
  baseline hazard.
- ``LogisticInteractionModel``: logistic regression with treatment x covariate interactions; CRS
  risk difference per patient with delta-method intervals.
- ``weighted_cox_hazard_ratio``: marginal hazard ratio from a weighted Cox model with robust
  (sandwich) variance, since weights are estimated.
- ``average_treatment_effect_survival``: IPTW Kaplan-Meier survival and RMST differences at a
  horizon with bootstrap intervals.
- ``average_treatment_effect_binary``: IPW or AIPW risk difference with influence-function
  intervals.

Weights and propensities come from the caller (``hte.design``); none are estimated here.
"""

from __future__ import annotations

import time as _time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning
from scipy import stats
from scipy.special import expit
from sklearn.base import BaseEstimator

from hte.array_checks import (
    check_binary_outcome,
    check_new_covariates,
    check_survival_outcome,
    check_treatment,
)
from hte.design.effect_data import unpack_crs_fit
from hte.estimators.crs_forest import crs_fit_inputs
from hte.estimators.result import IntervalEstimateMixin
from hte.estimators.survival_curves import (
    CounterfactualSurvivalEstimator,
    check_horizon_per_arm,
    restricted_mean,
    stratified_bootstrap,
    survival_at,
)

_T, _E, _W, _SW = "__time", "__event", "treatment", "__weight"
# Ridge penalizers tried, in order, when a Cox fit does not converge (collinear covariates) or
# separates (a coefficient above MAX_STANDARDIZED_COEF per standard deviation of its column).
RIDGE_LADDER = (0.01, 0.1, 1.0)
MAX_STANDARDIZED_COEF = 10.0  # a hazard ratio of e^10 per SD: separation, not an estimate


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HazardRatio:
    """Hazard ratio CAR-T vs teclistamab with its (1 - alpha) confidence interval."""

    hr: float
    lower: float
    upper: float
    p: float
    n: int
    alpha: float = 0.05
    variance: str = "robust sandwich"


@dataclass(frozen=True)
class AverageEffect:
    """An average effect (CAR-T minus teclistamab) with its (1 - alpha) interval."""

    estimate: float
    lower: float
    upper: float
    se: float
    alpha: float
    n: int
    target: str  # "survival", "rmst", "crs"
    horizon: float | None
    method: str  # how the estimate and its interval were obtained
    value_cart: float  # the arm-level quantities, for comparison with published numbers
    value_tec: float


@dataclass(frozen=True)
class SurvivalATE:
    """IPTW Kaplan-Meier survival difference at the horizon and RMST difference up to it."""

    survival: AverageEffect
    rmst: AverageEffect


def _check_weights(weights, n: int, name: str = "weights") -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ValueError(
            f"{name} must be finite and >= 0; rows {np.flatnonzero(bad)[:5].tolist()} are not"
        )
    return w


def _z(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2))


# --------------------------------------------------------------------------------------------
# Cox model with treatment interactions
# --------------------------------------------------------------------------------------------
def _interaction_frame(X: np.ndarray, treatment: np.ndarray, names: list[str]) -> pd.DataFrame:
    w = treatment.astype(float).reshape(-1, 1)
    cols = [*names, _W, *[f"{_W}:{c}" for c in names]]
    return pd.DataFrame(np.hstack([X, w, w * X]), columns=cols)


class CoxInteractionModel(CounterfactualSurvivalEstimator):
    """Cox proportional hazards with treatment, covariates and treatment x covariate interactions.

    ``fit(X, time, event, treatment, sample_weight=None)``: lifelines ``CoxPHFitter`` (Efron
    ties; robust variance when weighted). The CATE is the RMST difference (``target="rmst"``) or
    survival difference at the horizon (``target="survival"``) between the model's counterfactual
    curves ``S_a(t|x) = exp(-H0(t) exp(lp_a(x)))`` with the Breslow baseline ``H0``. Intervals come
    from a stratified bootstrap refit when ``n_bootstrap > 0``, else NaN. ``summary_`` holds the
    coefficient table (robust standard errors when weighted).

    A fit that does not converge (lifelines' ConvergenceError: collinear covariates) or separates
    (a coefficient above ``MAX_STANDARDIZED_COEF`` per SD of its column) is refitted with the
    ridge penalizers of ``RIDGE_LADDER`` above ``penalizer`` in turn; ``penalizer_used_`` and
    ``fit_info_`` record what was used and why. If none works the error says how to fix it.
    """

    _supports_weights = True

    def __init__(
        self,
        *,
        target: str = "rmst",
        horizon: float | None = None,
        penalizer: float = 0.0,
        n_bootstrap: int = 0,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            target=target, horizon=horizon, n_bootstrap=n_bootstrap, random_state=random_state
        )
        self.penalizer = penalizer

    def _fit_state(self, X, time, event, treatment, sample_weight, seed):
        names = [str(c) for c in self.feature_names_in_]
        df = _interaction_frame(X, treatment, names)
        df[_T], df[_E] = time, event.astype(int)
        kwargs = {}
        if sample_weight is not None:
            df[_SW] = sample_weight
            kwargs = dict(weights_col=_SW, robust=True)
        if self.penalizer < 0:
            raise ValueError(f"penalizer must be >= 0; got {self.penalizer}")
        scale = df.drop(columns=[_T, _E, _SW], errors="ignore").std().to_numpy()
        ladder = [float(self.penalizer)] + [p for p in RIDGE_LADDER if p > self.penalizer]
        problem = ""
        for penalizer in ladder:
            cph = CoxPHFitter(penalizer=penalizer)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    cph.fit(df, duration_col=_T, event_col=_E, **kwargs)
            except ConvergenceError as exc:
                problem = f"did not converge at penalizer {penalizer:g} ({_first_sentence(exc)})"
                continue
            diverging = [
                w for w in caught
                if issubclass(w.category, ConvergenceWarning) and "norm(delta)" in str(w.message)
            ]  # fmt: skip
            if diverging:
                problem = (
                    f"did not converge at penalizer {penalizer:g} (no unique maximum: "
                    "collinearity or complete separation)"
                )
                continue
            coef = cph.params_.to_numpy()
            standardized = np.abs(coef * scale)
            if not np.all(np.isfinite(coef)) or np.nanmax(standardized) > MAX_STANDARDIZED_COEF:
                worst = cph.params_.index[int(np.nanargmax(standardized))]
                problem = (
                    f"separated at penalizer {penalizer:g} (coefficient of {worst} "
                    f"{cph.params_[worst]:.3g})"
                )
                continue
            cph.hte_fit_note_ = problem  # why the penalizer was raised, or ""
            return cph
        raise ValueError(
            f"Cox with interactions {problem}, even with the ridge penalizers "
            f"{', '.join(f'{p:g}' for p in ladder)}: drop collinear or sparse covariates, or set "
            "params.penalizer higher"
        )

    def fit(self, X, time=None, event=None, treatment=None, sample_weight=None):
        """Fit the interaction Cox model (see class docstring); X may be an ``EffectData``."""
        super().fit(X, time, event, treatment, sample_weight)
        self.model_ = self.state_
        self.summary_ = self.state_.summary
        self.penalizer_used_ = float(self.state_.penalizer)
        note = getattr(self.state_, "hte_fit_note_", "")
        self.fit_info_ = {
            "penalizer_requested": float(self.penalizer),
            "penalizer_used": self.penalizer_used_,
            "ridge_fallback": bool(note),
            **({"reason": f"the unpenalized fit {note.split(' at ')[0]}"} if note else {}),
        }
        return self

    def _arm_steps(self, state, X):
        names = [str(c) for c in self.feature_names_in_]
        knots = state.baseline_cumulative_hazard_.index.to_numpy(dtype=float)
        cumhaz = state.baseline_cumulative_hazard_.to_numpy()[:, 0]
        out = []
        for arm in (1, 0):
            df = _interaction_frame(X, np.full(X.shape[0], arm), names)
            risk = state.predict_partial_hazard(df).to_numpy()
            out.append((knots, np.exp(-np.outer(risk, cumhaz))))
        return out[0], out[1]


def _first_sentence(exc: Exception) -> str:
    return str(exc).split(". ")[0].strip()


# --------------------------------------------------------------------------------------------
# Logistic regression with treatment interactions
# --------------------------------------------------------------------------------------------
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
    raise RuntimeError(
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
        sw = _check_weights(sample_weight, keep.shape[0], "sample_weight")[keep]
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
        z = _z(alpha)
        return rd - z * se, rd + z * se

    def _estimate_labels(self) -> tuple[str, float | None, str]:
        return self.outcome, None, "LogisticInteractionModel"


# --------------------------------------------------------------------------------------------
# Average effects
# --------------------------------------------------------------------------------------------
def weighted_cox_hazard_ratio(
    time, event, treatment, weights=None, *, alpha: float = 0.05
) -> HazardRatio:
    """Hazard ratio of CAR-T vs teclistamab from a Cox model on treatment alone, weighted.

    With weights (e.g. IPTW/overlap weights from ``hte.design``) the variance is the robust
    sandwich (Lin-Wei) estimator, because weights are estimated and not frequency counts; without
    weights it is the same robust variance, so both read alike. Efron ties.
    """
    w = check_treatment(treatment, np.shape(treatment)[0])
    n = w.shape[0]
    t, d = check_survival_outcome(time, event, n)
    sw = _check_weights(weights, n)
    _z(alpha)
    df = pd.DataFrame({_T: t, _E: d.astype(int), _W: w.astype(float), _SW: sw})
    cph = CoxPHFitter(alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(df, duration_col=_T, event_col=_E, weights_col=_SW, robust=True)
    row = cph.summary.loc[_W]
    z = _z(alpha)
    beta, se = float(row["coef"]), float(row["se(coef)"])
    return HazardRatio(
        hr=float(np.exp(beta)),
        lower=float(np.exp(beta - z * se)),
        upper=float(np.exp(beta + z * se)),
        p=float(row["p"]),
        n=n,
        alpha=alpha,
    )


def weighted_kaplan_meier(time, event, weights) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Kaplan-Meier: distinct times and S at each (right-continuous step function)."""
    knots, inverse = np.unique(time, return_inverse=True)
    deaths = np.bincount(inverse, weights=weights * event, minlength=knots.size)
    leaving = np.bincount(inverse, weights=weights, minlength=knots.size)
    at_risk = np.cumsum(leaving[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, deaths / at_risk, 0.0)
    return knots, np.cumprod(1.0 - hazard)


def _km_arm_summaries(t, d, w, sw, horizon) -> np.ndarray:
    """[S_cart(h), S_tec(h), RMST_cart(h), RMST_tec(h)]."""
    out = []
    for arm in (1, 0):
        rows = w == arm
        knots, surv = weighted_kaplan_meier(t[rows], d[rows], sw[rows])
        out.append(
            (
                survival_at(knots, surv[None], horizon)[0],
                restricted_mean(knots, surv[None], horizon)[0],
            )
        )
    return np.array([out[0][0], out[1][0], out[0][1], out[1][1]])


def average_treatment_effect_survival(
    time,
    event,
    treatment,
    weights=None,
    horizon: float = 12.0,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 500,
    random_state: int | None = None,
) -> SurvivalATE:
    """IPTW Kaplan-Meier difference in survival at ``horizon`` and in RMST up to ``horizon``.

    Each arm's Kaplan-Meier curve is weighted by ``weights`` (ATE weights from the design layer;
    None = unweighted). Intervals: nonparametric bootstrap percentile intervals, resampling
    patients within arm with their weights held fixed (the propensity model is not refitted, so
    the intervals ignore weight-estimation uncertainty, usually a conservative omission for IPTW).
    """
    w = check_treatment(treatment, np.shape(treatment)[0])
    n = w.shape[0]
    t, d = check_survival_outcome(time, event, n, horizon=horizon)
    check_horizon_per_arm(t, w, horizon)
    sw = _check_weights(weights, n)
    _z(alpha)
    if int(n_bootstrap) < 2:
        raise ValueError(f"n_bootstrap must be >= 2 for an interval; got {n_bootstrap}")
    point = _km_arm_summaries(t, d.astype(float), w, sw, horizon)
    rng = np.random.default_rng(random_state)
    draws = np.empty((int(n_bootstrap), 4))
    for b in range(int(n_bootstrap)):
        rows = stratified_bootstrap(w, rng)
        draws[b] = _km_arm_summaries(t[rows], d[rows].astype(float), w[rows], sw[rows], horizon)
    method = f"IPTW Kaplan-Meier; stratified bootstrap percentile CI ({int(n_bootstrap)} draws)"

    def effect(target: str, i: int) -> AverageEffect:
        diff = draws[:, i] - draws[:, i + 1]
        lo, hi = np.quantile(diff, [alpha / 2, 1 - alpha / 2])
        return AverageEffect(
            estimate=float(point[i] - point[i + 1]),
            lower=float(lo),
            upper=float(hi),
            se=float(diff.std(ddof=1)),
            alpha=alpha,
            n=n,
            target=target,
            horizon=float(horizon),
            method=method,
            value_cart=float(point[i]),
            value_tec=float(point[i + 1]),
        )

    return SurvivalATE(survival=effect("survival", 0), rmst=effect("rmst", 2))


def average_treatment_effect_binary(
    y, treatment, propensity, *, mu1=None, mu0=None, alpha: float = 0.05, target: str = "crs"
) -> AverageEffect:
    """Average risk difference (CAR-T minus teclistamab) with an influence-function CI.

    Without outcome predictions: normalized (Hajek) IPW. With ``mu1``/``mu0`` (predicted risk under
    each arm, ideally cross-fitted): AIPW, doubly robust. The standard error is the sample standard
    deviation of the influence function over sqrt(n), treating ``propensity`` as known (for IPW
    with an estimated propensity this is conservative).
    """
    w = check_treatment(treatment, np.shape(treatment)[0])
    n = w.shape[0]
    yv = check_binary_outcome(y, n, name=target).astype(float)
    e = np.asarray(propensity, dtype=float)
    if e.shape != (n,):
        raise ValueError(f"propensity must have shape ({n},); got {e.shape}")
    bad = ~((e > 0) & (e < 1))
    if bad.any():
        raise ValueError(
            f"propensity must be strictly between 0 and 1; rows {np.flatnonzero(bad)[:5].tolist()}"
            " are not (clip it in the design layer)"
        )
    z = _z(alpha)
    if (mu1 is None) != (mu0 is None):
        raise ValueError("give both mu1 and mu0 (AIPW) or neither (IPW)")
    if mu1 is None:
        a1, a0 = w / e, (1 - w) / (1 - e)
        m1 = np.sum(a1 * yv) / np.sum(a1)
        m0 = np.sum(a0 * yv) / np.sum(a0)
        phi1 = a1 * (yv - m1) + m1
        phi0 = a0 * (yv - m0) + m0
        method = "IPW (Hajek); influence-function CI"
    else:
        f1, f0 = np.asarray(mu1, dtype=float), np.asarray(mu0, dtype=float)
        if f1.shape != (n,) or f0.shape != (n,):
            raise ValueError(f"mu1 and mu0 must have shape ({n},)")
        phi1 = f1 + w * (yv - f1) / e
        phi0 = f0 + (1 - w) * (yv - f0) / (1 - e)
        method = "AIPW; influence-function CI"
    m1, m0 = float(phi1.mean()), float(phi0.mean())
    est = m1 - m0
    se = float(np.std(phi1 - phi0, ddof=1) / np.sqrt(n))
    return AverageEffect(
        estimate=est,
        lower=est - z * se,
        upper=est + z * se,
        se=se,
        alpha=alpha,
        n=n,
        target=target,
        horizon=None,
        method=method,
        value_cart=m1,
        value_tec=m0,
    )
