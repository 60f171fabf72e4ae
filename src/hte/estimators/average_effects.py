"""Average effects that sit beside published analyses.

- ``weighted_cox_hazard_ratio``: marginal hazard ratio from a weighted Cox model with robust
  (sandwich) variance, since weights are estimated.
- ``average_treatment_effect_survival``: IPTW Kaplan-Meier survival and RMST differences at a
  horizon with bootstrap intervals.
- ``average_treatment_effect_binary``: IPW or AIPW risk difference with influence-function
  intervals.

Weights and propensities come from the caller (``hte.design``); none are estimated here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter

from hte.array_checks import (
    check_binary_outcome,
    check_survival_outcome,
    check_treatment,
    check_weights,
    interval_z,
)
from hte.estimators.survival_curves import (
    check_horizon_per_arm,
    restricted_mean,
    stratified_bootstrap,
    survival_at,
)

_T, _E, _W, _SW = "__time", "__event", "treatment", "__weight"  # the Cox fit's frame


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
    sw = check_weights(weights, n)
    interval_z(alpha)
    df = pd.DataFrame({_T: t, _E: d.astype(int), _W: w.astype(float), _SW: sw})
    cph = CoxPHFitter(alpha=alpha)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph.fit(df, duration_col=_T, event_col=_E, weights_col=_SW, robust=True)
    row = cph.summary.loc[_W]
    z = interval_z(alpha)
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
    sw = check_weights(weights, n)
    interval_z(alpha)
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
    z = interval_z(alpha)
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
