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

The model's pieces live in one module each: covariates (:mod:`hte.data.simulation_covariates`),
the per-patient propensity, hazards, delay and CRS model (:mod:`hte.data.simulation_model`), the
exact true effects (:mod:`hte.data.simulation_truth`); this module draws the outcomes, censors
them and assembles the cohort.

Truth and its accuracy
----------------------
``true_surv12_*``, ``true_rmst24_*``, ``true_crs*_prob_*`` and the CATEs are computed from the model's
survival functions, not from draws (:mod:`hte.data.simulation_truth`: error below 1e-6).
``true_os_months_*`` are one draw of each potential outcome (uncensored); ``true_propensity`` is e(x).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hte.data.columns import CART, DAYS_PER_MONTH, TEC
from hte.data.simulation_covariates import draw_covariates
from hte.data.simulation_model import (
    Delay,
    Hazards,
    crs_model,
    model_of,
    propensity_score,
    resolve_params,
)
from hte.data.simulation_params import SCENARIO_DESCRIPTIONS, SimulationParams, scenario_params
from hte.data.simulation_truth import (
    cart_survival,
    infusion_probability,
    true_effects,
    true_survival_curves,
)

SCENARIOS: tuple[str, ...] = tuple(SCENARIO_DESCRIPTIONS)

# The simulator's public names (the pieces re-exported from their modules)
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
# Draws


def _draw_cart_times(h: Hazards, delay: Delay, rng: np.random.Generator):
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
    params = resolve_params(scenario)
    n = len(cov)
    h, delay = model_of(cov, params)
    t_tec = np.power(rng.standard_exponential(n) / (h.c0 * h.m_tec), 1.0 / h.shape)
    t_cart, d, infused = _draw_cart_times(h, delay, rng)
    p_tec, p_inf, ge_tec, ge_cart = crs_model(cov, params.crs)
    if not params.crs.effect:
        p_infused = infusion_probability(h, delay, params.truth.delay_nodes)
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
