"""The generating model of the synthetic cohort per patient (:mod:`hte.data.simulate`): the
propensity, the survival hazards of each arm, the manufacturing delay and the CRS model.

The functions read only covariate columns, so they work for any covariate profiles; the exact
survival functions built on them are in :mod:`hte.data.simulation_truth`, the draws in
:mod:`hte.data.simulate`. Every number is a field of :mod:`hte.data.simulation_params`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit, ndtr, ndtri

from hte.data.columns import DAYS_PER_MONTH
from hte.data.simulation_params import (
    CRSParams,
    DelayParams,
    PropensityParams,
    SimulationParams,
    SurvivalParams,
    scenario_params,
)


def step(x: np.ndarray, threshold: float, width: float) -> np.ndarray:
    """Smooth step from 0 to 1 through ``threshold`` (logistic, scale ``width``)."""
    return expit((x - threshold) / width)


# --------------------------------------------------------------------------------------------------
# Assignment


def propensity_score(df: pd.DataFrame, p: PropensityParams) -> np.ndarray:
    """True P(CAR-T | x) of each row."""
    lin = (
        p.age_per_year_over_66 * (column(df, "age") - 66.0)
        + p.ecog_ge2 * (column(df, "ecog") >= 2)
        + p.crcl_lt60 * (column(df, "crcl") < 60)
        + p.ldh_high * column(df, "ldh_high")
        + p.bm_per_10pct_over_30 * (column(df, "bm_plasma_pct") - 30.0) / 10.0
        + p.rapid_progression * column(df, "rapid_progression")
        + p.prior_bcma * column(df, "prior_bcma")
        + p.extramedullary * column(df, "extramedullary")
        + p.prior_asct * column(df, "prior_asct")
        + p.race_black * (race(df) == "black")
        + p.race_other * (race(df) == "other")
    )
    return expit(p.intercept + p.strength * lin)


def race(df: pd.DataFrame) -> np.ndarray:
    if "race" not in df.columns:
        raise ValueError("the propensity model needs covariate column 'race'; it is missing")
    return df["race"].astype(str).to_numpy()


def column(df: pd.DataFrame, name: str) -> np.ndarray:
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
class Hazards:
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


def hazards(df: pd.DataFrame, s: SurvivalParams) -> Hazards:
    age = column(df, "age")
    ecog = column(df, "ecog")
    bm10 = (column(df, "bm_plasma_pct") - 30.0) / 10.0
    emd = column(df, "extramedullary")
    bcma = column(df, "prior_bcma")
    rapid = column(df, "rapid_progression")
    hr_cyto = column(df, "high_risk_cytogenetics")
    crcl = column(df, "crcl")
    ferritin = column(df, "ferritin")
    crp = column(df, "crp")
    eta = (
        s.prog_age_per_year_over_65 * (age - 65.0)
        + s.prog_ecog_per_level * ecog
        + s.prog_iss_per_stage_over_1 * (column(df, "iss_stage") - 1)
        + s.prog_high_risk_cyto * hr_cyto
        + s.prog_gain_1q * column(df, "gain_1q")
        + s.prog_extramedullary * emd
        + s.prog_penta_refractory * column(df, "penta_refractory")
        + s.prog_ldh_high * column(df, "ldh_high")
        + s.prog_bm_per_10pct_over_30 * bm10
        + s.prog_per_line_over_6 * (column(df, "prior_lines") - 6)
        + s.prog_rapid_progression * rapid
        + s.prog_prior_bcma * bcma
        + s.prog_crcl_lt60 * step(-crcl, -s.crcl_threshold, s.crcl_step_width)
        + s.prog_log_ferritin * np.log(np.maximum(ferritin, 1.0) / 350.0)
    )
    low_crcl = step(-crcl, -s.crcl_threshold, s.crcl_step_width)
    high_bm = step(column(df, "bm_plasma_pct"), s.bm_high_threshold, s.bm_step_width)
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
        * step(log_ferr, np.log(s.ferritin_threshold), s.ferritin_step_log_width)
        + s.nrm_high_crp * step(crp, s.crp_threshold, s.crp_step_width)
    ) * (1.0 + s.nrm_age_over_70 * age_ramp)
    return Hazards(
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
class Delay:
    """Truncated log-normal delay in months on [lo, hi]; ``enabled=False`` means D = 0."""

    enabled: bool
    mu: float
    sd: float
    lo: float
    hi: float

    @classmethod
    def from_params(cls, p: DelayParams) -> Delay:
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


def gauss_legendre(a: float, b: float, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a ``k``-point Gauss-Legendre rule on [a, b] (empty if b <= a)."""
    if b <= a:
        return np.empty(0), np.empty(0)
    x, w = np.polynomial.legendre.leggauss(k)
    half = 0.5 * (b - a)
    return a + half * (x + 1.0), half * w


# --------------------------------------------------------------------------------------------------
# CRS


def crs_model(df: pd.DataFrame, c: CRSParams):
    """Per-row P(CRS | tec), P(CRS | infused CAR-T) and P(grade >= j | CRS) for j = 2..5 per arm."""
    lf = np.log(np.maximum(column(df, "ferritin"), 1.0) / 350.0)
    lc = np.log(np.maximum(column(df, "crp"), 0.1) / 4.0)
    bm10 = (column(df, "bm_plasma_pct") - 30.0) / 10.0
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
# A scenario's model of given covariate rows


def model_of(df: pd.DataFrame, params: SimulationParams) -> tuple[Hazards, Delay]:
    """The survival hazards and the delay distribution of the rows of ``df``."""
    return hazards(df, params.survival), Delay.from_params(params.delay)


def resolve_params(scenario: str | SimulationParams) -> SimulationParams:
    """A scenario's parameters from its name (or the parameters themselves)."""
    return scenario if isinstance(scenario, SimulationParams) else scenario_params(scenario)
