"""Calibrated synthetic cohorts of triple-class-exposed RRMM with known true effects.

One row per patient at the treatment decision (time zero). Every number of the model lives in
:mod:`hte.data.simulation_params`; the scenarios are named overrides of it.

Generating model (months from the decision; x = baseline covariates)
--------------------------------------------------------------------
* Covariates: three latent normal factors (tumor burden, inflammation, frailty) plus age induce the
  correlations (burden -> bone-marrow plasma cells, LDH, ISS, EMD, rapid progression, CrCl;
  inflammation -> ferritin, CRP; age -> frailty/ECOG, CrCl, prior ASCT; prior lines -> years since
  diagnosis, penta-refractoriness, prior BCMA therapy). Values are rounded as a registry would store
  them, and everything below (truth included) is computed from the rounded values.
* Assignment: logistic propensity e(x) on age, ECOG >= 2, CrCl < 60, LDH, plasma cells, rapid
  progression, prior BCMA, EMD, prior ASCT and race (a social-risk proxy for documented access
  disparities; race affects nothing else). ``true_propensity`` is e(x).
* Survival: a shared prognostic Weibull cumulative hazard Lambda0(t|x) = c(x) t^k.
  - Teclistamab: S_tec(t|x) = exp(-Lambda0(t|x) exp(b_tec(x))), b_tec worse with EMD, prior BCMA and
    (smooth step) very high plasma-cell burden.
  - CAR-T (intention to treat): a manufacturing delay D ~ truncated log-normal, independent of x.
    While waiting: death hazard Lambda0'(t) exp(b_wait(x)) (bridging; worse with rapid progression,
    burden) and a dropout hazard nu(x) (manufacturing failure / progression; never infused); after
    dropout the hazard is Lambda0'(t) exp(b_drop). Surviving and still waiting at D, the patient is
    infused; then the hazard is Lambda0'(t) exp(b_cart(x)) plus early non-relapse mortality
    gamma(x) exp(-(t - D)/tau), with gamma raised by smooth steps in ferritin and CRP (the
    CAR-HEMATOTOX idea) and weakly by age; b_cart is worse with EMD, prior BCMA, CrCl < 60 (smooth
    step), rapid progression, high-risk cytogenetics and (weakly) age over 70. With P_W(u) =
    exp(-Lambda0(u) exp(b_wait) - nu u) and G_D the delay's survival function,
        S_cart(t) = G_D(t) P_W(t) + int f_D(d) P_W(d) S_inf(t|d) dd
                    + int nu P_W(u) G_D(u) S_drop(t|u) du,
    i.e. S_cart(t|x) = E_D[S(t|x, D)].
* CRS: teclistamab logistic in log ferritin and log CRP; CAR-T P(CRS | x) = P(infused | x) *
  P(CRS | x, infused), the latter also rising with plasma-cell burden. Grade given CRS: cumulative
  logit with arm-specific thresholds and a severity score (ferritin, CRP, burden for CAR-T).
* Censoring: uniform staggered entry over the accrual window and a data cut (administrative), plus
  exponential loss to follow-up that starts after the longest possible manufacturing delay (so an
  infusion is always observed when it happens).

Truth and its accuracy
----------------------
``true_surv12_*``, ``true_rmst24_*``, ``true_crs*_prob_*`` and the CATEs are computed from the model's
survival functions, not from draws: the integrals over the delay and the dropout time use
Gauss-Legendre rules on the delay window (split where the integrand has a kink), the RMST a
Gauss-Legendre rule in time split at the delay window's ends. Against rules with 5x the nodes the
error is below 1e-6 (checked in tests/data/test_simulate.py). ``true_os_months_*`` are one draw
of each potential outcome (uncensored); ``true_propensity`` is e(x).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from hte.data.columns import CART, DAYS_PER_MONTH, TEC
from hte.data.simulation_params import (
    SCENARIO_DESCRIPTIONS,
    CovariateParams,
    CRSParams,
    DelayParams,
    PropensityParams,
    SimulationParams,
    SurvivalParams,
    scenario_params,
)

SCENARIOS: tuple[str, ...] = tuple(SCENARIO_DESCRIPTIONS)

__all__ = [
    "SCENARIOS",
    "cart_survival",
    "draw_covariates",
    "draw_potential_outcomes",
    "propensity_score",
    "simulate_cohort",
    "true_effects",
    "true_survival_curves",
    "write_cohort",
]


# --------------------------------------------------------------------------------------------------
# Covariates


def _step(x: np.ndarray, threshold: float, width: float) -> np.ndarray:
    """Smooth step from 0 to 1 through ``threshold`` (logistic, scale ``width``)."""
    return expit((x - threshold) / width)


def _cut(score: np.ndarray, cum_probs: tuple[float, ...]) -> np.ndarray:
    """Ordinal categories 0..len(cum_probs) from a standard-normal score and cumulative probabilities."""
    return np.searchsorted(ndtri(np.asarray(cum_probs)), score).astype(int)


def draw_covariates(n: int, rng: np.random.Generator, p: CovariateParams) -> pd.DataFrame:
    """Correlated baseline covariates of ``n`` patients (rounded as a registry stores them)."""
    z = rng.standard_normal((n, 12))
    age = np.clip(p.age_mean + p.age_sd * z[:, 0], p.age_min, p.age_max)
    burden = z[:, 1]
    rho = p.inflammation_on_burden
    inflammation = rho * burden + np.sqrt(1.0 - rho**2) * z[:, 2]
    frail_raw = p.frailty_age_per_year * (age - p.age_mean) + p.frailty_on_burden * burden + z[:, 3]
    frail_sd = np.sqrt((p.frailty_age_per_year * p.age_sd) ** 2 + p.frailty_on_burden**2 + 1.0)
    ecog = _cut(frail_raw / frail_sd, p.ecog_cum_probs)
    crcl = np.exp(
        np.log(p.crcl_median_at_65)
        + p.crcl_log_per_year * (age - 65.0)
        + p.crcl_log_on_burden * burden
        + p.crcl_log_sd * z[:, 4]
    )
    crcl = np.clip(crcl, p.crcl_min, p.crcl_max)
    iss_raw = p.iss_on_burden * burden + p.iss_on_low_crcl * (crcl < 60) + z[:, 5]
    iss_sd = np.sqrt(p.iss_on_burden**2 + 1.0 + 0.25 * p.iss_on_low_crcl**2)
    iss = 1 + _cut(iss_raw / iss_sd, p.iss_cum_probs)
    bm = 100.0 * expit(
        p.bm_logit_intercept + p.bm_logit_on_burden * burden + p.bm_logit_noise_sd * z[:, 6]
    )
    u = rng.random((n, 11))
    ldh = u[:, 0] < expit(p.ldh_logit_intercept + p.ldh_logit_on_burden * burden)
    ferritin = p.ferritin_median * np.exp(p.ferritin_log_sd * inflammation)
    c = p.crp_on_inflammation
    crp = p.crp_median * np.exp(p.crp_log_sd * (c * inflammation + np.sqrt(1 - c**2) * z[:, 7]))
    high_risk = u[:, 1] < p.high_risk_cyto_prob
    gain_1q = u[:, 2] < expit(p.gain_1q_logit_intercept + p.gain_1q_logit_on_high_risk * high_risk)
    emd = u[:, 3] < expit(
        p.emd_logit_intercept
        + p.emd_logit_on_burden * burden
        + p.emd_logit_on_high_risk * high_risk
    )
    lines = p.prior_lines_min + rng.poisson(p.prior_lines_poisson_mean, n)
    years_dx = p.years_dx_median_at_6_lines * np.exp(
        p.years_dx_log_per_line * (lines - 6) + p.years_dx_log_sd * z[:, 8]
    )
    asct = u[:, 4] < expit(
        p.asct_logit_intercept + p.asct_logit_per_year_over_65 * np.maximum(age - 65.0, 0.0)
    )
    penta = u[:, 5] < expit(p.penta_logit_intercept + p.penta_logit_per_line_over_6 * (lines - 6))
    bcma = u[:, 6] < expit(p.bcma_logit_intercept + p.bcma_logit_per_line_over_6 * (lines - 6))
    rapid = u[:, 7] < expit(
        p.rapid_logit_intercept
        + p.rapid_logit_on_burden * burden
        + p.rapid_logit_on_high_risk * high_risk
    )
    sex = np.where(u[:, 8] < p.male_prob, "male", "female")
    race_idx = np.searchsorted(
        np.cumsum(p.race_probs) / np.sum(p.race_probs), u[:, 9], side="right"
    )
    race = np.asarray(p.race_levels)[np.minimum(race_idx, len(p.race_levels) - 1)]
    return pd.DataFrame(
        {
            "age": np.round(age, 1),
            "sex": sex,
            "race": race,
            "ecog": ecog.astype(np.int64),
            "iss_stage": iss.astype(np.int64),
            "prior_lines": lines.astype(np.int64),
            "high_risk_cytogenetics": high_risk,
            "gain_1q": gain_1q,
            "extramedullary": emd,
            "prior_asct": asct,
            "penta_refractory": penta,
            "ldh_high": ldh,
            "prior_bcma": bcma,
            "rapid_progression": rapid,
            "bm_plasma_pct": np.round(bm, 1),
            "ferritin": np.round(ferritin, 0),
            "crp": np.round(crp, 1),
            "crcl": np.round(crcl, 1),
            "years_since_diagnosis": np.round(years_dx, 2),
        }
    )


# --------------------------------------------------------------------------------------------------
# Assignment


def propensity_score(df: pd.DataFrame, p: PropensityParams) -> np.ndarray:
    """True P(CAR-T | x) of each row."""
    lin = (
        p.age_per_year_over_66 * (_col(df, "age") - 66.0)
        + p.ecog_ge2 * (_col(df, "ecog") >= 2)
        + p.crcl_lt60 * (_col(df, "crcl") < 60)
        + p.ldh_high * _col(df, "ldh_high")
        + p.bm_per_10pct_over_30 * (_col(df, "bm_plasma_pct") - 30.0) / 10.0
        + p.rapid_progression * _col(df, "rapid_progression")
        + p.prior_bcma * _col(df, "prior_bcma")
        + p.extramedullary * _col(df, "extramedullary")
        + p.prior_asct * _col(df, "prior_asct")
        + p.race_black * (_race(df) == "black")
        + p.race_other * (_race(df) == "other")
    )
    return expit(p.intercept + p.strength * lin)


def _race(df: pd.DataFrame) -> np.ndarray:
    if "race" not in df.columns:
        raise ValueError("the propensity model needs covariate column 'race'; it is missing")
    return df["race"].astype(str).to_numpy()


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        raise ValueError(f"the generating model needs covariate column {name!r}; it is missing")
    values = df[name].to_numpy(dtype=float)
    if np.isnan(values).any():
        rows = np.flatnonzero(np.isnan(values))[:5].tolist()
        raise ValueError(
            f"covariate {name!r} has missing values (rows {rows}); the model needs all"
        )
    return values


# --------------------------------------------------------------------------------------------------
# Per-row hazard parameters


@dataclass(frozen=True)
class _Hazards:
    """Per-row parameters of the survival model (arrays of length n) and shared constants."""

    c0: np.ndarray  # prognostic scale: Lambda0(t) = c0 * t^k
    m_tec: np.ndarray
    m_wait: np.ndarray
    nu: np.ndarray  # dropout rate while waiting, per month
    m_drop: np.ndarray
    m_cart: np.ndarray
    gamma: np.ndarray  # early NRM hazard at infusion, per month
    shape: float
    tau: float

    def lam0(self, t):
        return self.c0 * np.power(t, self.shape)


def _hazards(df: pd.DataFrame, s: SurvivalParams) -> _Hazards:
    age = _col(df, "age")
    ecog = _col(df, "ecog")
    bm10 = (_col(df, "bm_plasma_pct") - 30.0) / 10.0
    emd = _col(df, "extramedullary")
    bcma = _col(df, "prior_bcma")
    rapid = _col(df, "rapid_progression")
    hr_cyto = _col(df, "high_risk_cytogenetics")
    crcl = _col(df, "crcl")
    ferritin = _col(df, "ferritin")
    crp = _col(df, "crp")
    eta = (
        s.prog_age_per_year_over_65 * (age - 65.0)
        + s.prog_ecog_per_level * ecog
        + s.prog_iss_per_stage_over_1 * (_col(df, "iss_stage") - 1)
        + s.prog_high_risk_cyto * hr_cyto
        + s.prog_gain_1q * _col(df, "gain_1q")
        + s.prog_extramedullary * emd
        + s.prog_penta_refractory * _col(df, "penta_refractory")
        + s.prog_ldh_high * _col(df, "ldh_high")
        + s.prog_bm_per_10pct_over_30 * bm10
        + s.prog_per_line_over_6 * (_col(df, "prior_lines") - 6)
        + s.prog_rapid_progression * rapid
        + s.prog_prior_bcma * bcma
        + s.prog_crcl_lt60 * _step(-crcl, -s.crcl_threshold, s.crcl_step_width)
        + s.prog_log_ferritin * np.log(np.maximum(ferritin, 1.0) / 350.0)
    )
    low_crcl = _step(-crcl, -s.crcl_threshold, s.crcl_step_width)
    high_bm = _step(_col(df, "bm_plasma_pct"), s.bm_high_threshold, s.bm_step_width)
    age_ramp = np.clip((age - s.age_ramp_start) / s.age_ramp_width, 0.0, 1.0)
    b_tec = s.tec_extramedullary * emd + s.tec_prior_bcma * bcma + s.tec_high_bm * high_bm
    b_cart = (
        s.cart_log_hr
        + s.cart_extramedullary * emd
        + s.cart_prior_bcma * bcma
        + s.cart_low_crcl * low_crcl
        + s.cart_rapid_progression * rapid
        + s.cart_high_risk_cyto * hr_cyto
        + s.cart_age_over_70 * age_ramp
    )
    b_wait = (
        s.wait_log_hr
        + s.wait_rapid_progression * rapid
        + s.wait_bm_per_10pct_over_30 * bm10
        + s.wait_extramedullary * emd
        + s.wait_prior_bcma * bcma
    )
    nu = s.dropout_rate * np.exp(
        s.dropout_rapid_progression * rapid + s.dropout_bm_per_10pct_over_30 * bm10
    )
    log_ferr = np.log(np.maximum(ferritin, 1.0))
    gamma = (
        s.nrm_base
        + s.nrm_high_ferritin
        * _step(log_ferr, np.log(s.ferritin_threshold), s.ferritin_step_log_width)
        + s.nrm_high_crp * _step(crp, s.crp_threshold, s.crp_step_width)
    ) * (1.0 + s.nrm_age_over_70 * age_ramp)
    return _Hazards(
        c0=s.weibull_scale * np.exp(eta),
        m_tec=np.exp(b_tec),
        m_wait=np.exp(b_wait),
        nu=nu,
        m_drop=np.full_like(eta, np.exp(s.dropped_log_hr)),
        m_cart=np.exp(b_cart),
        gamma=gamma,
        shape=s.weibull_shape,
        tau=s.nrm_decay_months,
    )


# --------------------------------------------------------------------------------------------------
# Manufacturing delay (months)


@dataclass(frozen=True)
class _Delay:
    """Truncated log-normal delay in months on [lo, hi]; ``enabled=False`` means D = 0."""

    enabled: bool
    mu: float
    sd: float
    lo: float
    hi: float

    @classmethod
    def from_params(cls, p: DelayParams) -> _Delay:
        to_m = 1.0 / DAYS_PER_MONTH
        return cls(
            p.enabled, np.log(p.median_days * to_m), p.log_sd, p.min_days * to_m, p.max_days * to_m
        )

    def _z(self, d):
        return (np.log(d) - self.mu) / self.sd

    @property
    def _mass(self) -> float:
        return float(ndtr(self._z(self.hi)) - ndtr(self._z(self.lo)))

    def pdf(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, dtype=float)
        inside = (d >= self.lo) & (d <= self.hi)
        safe = np.where(inside, d, 1.0)
        z = self._z(safe)
        dens = np.exp(-0.5 * z * z) / (safe * self.sd * np.sqrt(2 * np.pi) * self._mass)
        return np.where(inside, dens, 0.0)

    def sf(self, d: np.ndarray) -> np.ndarray:
        d = np.clip(np.asarray(d, dtype=float), self.lo, self.hi)
        return (ndtr(self._z(self.hi)) - ndtr(self._z(d))) / self._mass

    def draw(self, u: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return np.zeros_like(u)
        a, b = ndtr(self._z(self.lo)), ndtr(self._z(self.hi))
        return np.exp(self.mu + self.sd * ndtri(a + u * (b - a)))


def _gauss_legendre(a: float, b: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a ``k``-point Gauss-Legendre rule on [a, b] (empty if b <= a)."""
    if b <= a:
        return np.empty(0), np.empty(0)
    x, w = np.polynomial.legendre.leggauss(k)
    half = 0.5 * (b - a)
    return a + half * (x + 1.0), half * w


# --------------------------------------------------------------------------------------------------
# Exact survival functions


def _s_inf(h: _Hazards, t: float, d: np.ndarray) -> np.ndarray:
    """S(t | infused at d) for every row (n, len(d)): post-infusion hazard plus early NRM."""
    c0 = h.c0[:, None]
    lam = c0 * h.m_cart[:, None] * (t**h.shape - np.power(d, h.shape))[None, :]
    nrm = h.gamma[:, None] * h.tau * (1.0 - np.exp(-(t - d) / h.tau))[None, :]
    return np.exp(-lam - nrm)


def _p_wait(h: _Hazards, u: np.ndarray) -> np.ndarray:
    """P(alive and not dropped out by u, ignoring infusion), (n, len(u))."""
    return np.exp(
        -h.c0[:, None] * h.m_wait[:, None] * np.power(u, h.shape)[None, :] - np.outer(h.nu, u)
    )


def _cart_survival_at(h: _Hazards, delay: _Delay, t: float, nodes: tuple[int, int]) -> np.ndarray:
    """S_cart(t | x) for every row at one time t."""
    if t <= 0:
        return np.ones_like(h.c0)
    if not delay.enabled:
        return _s_inf(h, t, np.zeros(1))[:, 0]
    n_delay, n_drop = nodes
    d, wd = _gauss_legendre(delay.lo, min(t, delay.hi), n_delay)
    mass_d = wd * delay.pdf(d)
    # still waiting at t; G_D from the same rule so the pieces add up exactly
    total = (1.0 - mass_d.sum()) * _p_wait(h, np.array([t]))[:, 0] if t < delay.hi else 0.0
    if d.size:
        total = total + (_p_wait(h, d) * _s_inf(h, t, d)) @ mass_d
    if np.any(h.nu > 0):
        for a, b in ((0.0, min(t, delay.lo)), (delay.lo, min(t, delay.hi))):
            u, wu = _gauss_legendre(a, b, n_drop)
            if not u.size:
                continue
            s_drop = np.exp(
                -h.c0[:, None] * h.m_drop[:, None] * (t**h.shape - np.power(u, h.shape))[None, :]
            )
            total = total + (h.nu[:, None] * _p_wait(h, u) * s_drop) @ (wu * delay.sf(u))
    return np.asarray(total)


def _tec_survival_at(h: _Hazards, t: float) -> np.ndarray:
    return np.exp(-h.lam0(max(t, 0.0)) * h.m_tec)


def _rmst(fn, tau: float, breaks: list[float], k: int) -> np.ndarray:
    """int_0^tau fn(t) dt by Gauss-Legendre on the pieces between ``breaks`` (kinks of fn)."""
    cuts = sorted({0.0, tau, *[b for b in breaks if 0.0 < b < tau]})
    total = 0.0
    for a, b in pairwise(cuts):
        t, w = _gauss_legendre(a, b, k)
        for ti, wi in zip(t, w, strict=True):
            total = total + wi * fn(ti)
    return np.asarray(total)


def _infusion_probability(h: _Hazards, delay: _Delay, n_delay: int) -> np.ndarray:
    """P(infused | x, CAR-T): survive the wait without dropping out."""
    if not delay.enabled:
        return np.ones_like(h.c0)
    d, wd = _gauss_legendre(delay.lo, delay.hi, n_delay)
    return _p_wait(h, d) @ (wd * delay.pdf(d))


def _model(df: pd.DataFrame, params: SimulationParams) -> tuple[_Hazards, _Delay]:
    return _hazards(df, params.survival), _Delay.from_params(params.delay)


def _resolve(scenario: str | SimulationParams) -> SimulationParams:
    return scenario if isinstance(scenario, SimulationParams) else scenario_params(scenario)


def true_survival_curves(
    df: pd.DataFrame, times, scenario: str | SimulationParams = "default"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact S_cart(t|x) and S_tec(t|x) of each row of ``df`` on ``times`` (months): two (n, m) arrays.

    Only the covariate columns of ``df`` are used, so it works for any covariate profiles."""
    params = _resolve(scenario)
    h, delay = _model(df, params)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    nodes = (params.truth.delay_nodes, params.truth.dropout_nodes)
    s_cart = np.column_stack([_cart_survival_at(h, delay, t, nodes) for t in times])
    s_tec = np.column_stack([_tec_survival_at(h, t) for t in times])
    return s_cart, s_tec


def cart_survival(df: pd.DataFrame, t: float, scenario: str | SimulationParams = "default"):
    """Exact S_cart(t|x) of each row at one time (months)."""
    return true_survival_curves(df, [t], scenario)[0][:, 0]


# --------------------------------------------------------------------------------------------------
# CRS


def _crs_model(df: pd.DataFrame, c: CRSParams):
    """Per-row P(CRS | tec), P(CRS | infused CAR-T) and P(grade >= j | CRS) for j = 2..5 per arm."""
    lf = np.log(np.maximum(_col(df, "ferritin"), 1.0) / 350.0)
    lc = np.log(np.maximum(_col(df, "crp"), 0.1) / 4.0)
    bm10 = (_col(df, "bm_plasma_pct") - 30.0) / 10.0
    p_tec = expit(c.tec_intercept + c.tec_log_ferritin * lf + c.tec_log_crp * lc)
    p_inf = expit(
        c.cart_intercept
        + c.cart_log_ferritin * lf
        + c.cart_log_crp * lc
        + c.cart_bm_per_10pct_over_30 * bm10
    )
    sev_tec = c.tec_severity_log_ferritin * lf + c.tec_severity_log_crp * lc
    sev_cart = (
        c.cart_severity_log_ferritin * lf
        + c.cart_severity_log_crp * lc
        + c.cart_severity_bm_per_10pct_over_30 * bm10
    )
    ge_tec = expit(np.asarray(c.tec_grade_thresholds)[None, :] + sev_tec[:, None])
    ge_cart = expit(np.asarray(c.cart_grade_thresholds)[None, :] + sev_cart[:, None])
    return p_tec, p_inf, ge_tec, ge_cart


# --------------------------------------------------------------------------------------------------
# Truth table


def true_effects(df: pd.DataFrame, scenario: str | SimulationParams = "default") -> pd.DataFrame:
    """The exact ``true_*`` columns (all but the potential-outcome draws) for the rows of ``df``."""
    params = _resolve(scenario)
    h, delay = _model(df, params)
    tp = params.truth
    nodes = (tp.delay_nodes, tp.dropout_nodes)
    h12, h24 = tp.surv_horizon_months, tp.rmst_horizon_months
    s12_cart = _cart_survival_at(h, delay, h12, nodes)
    s12_tec = _tec_survival_at(h, h12)
    breaks = [delay.lo, delay.hi] if delay.enabled else []
    k = tp.time_nodes_per_piece
    rmst_cart = _rmst(lambda t: _cart_survival_at(h, delay, t, nodes), h24, breaks, k)
    rmst_tec = _rmst(lambda t: _tec_survival_at(h, t), h24, breaks, k)
    p_infused = _infusion_probability(h, delay, tp.delay_nodes)
    p_tec, p_inf, ge_tec, ge_cart = _crs_model(df, params.crs)
    if not params.crs.effect:
        p_inf = np.minimum(p_tec / p_infused, 1.0)
        ge_cart = ge_tec
    crs_cart = p_infused * p_inf
    return pd.DataFrame(
        {
            "true_surv12_cart": s12_cart,
            "true_surv12_tec": s12_tec,
            "true_cate_surv12": s12_cart - s12_tec,
            "true_rmst24_cart": rmst_cart,
            "true_rmst24_tec": rmst_tec,
            "true_cate_rmst24": rmst_cart - rmst_tec,
            "true_crs_prob_cart": crs_cart,
            "true_crs_prob_tec": p_tec,
            "true_cate_crs": crs_cart - p_tec,
            "true_crs_g3_prob_cart": crs_cart * ge_cart[:, 1],
            "true_crs_g3_prob_tec": p_tec * ge_tec[:, 1],
            "true_cate_crs_g3": crs_cart * ge_cart[:, 1] - p_tec * ge_tec[:, 1],
            "true_infusion_prob": p_infused,
            "true_propensity": propensity_score(df, params.propensity),
        },
        index=df.index,
    )


# --------------------------------------------------------------------------------------------------
# Draws


def _draw_cart_times(h: _Hazards, delay: _Delay, rng: np.random.Generator):
    """One draw of the CAR-T potential outcome: death time, delay, infused flag (months)."""
    n = h.c0.size
    e = rng.standard_exponential((n, 4))
    d = delay.draw(rng.random(n))
    k = h.shape
    t_wait = np.power(e[:, 0] / (h.c0 * h.m_wait), 1.0 / k)
    with np.errstate(divide="ignore"):
        v = np.where(h.nu > 0, e[:, 1] / np.where(h.nu > 0, h.nu, 1.0), np.inf)
    infused = np.minimum(t_wait, v) > d
    t_relapse = np.power(np.power(d, k) + e[:, 2] / (h.c0 * h.m_cart), 1.0 / k)
    cap = h.gamma * h.tau
    with np.errstate(divide="ignore", invalid="ignore"):
        s_nrm = np.where(
            e[:, 3] < cap, -h.tau * np.log1p(-e[:, 3] / np.where(cap > 0, cap, 1.0)), np.inf
        )
    t_infused = np.minimum(t_relapse, d + s_nrm)
    # dropout path reuses the relapse exponential (the paths are exclusive)
    t_dropped = np.power(np.power(np.minimum(v, d), k) + e[:, 2] / (h.c0 * h.m_drop), 1.0 / k)
    died_waiting = ~infused & (t_wait <= v)
    t = np.where(infused, t_infused, np.where(died_waiting, t_wait, t_dropped))
    return t, d, infused


def _draw_grade(ge: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Grade 1..5 given CRS from P(grade >= j), j = 2..5, and a uniform per row."""
    return 1 + (u[:, None] < ge).sum(axis=1)


def draw_potential_outcomes(
    cov: pd.DataFrame, rng: np.random.Generator, scenario: str | SimulationParams = "default"
) -> pd.DataFrame:
    """One draw of every potential outcome for the covariate rows of ``cov`` (uncensored).

    Columns: ``t_cart``, ``t_tec`` (months to death), ``delay`` (months to planned infusion),
    ``infused`` (bool), ``crs_cart``, ``crs_tec`` (bool), ``grade_cart``, ``grade_tec`` (0-5)."""
    params = _resolve(scenario)
    n = len(cov)
    h, delay = _model(cov, params)
    t_tec = np.power(rng.standard_exponential(n) / (h.c0 * h.m_tec), 1.0 / h.shape)
    t_cart, d, infused = _draw_cart_times(h, delay, rng)
    p_tec, p_inf, ge_tec, ge_cart = _crs_model(cov, params.crs)
    if not params.crs.effect:
        p_infused = _infusion_probability(h, delay, params.truth.delay_nodes)
        p_inf = np.minimum(p_tec / p_infused, 1.0)
        ge_cart = ge_tec
    u = rng.random((n, 4))
    crs_tec = u[:, 0] < p_tec
    crs_cart = infused & (u[:, 1] < p_inf)
    return pd.DataFrame(
        {
            "t_cart": t_cart,
            "t_tec": t_tec,
            "delay": d,
            "infused": infused,
            "crs_cart": crs_cart,
            "crs_tec": crs_tec,
            "grade_cart": np.where(crs_cart, _draw_grade(ge_cart, u[:, 3]), 0).astype(np.int64),
            "grade_tec": np.where(crs_tec, _draw_grade(ge_tec, u[:, 2]), 0).astype(np.int64),
        },
        index=cov.index,
    )


def simulate_cohort(n: int, seed: int, scenario: str = "default") -> pd.DataFrame:
    """Draw ``n`` patients of a named scenario; the same (n, seed, scenario) gives the same frame."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer; got {n!r}")
    params = scenario_params(scenario)
    rng = np.random.default_rng(int(seed))
    n = int(n)
    cov = draw_covariates(n, rng, params.covariates)
    truth = true_effects(cov, params)
    po = draw_potential_outcomes(cov, rng, params)
    t_cart, t_tec = po["t_cart"].to_numpy(), po["t_tec"].to_numpy()
    d, infused = po["delay"].to_numpy(), po["infused"].to_numpy()

    on_cart = rng.random(n) < truth["true_propensity"].to_numpy()
    cens = params.censoring
    entry = cens.accrual_months * rng.random(n)
    admin = cens.data_cut_months - entry
    if cens.ltfu_rate_per_month > 0:
        ltfu = cens.ltfu_start_months + rng.standard_exponential(n) / cens.ltfu_rate_per_month
    else:
        ltfu = np.full(n, np.inf)
    c = np.minimum(admin, ltfu)
    t = np.where(on_cart, t_cart, t_tec)
    os_months = np.minimum(t, c)
    infusion_day = np.where(on_cart & infused & (d <= os_months), d * DAYS_PER_MONTH, np.nan)

    out = pd.DataFrame(
        {
            "patient_id": [f"P{i:06d}" for i in range(1, n + 1)],
            "treatment": np.where(on_cart, CART, TEC),
            "os_months": os_months,
            "death": t <= c,
            "crs": np.where(on_cart, po["crs_cart"], po["crs_tec"]),
            "crs_grade": np.where(on_cart, po["grade_cart"], po["grade_tec"]).astype(np.int64),
            "infusion_day": infusion_day,
        }
    )
    out = pd.concat([out, cov], axis=1)
    out["true_os_months_cart"] = t_cart
    out["true_os_months_tec"] = t_tec
    return pd.concat([out, truth], axis=1)


def write_cohort(df: pd.DataFrame, path) -> Path:
    """Write a cohort to .csv or .parquet (by suffix); byte-identical for identical frames."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        df.to_csv(path, index=False, lineterminator="\n")
    elif suffix in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    else:
        raise ValueError(
            f"cannot write cohort to {str(path)!r}: unknown file type {suffix or '(none)'!r}; "
            "use a .csv or .parquet file name"
        )
    return path
