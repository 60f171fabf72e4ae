"""Per-arm prognosis models behind the profile explorer: bootstrap ensembles of per-arm ridge Cox
and ridge logistic models (curves and risks with pointwise bands).

Why these and not the run's estimators: a what-if query must answer in well under a second, with
a band around every curve. A bootstrap ensemble of small linear models costs one matrix product per
query; the run's forests give the headline effects (with their own intervals) beside them
(read fast by ``hte.estimators.grf_reader``).

The Cox fit maximises the Breslow partial log-likelihood minus ``0.5 * penalty * ||beta||^2`` (the
objective of scikit-survival's ``CoxPHSurvivalAnalysis(alpha=penalty)``) by damped Newton steps;
bootstrap replicates are frequency weights (multinomial counts within the arm), so ties and
repeated rows need no copying.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from hte.estimators.quantiles import linear_quantiles

MAX_NEWTON = 50
NEWTON_TOL = 1e-9


# --------------------------------------------------------------------------------------------------
# Ridge Cox (Breslow) and ridge logistic regression, weighted


def _breslow_terms(time: np.ndarray, event: np.ndarray):
    """Order (descending time) and, per sorted row, the last sorted index of its tie group."""
    order = np.argsort(-time, kind="stable")
    t_sorted = time[order]
    # risk set of row i = all rows with time >= t_i = sorted positions 0 .. last index with t == t_i
    last = np.searchsorted(-t_sorted, -t_sorted, side="right") - 1
    return order, last


def _cox_loglik_parts(Xs, ws, ds, last, beta, penalty):
    eta = Xs @ beta
    eta_max = eta.max()
    r = ws * np.exp(eta - eta_max)
    s0 = np.cumsum(r)[last]
    s1 = np.cumsum(r[:, None] * Xs, axis=0)[last]
    wd = ws * ds
    loglik = float(wd @ (eta - eta_max - np.log(s0))) - 0.5 * penalty * float(beta @ beta)
    xbar = s1 / s0[:, None]
    grad = (wd[:, None] * (Xs - xbar)).sum(0) - penalty * beta
    # sum over events of w d S2/S0 = X' diag(r * c) X, c_j = sum_{events i with t_i <= t_j} w d / S0
    inc = wd / s0
    # rows are in descending time: events with t_i <= t_j are at positions >= first index of t_j's
    # tie group; reversed cumulative sum over positions, taken at the tie group's first position
    c_rev = np.cumsum(inc[::-1])[::-1]
    group_start = np.searchsorted(last, last, side="left")
    c = c_rev[group_start]
    hess = (Xs * (r * c)[:, None]).T @ Xs - (wd[:, None] * xbar).T @ xbar
    hess += penalty * np.eye(len(beta))
    return loglik, grad, hess, s0


def fit_ridge_cox(
    X: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    weights: np.ndarray | None = None,
    penalty: float = 1.0,
    beta0: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted ridge Cox model: ``(beta, event_times, cumulative_baseline_hazard)``.

    The Breslow baseline: ``H0(t) = sum over events t_i <= t of w_i / sum_{j: t_j >= t_i} w_j
    exp(x_j beta)``, at each distinct event time (increasing); ``S(t|x) = exp(-H0(t) e^{x beta})``.
    """
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0  # rows a bootstrap resample left out carry no information (and empty risk sets)
    X, time, event, w = X[keep], np.asarray(time, float)[keep], np.asarray(event)[keep], w[keep]
    order, last = _breslow_terms(time, event.astype(bool))
    Xs, ws, ds, ts = X[order], w[order], event[order].astype(float), time[order]
    beta = np.zeros(p) if beta0 is None else np.array(beta0, dtype=float)
    loglik, grad, hess, s0 = _cox_loglik_parts(Xs, ws, ds, last, beta, penalty)
    for _ in range(MAX_NEWTON):
        step = np.linalg.solve(hess, grad)
        scale = 1.0
        while True:  # damped: halve until the penalized log-likelihood does not fall
            trial = beta + scale * step
            new = _cox_loglik_parts(Xs, ws, ds, last, trial, penalty)
            if new[0] >= loglik - 1e-12 or scale < 1e-6:
                break
            scale /= 2
        beta, (loglik, grad, hess, s0) = trial, new
        if np.max(np.abs(scale * step)) < NEWTON_TOL:
            break
    eta_max = float((Xs @ beta).max())
    inc = ws * ds / s0 * np.exp(-eta_max)  # s0 was computed with exp(eta - eta_max)
    event_rows = ds > 0
    times = ts[event_rows][::-1]
    hazard = inc[event_rows][::-1]
    unique_times, starts = np.unique(times, return_index=True)
    cumulative = np.cumsum(np.add.reduceat(hazard, starts)) if times.size else np.zeros(0)
    return beta, unique_times, cumulative


def fit_ridge_logistic(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None, penalty: float = 1.0
) -> np.ndarray:
    """Weighted ridge logistic regression by Newton: ``coef`` with the intercept first
    (unpenalized), maximising ``sum w [y eta - log(1 + e^eta)] - 0.5 penalty ||beta||^2``."""
    n, p = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    Z = np.column_stack([np.ones(n), X])
    pen = np.full(p + 1, float(penalty))
    pen[0] = 0.0
    mean = np.clip((w @ y) / w.sum(), 1e-6, 1 - 1e-6)
    coef = np.zeros(p + 1)
    coef[0] = np.log(mean / (1 - mean))
    for _ in range(MAX_NEWTON):
        mu = expit(Z @ coef)
        grad = Z.T @ (w * (y - mu)) - pen * coef
        hess = (Z * (w * mu * (1 - mu))[:, None]).T @ Z + np.diag(pen) + 1e-10 * np.eye(p + 1)
        step = np.linalg.solve(hess, grad)
        coef = coef + step
        if np.max(np.abs(step)) < NEWTON_TOL:
            break
    return coef


# --------------------------------------------------------------------------------------------------
# Bootstrap ensembles


@dataclass
class Standardizer:
    """Column centring and scaling learned on the cohort (constant columns scale by 1)."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray) -> Standardizer:
        sd = X.std(axis=0)
        return cls(X.mean(axis=0), np.where(sd > 0, sd, 1.0))

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.mean) / self.scale


def _bootstrap_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)


@dataclass
class CoxArmEnsemble:
    """Ridge Cox per arm, full fit (row 0) plus bootstrap refits, with baseline hazards on ``grid``.

    ``beta[a]``: (B + 1, p); ``cumhaz[a]``: (B + 1, len(grid)); arms ``"cart"``, ``"tec"``.
    """

    grid: np.ndarray
    standardizer: Standardizer
    beta: dict[str, np.ndarray]
    cumhaz: dict[str, np.ndarray]
    penalty: float
    n_bootstrap: int

    def survival(self, X: np.ndarray, arm: str) -> np.ndarray:
        """(B + 1, n, len(grid)) survival curves of every member for the rows of X."""
        Z = self.standardizer(X)
        risk = np.exp(Z @ self.beta[arm].T)  # (n, B + 1)
        return np.exp(-risk.T[:, :, None] * self.cumhaz[arm][:, None, :])


def _step_at(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(times, grid, side="right") - 1
    return np.where(idx >= 0, values[np.maximum(idx, 0)], 0.0)


def fit_cox_ensemble(
    X: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    treatment: np.ndarray,
    grid: np.ndarray,
    *,
    n_bootstrap: int = 200,
    penalty: float = 1.0,
    seed: int = 0,
) -> CoxArmEnsemble:
    """Per-arm ridge Cox on standardized covariates, refitted on ``n_bootstrap`` within-arm
    bootstrap resamples (warm-started from the full fit)."""
    rng = np.random.default_rng(seed)
    std = Standardizer.fit(X)
    Z = std(X)
    betas, hazards = {}, {}
    for arm, code in (("cart", 1), ("tec", 0)):
        rows = treatment == code
        Za, ta, da = Z[rows], time[rows], event[rows].astype(bool)
        full, times, cum = fit_ridge_cox(Za, ta, da, penalty=penalty)
        b_list, h_list = [full], [_step_at(times, cum, grid)]
        for _ in range(int(n_bootstrap)):
            wb = _bootstrap_weights(len(ta), rng)
            b, times_b, cum_b = fit_ridge_cox(Za, ta, da, wb, penalty=penalty, beta0=full)
            b_list.append(b)
            h_list.append(_step_at(times_b, cum_b, grid))
        betas[arm], hazards[arm] = np.stack(b_list), np.stack(h_list)
    return CoxArmEnsemble(grid, std, betas, hazards, float(penalty), int(n_bootstrap))


@dataclass
class LogisticArmEnsemble:
    """Ridge logistic risk per arm, full fit (row 0) plus bootstrap refits: ``coef[a]`` is
    (B + 1, p + 1) with the intercept first."""

    standardizer: Standardizer
    coef: dict[str, np.ndarray]
    penalty: float
    n_bootstrap: int

    def risk(self, X: np.ndarray, arm: str) -> np.ndarray:
        """(B + 1, n) risks of every member for the rows of X."""
        Z = self.standardizer(X)
        c = self.coef[arm]
        return expit(c[:, :1] + c[:, 1:] @ Z.T)


def fit_logistic_ensemble(
    X: np.ndarray,
    y: np.ndarray,
    treatment: np.ndarray,
    *,
    n_bootstrap: int = 200,
    penalty: float = 1.0,
    seed: int = 0,
) -> LogisticArmEnsemble:
    """Per-arm ridge logistic regression on standardized covariates plus bootstrap refits."""
    rng = np.random.default_rng(seed)
    std = Standardizer.fit(X)
    Z = std(X)
    coefs = {}
    for arm, code in (("cart", 1), ("tec", 0)):
        rows = treatment == code
        Za, ya = Z[rows], np.asarray(y, dtype=float)[rows]
        members = [fit_ridge_logistic(Za, ya, penalty=penalty)]
        for _ in range(int(n_bootstrap)):
            members.append(
                fit_ridge_logistic(Za, ya, _bootstrap_weights(len(ya), rng), penalty=penalty)
            )
        coefs[arm] = np.stack(members)
    return LogisticArmEnsemble(std, coefs, float(penalty), int(n_bootstrap))


def percentile_band(members: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point (member 0, the full fit) and the bootstrap percentile band of members 1.., widened
    where needed so that lower <= point <= upper."""
    point = members[0]
    boot = members[1:] if members.shape[0] > 1 else members
    lower, upper = linear_quantiles(boot, [alpha / 2, 1 - alpha / 2])
    return point, np.minimum(lower, point), np.maximum(upper, point)
