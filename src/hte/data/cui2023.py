"""The four simulation designs of Cui, Kosorok, Sverdrup, Wager & Zhu (JRSSB 2023), with true CATEs.

Reimplemented from the published description (grf's ``generate_causal_survival_data`` documents the
same designs): X ~ U(0, 1)^p, failure times capped at the design's horizon ``Y.max`` (so the RMST
target is E[min(T, h)] and every patient still followed at h counts as an event at h).

* type1: log T = -1.85 - 0.8 I(X1 < .5) + 0.7 sqrt(X2) + 0.2 X3 + (0.7 - 0.4 I(X1<.5) - 0.4 sqrt(X2)) W
  + N(0, 1) (accelerated failure time); C Weibull(shape 2) proportional hazards in (X2, X3, W); h = 1.5.
* type2: T = (E / exp(X1 + (X2 - 0.5) W))^2, E ~ Exp(1) (proportional hazards); C ~ U(0, 3); h = 2.
* type3: T ~ Poisson(X2^2 + X3 + 6 + 2 (sqrt(X1) - 0.3) W), C ~ Poisson(12 + log(1 + e^X3)); h = 15.
* type4: T ~ Poisson(X2 + X3 + max(0, X1 - 0.3) W), C ~ Poisson(1 + log(1 + e^X3)); h = 3.

Propensity e(x) = (1 + Beta(2, 4) density at X1) / 4 in types 1-3, 1 / ((1 + e^-X1)(1 + e^-X2)) in
type 4. True CATEs are closed form (the reference uses Monte Carlo; ``true_cate_mc`` reproduces
that for checking): lognormal partial mean for type 1, the Weibull(1/2)-type integral for type 2,
sums of Poisson tail probabilities for types 3-4.

The Poisson designs produce times equal to 0, as grf's do; ``generate_cui2023`` keeps them.
hte's estimators need follow-up > 0, so ``CuiDesign.with_day_zero()`` applies hte's documented
day-zero rule (``hte.data.day_zero``: a time of 0 counts as half a day, the design's time unit
read as months, i.e. 0.0164; order and ties are kept, and an arm's RMST moves by at most
0.0164 x its share of zeros). The benchmarks use it; nothing here moves times privately.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from hte.data.columns import DAYS_PER_MONTH
from hte.data.day_zero import DAY_ZERO_DAYS, move_zero_times

DGPS = ("type1", "type2", "type3", "type4")
HORIZON = {"type1": 1.5, "type2": 2.0, "type3": 15.0, "type4": 3.0}
Y0 = {"type1": 0.8, "type2": 1.2, "type3": 10.0, "type4": 2.0}
DAY_ZERO_OFFSET = DAY_ZERO_DAYS / DAYS_PER_MONTH  # the day-zero rule, time unit read as months


@dataclass(frozen=True)
class CuiDesign:
    """One draw: covariates, observed survival data, and the truth estimators never see."""

    X: np.ndarray
    time: np.ndarray
    event: np.ndarray
    treatment: np.ndarray
    propensity: np.ndarray
    cate_rmst: np.ndarray  # E[min(T1,h) - min(T0,h) | x]
    cate_survival: np.ndarray  # P(T1 > y0 | x) - P(T0 > y0 | x)
    horizon: float
    y0: float
    dgp: str
    n_zero_moved: int = 0  # times of 0 moved by the day-zero rule (with_day_zero)

    def with_day_zero(self, offset: float = DAY_ZERO_OFFSET) -> CuiDesign:
        """The draw with follow-up 0 counted as ``offset`` (hte.data.day_zero's rule)."""
        time, moved = move_zero_times(self.time, offset)
        return replace(self, time=time, n_zero_moved=self.n_zero_moved + int(moved.sum()))


def _check_dgp(dgp: str) -> str:
    if dgp not in DGPS:
        raise ValueError(f"dgp must be one of {DGPS}; got {dgp!r}")
    return dgp


def propensity(X: np.ndarray, dgp: str) -> np.ndarray:
    """P(W = 1 | x) of the design."""
    _check_dgp(dgp)
    if dgp == "type4":
        return 1.0 / ((1.0 + np.exp(-X[:, 0])) * (1.0 + np.exp(-X[:, 1])))
    return (1.0 + stats.beta.pdf(X[:, 0], 2, 4)) / 4.0


def _type1_mean_log(X: np.ndarray, w: int) -> np.ndarray:
    i1 = (X[:, 0] < 0.5).astype(float)
    s2 = np.sqrt(X[:, 1])
    return -1.85 - 0.8 * i1 + 0.7 * s2 + 0.2 * X[:, 2] + (0.7 - 0.4 * i1 - 0.4 * s2) * w


def _type2_rate(X: np.ndarray, w: int) -> np.ndarray:
    return np.exp(X[:, 0] + (-0.5 + X[:, 1]) * w)


def _poisson_mean(X: np.ndarray, dgp: str, w: int) -> np.ndarray:
    if dgp == "type3":
        return X[:, 1] ** 2 + X[:, 2] + 6.0 + 2.0 * (np.sqrt(X[:, 0]) - 0.3) * w
    return X[:, 1] + X[:, 2] + np.maximum(0.0, X[:, 0] - 0.3) * w


def _rmst(X: np.ndarray, dgp: str, w: int, h: float) -> np.ndarray:
    """E[min(T_w, h) | x] in closed form."""
    if dgp == "type1":
        mu = _type1_mean_log(X, w)
        z = np.log(h) - mu
        return np.exp(mu + 0.5) * stats.norm.cdf(z - 1.0) + h * stats.norm.sf(z)
    if dgp == "type2":
        # P(T > t) = exp(-c sqrt(t)); int_0^h = (2 / c^2) (1 - e^{-c sqrt h} (1 + c sqrt h))
        c = _type2_rate(X, w)
        a = c * np.sqrt(h)
        return 2.0 / c**2 * (1.0 - np.exp(-a) * (1.0 + a))
    # integer-valued T: E[min(T, h)] = sum_{k=0}^{ceil(h)-1} P(T > k) (h integer in these designs)
    lam = _poisson_mean(X, dgp, w)
    ks = np.arange(int(np.ceil(h)))
    tail = stats.poisson.sf(ks[None, :], lam[:, None])
    return tail.sum(axis=1) - (np.ceil(h) - h) * tail[:, -1]


def _survival(X: np.ndarray, dgp: str, w: int, t: float) -> np.ndarray:
    """P(T_w > t | x) in closed form (t below the cap)."""
    if dgp == "type1":
        return stats.norm.sf(np.log(t) - _type1_mean_log(X, w))
    if dgp == "type2":
        return np.exp(-_type2_rate(X, w) * np.sqrt(t))
    return stats.poisson.sf(np.floor(t), _poisson_mean(X, dgp, w))


def true_cate(
    X: np.ndarray, dgp: str, target: str = "rmst", horizon: float | None = None
) -> np.ndarray:
    """True CATE at x: RMST difference up to ``horizon`` (default the design's h) or survival
    difference at ``horizon`` (default the design's y0)."""
    _check_dgp(dgp)
    X = np.asarray(X, dtype=float)
    if target == "rmst":
        h = HORIZON[dgp] if horizon is None else float(horizon)
        return _rmst(X, dgp, 1, h) - _rmst(X, dgp, 0, h)
    if target == "survival":
        t = Y0[dgp] if horizon is None else float(horizon)
        return _survival(X, dgp, 1, t) - _survival(X, dgp, 0, t)
    raise ValueError(f"target must be 'rmst' or 'survival'; got {target!r}")


def _failure_times(X: np.ndarray, dgp: str, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = X.shape[0]
    if dgp == "type1":
        return np.exp(
            _type1_mean_log(X, 1) * w + _type1_mean_log(X, 0) * (1 - w) + rng.normal(size=n)
        )
    if dgp == "type2":
        rate = np.where(w == 1, _type2_rate(X, 1), _type2_rate(X, 0))
        return (rng.exponential(size=n) / rate) ** 2
    lam = np.where(w == 1, _poisson_mean(X, dgp, 1), _poisson_mean(X, dgp, 0))
    return rng.poisson(lam).astype(float)


def _censoring_times(
    X: np.ndarray, dgp: str, w: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    n = X.shape[0]
    if dgp == "type1":
        i1 = (X[:, 0] < 0.5).astype(float)
        s2 = np.sqrt(X[:, 1])
        rate = np.exp(-1.75 - 0.5 * s2 + 0.2 * X[:, 2] + (1.15 + 0.5 * i1 - 0.3 * s2) * w)
        return (rng.exponential(size=n) / rate) ** 0.5
    if dgp == "type2":
        return 3.0 * rng.uniform(size=n)
    if dgp == "type3":
        return rng.poisson(12.0 + np.log1p(np.exp(X[:, 2]))).astype(float)
    return rng.poisson(1.0 + np.log1p(np.exp(X[:, 2]))).astype(float)


def true_cate_mc(
    X: np.ndarray, dgp: str, n_mc: int = 10_000, seed: int = 0, horizon: float | None = None
) -> np.ndarray:
    """Monte Carlo RMST CATE as the reference computes it (common noise draws for both arms)."""
    _check_dgp(dgp)
    h = HORIZON[dgp] if horizon is None else float(horizon)
    rng = np.random.default_rng(seed)
    out = np.empty(X.shape[0])
    for i, x in enumerate(np.asarray(X, dtype=float)):
        xs = np.repeat(x[None, :], n_mc, axis=0)
        if dgp == "type1":
            eps = rng.normal(size=n_mc)
            t1, t0 = np.exp(_type1_mean_log(xs, 1) + eps), np.exp(_type1_mean_log(xs, 0) + eps)
        elif dgp == "type2":
            e = rng.exponential(size=n_mc)
            t1, t0 = (e / _type2_rate(xs, 1)) ** 2, (e / _type2_rate(xs, 0)) ** 2
        else:
            t1 = rng.poisson(_poisson_mean(xs, dgp, 1)).astype(float)
            t0 = rng.poisson(_poisson_mean(xs, dgp, 0)).astype(float)
        out[i] = np.mean(np.minimum(t1, h) - np.minimum(t0, h))
    return out


def generate_cui2023(
    n: int, p: int = 5, dgp: str = "type1", *, seed: int | np.random.Generator = 0, X=None
) -> CuiDesign:
    """Draw n patients from design ``dgp`` (p >= 5 uniform covariates, or the given X); times of 0
    are kept, as grf draws them (``.with_day_zero()`` applies hte's rule before fitting)."""
    _check_dgp(dgp)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if X is None:
        if p < 5:
            raise ValueError(f"the Cui et al. designs need p >= 5 covariates; got p={p}")
        X = rng.uniform(size=(n, p))
    X = np.asarray(X, dtype=float)
    h = HORIZON[dgp]
    e = propensity(X, dgp)
    w = rng.binomial(1, e)
    failure = np.minimum(_failure_times(X, dgp, w, rng), h)
    censor = _censoring_times(X, dgp, w, rng)
    time = np.minimum(failure, censor)
    event = (failure <= censor).astype(int)
    return CuiDesign(
        X=X,
        time=time,
        event=event,
        treatment=w,
        propensity=e,
        cate_rmst=true_cate(X, dgp, "rmst"),
        cate_survival=true_cate(X, dgp, "survival"),
        horizon=h,
        y0=Y0[dgp],
        dgp=dgp,
    )
