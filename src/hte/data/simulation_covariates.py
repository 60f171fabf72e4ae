"""Baseline covariates of the synthetic cohort (:mod:`hte.data.simulate`).

Three latent normal factors (tumor burden, inflammation, frailty) plus age induce the correlations
between the covariates; values are rounded as a registry would store them. Every number is a field
of :class:`hte.data.simulation_params.CovariateParams`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

from hte.data.simulation_params import CovariateParams


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
