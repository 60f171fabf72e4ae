"""Calibration for benefit: do patients predicted to gain more actually gain more?

Inputs are a model's held-out predicted benefit ``tau_hat(x_i)`` (cross-fitted: the patient's
outcome was not used to fit the model) and the patients' doubly robust scores ``Gamma_i``
(AIPCW for OS targets, AIPW for CRS), whose mean over any group of patients is a consistent
estimate of the group's mean effect.

* Groups: quantile groups (default quintiles) of the predicted benefit; per group the mean
  prediction and the DR-observed mean benefit with a normal interval (sd / sqrt(n_g)).
* Calibration intercept and slope: least squares of Gamma on the prediction (slope 1 and
  intercept 0 for a calibrated model; slope < 1: predictions too spread out), with
  heteroskedasticity-robust (HC1) standard errors.
* E-for-benefit (group version): the size-weighted mean absolute difference between group
  predicted and DR-observed benefit. It includes the groups' sampling noise, so it is > 0 even
  for a perfect model on finite data.
* c-for-benefit (pseudo-outcome version): among pairs of patients with different predictions
  and different scores, the share where the one predicted to benefit more has the larger DR
  score. This is concordance against DR pseudo-outcome differences, not van Klaveren's version
  on treated/control matched pairs; the score noise pulls it towards 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

N_GROUPS = 5


@dataclass(frozen=True)
class BenefitGroup:
    lower_cut: float
    upper_cut: float
    n: int
    predicted: float
    observed: float
    observed_se: float
    observed_lower: float
    observed_upper: float


@dataclass(frozen=True)
class BenefitCalibration:
    groups: list[BenefitGroup]
    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    e_for_benefit: float
    c_for_benefit: float
    n: int
    alpha: float


def quantile_groups(predicted: np.ndarray, n_groups: int = N_GROUPS) -> np.ndarray:
    """Group index 0..n_groups-1 by rank of the prediction (ties broken by row order, so groups
    have equal sizes within one patient even when many predictions tie)."""
    predicted = np.asarray(predicted, float)
    if not 2 <= n_groups <= predicted.size:
        raise ValueError(f"n_groups must be in [2, {predicted.size}]; got {n_groups}")
    order = np.argsort(predicted, kind="stable")
    ranks = np.empty(predicted.size, dtype=int)
    ranks[order] = np.arange(predicted.size)
    return (ranks * n_groups) // predicted.size


def group_cuts(predicted: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Upper boundaries between consecutive groups (midpoints), for placing a new prediction."""
    predicted = np.asarray(predicted, float)
    cuts = []
    for g in range(n_groups - 1):
        hi = predicted[groups == g].max()
        lo = predicted[groups == g + 1].min()
        cuts.append((hi + lo) / 2)
    return np.asarray(cuts)


def _ols_hc1(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    X = np.column_stack([np.ones_like(x), x])
    xtx_inv = np.linalg.pinv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    resid = y - X @ beta
    n = len(y)
    meat = (X * resid[:, None] ** 2).T @ X
    cov = xtx_inv @ meat @ xtx_inv * n / max(n - 2, 1)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    return float(beta[0]), float(se[0]), float(beta[1]), float(se[1])


def calibration_slope(predicted: np.ndarray, gamma: np.ndarray) -> tuple[float, float]:
    """Slope of the DR scores on the predictions (with an intercept) and its HC1 standard error:
    the calibration slope of ``benefit_calibration``, alone."""
    _, _, slope, slope_se = _ols_hc1(np.asarray(predicted, float), np.asarray(gamma, float))
    return slope, slope_se


def _tied_pairs(*columns: np.ndarray) -> int:
    """Pairs of rows equal in every given column."""
    _, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def concordance(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Share of usable pairs (different prediction and different observation) ordered the same
    way by both; NaN when there is no usable pair (e.g. a constant prediction). O(n log n):
    concordant minus discordant pairs from Kendall's tau-b, usable pairs from the tie counts."""
    from scipy.stats import kendalltau

    p = np.asarray(predicted, float)
    o = np.asarray(observed, float)
    n0 = p.size * (p.size - 1) // 2
    n1, n2, n3 = _tied_pairs(p), _tied_pairs(o), _tied_pairs(p, o)
    usable = n0 - n1 - n2 + n3
    if usable == 0 or n1 == n0 or n2 == n0:
        return float("nan")
    tau_b = kendalltau(p, o, variant="b").statistic
    c_minus_d = tau_b * np.sqrt(float(n0 - n1) * float(n0 - n2))
    return float((1 + c_minus_d / usable) / 2)


def benefit_calibration(
    predicted: np.ndarray, gamma: np.ndarray, n_groups: int = N_GROUPS, alpha: float = 0.05
) -> BenefitCalibration:
    """Calibration for benefit of held-out predictions against DR scores (module docstring)."""
    p = np.asarray(predicted, float).reshape(-1)
    y = np.asarray(gamma, float).reshape(-1)
    if p.shape != y.shape:
        raise ValueError(f"predicted has {p.size} values, gamma {y.size}")
    bad = np.flatnonzero(~(np.isfinite(p) & np.isfinite(y)))
    if bad.size:
        raise ValueError(f"{bad.size} non-finite predictions or scores (first rows {bad[:5]})")
    groups = quantile_groups(p, n_groups)
    z = norm.ppf(1 - alpha / 2)
    out = []
    for g in range(n_groups):
        m = groups == g
        obs = float(y[m].mean())
        se = float(y[m].std(ddof=1) / np.sqrt(m.sum())) if m.sum() > 1 else float("nan")
        out.append(
            BenefitGroup(
                float(p[m].min()),
                float(p[m].max()),
                int(m.sum()),
                float(p[m].mean()),
                obs,
                se,
                obs - z * se,
                obs + z * se,
            )
        )
    if np.ptp(p) > 0:
        a, a_se, b, b_se = _ols_hc1(p, y)
    else:
        a, a_se, b, b_se = float(y.mean()), float("nan"), float("nan"), float("nan")
    e_benefit = float(sum(g.n * abs(g.predicted - g.observed) for g in out) / p.size)
    return BenefitCalibration(out, a, a_se, b, b_se, e_benefit, concordance(p, y), p.size, alpha)


def calibration_summary(cal: BenefitCalibration, digits: int = 6) -> dict:
    """JSON-ready form (rounded so reruns give the same bytes; NaN as None)."""

    def rnd(x: float) -> float | None:
        return float(round(x, digits)) if np.isfinite(x) else None

    return {
        "n": cal.n,
        "groups": [
            {
                "n": g.n,
                "predicted": rnd(g.predicted),
                "observed": rnd(g.observed),
                "observed_se": rnd(g.observed_se),
                "lower": rnd(g.observed_lower),
                "upper": rnd(g.observed_upper),
                "prediction_range": [rnd(g.lower_cut), rnd(g.upper_cut)],
            }
            for g in cal.groups
        ],
        "intercept": rnd(cal.intercept),
        "intercept_se": rnd(cal.intercept_se),
        "slope": rnd(cal.slope),
        "slope_se": rnd(cal.slope_se),
        "e_for_benefit": rnd(cal.e_for_benefit),
        "c_for_benefit": rnd(cal.c_for_benefit),
        "method": (
            f"held-out predictions in {len(cal.groups)} quantile groups vs the mean DR score "
            f"({100 * (1 - cal.alpha):g}% normal intervals); intercept/slope: OLS of the DR "
            "score on the prediction (HC1 SEs); E-for-benefit: size-weighted mean |predicted - "
            "observed| over groups; c-for-benefit: concordance of predictions with DR score "
            "differences over all pairs (not matched pairs)"
        ),
    }
