"""Exact true effects of the synthetic cohort (:mod:`hte.data.simulate`), computed from the
model's survival functions, not from draws.

The integrals over the manufacturing delay and the dropout time use Gauss-Legendre rules on the
delay window (split where the integrand has a kink), the RMST a Gauss-Legendre rule in time split
at the delay window's ends. Against rules with 5x the nodes the error is below 1e-6 (checked in
tests/data/test_simulate.py).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd

from hte.data.simulation_model import (
    Delay,
    Hazards,
    crs_model,
    gauss_legendre,
    model_of,
    propensity_score,
    resolve_params,
)
from hte.data.simulation_params import SimulationParams

# --------------------------------------------------------------------------------------------------
# Exact survival functions


def _s_inf(h: Hazards, t: float, d: np.ndarray) -> np.ndarray:
    """S(t | infused at d) for every row (n, len(d)): post-infusion hazard plus early NRM."""
    c0 = h.c0[:, None]
    lam = c0 * h.m_cart[:, None] * (t**h.shape - np.power(d, h.shape))[None, :]
    nrm = h.gamma[:, None] * h.tau * (1.0 - np.exp(-(t - d) / h.tau))[None, :]
    return np.exp(-lam - nrm)


def p_wait(h: Hazards, u: np.ndarray) -> np.ndarray:
    """P(alive and not dropped out by u, ignoring infusion), (n, len(u))."""
    return np.exp(
        -h.c0[:, None] * h.m_wait[:, None] * np.power(u, h.shape)[None, :] - np.outer(h.nu, u)
    )


def _cart_survival_at(h: Hazards, delay: Delay, t: float, nodes: tuple[int, int]) -> np.ndarray:
    """S_cart(t | x) for every row at one time t."""
    if t <= 0:
        return np.ones_like(h.c0)
    if not delay.enabled:
        return _s_inf(h, t, np.zeros(1))[:, 0]
    n_delay, n_drop = nodes
    d, wd = gauss_legendre(delay.lo, min(t, delay.hi), n_delay)
    mass_d = wd * delay.pdf(d)
    # still waiting at t; G_D from the same rule so the pieces add up exactly
    total = (1.0 - mass_d.sum()) * p_wait(h, np.array([t]))[:, 0] if t < delay.hi else 0.0
    if d.size:
        total = total + (p_wait(h, d) * _s_inf(h, t, d)) @ mass_d
    if np.any(h.nu > 0):
        for a, b in ((0.0, min(t, delay.lo)), (delay.lo, min(t, delay.hi))):
            u, wu = gauss_legendre(a, b, n_drop)
            if not u.size:
                continue
            s_drop = np.exp(
                -h.c0[:, None] * h.m_drop[:, None] * (t**h.shape - np.power(u, h.shape))[None, :]
            )
            total = total + (h.nu[:, None] * p_wait(h, u) * s_drop) @ (wu * delay.sf(u))
    return np.asarray(total)


def _tec_survival_at(h: Hazards, t: float) -> np.ndarray:
    return np.exp(-h.lam0(max(t, 0.0)) * h.m_tec)


def _rmst(fn, tau: float, breaks: list[float], k: int) -> np.ndarray:
    """int_0^tau fn(t) dt by Gauss-Legendre on the pieces between ``breaks`` (kinks of fn)."""
    cuts = sorted({0.0, tau, *[b for b in breaks if 0.0 < b < tau]})
    total = 0.0
    for a, b in pairwise(cuts):
        t, w = gauss_legendre(a, b, k)
        for ti, wi in zip(t, w, strict=True):
            total = total + wi * fn(ti)
    return np.asarray(total)


def infusion_probability(h: Hazards, delay: Delay, n_delay: int) -> np.ndarray:
    """P(infused | x, CAR-T): survive the wait without dropping out."""
    if not delay.enabled:
        return np.ones_like(h.c0)
    d, wd = gauss_legendre(delay.lo, delay.hi, n_delay)
    return p_wait(h, d) @ (wd * delay.pdf(d))


def true_survival_curves(
    df: pd.DataFrame, times, scenario: str | SimulationParams = "default"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact S_cart(t|x) and S_tec(t|x) of each row of ``df`` on ``times`` (months): two (n, m) arrays.

    Only the covariate columns of ``df`` are used, so it works for any covariate profiles."""
    params = resolve_params(scenario)
    h, delay = model_of(df, params)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    nodes = (params.truth.delay_nodes, params.truth.dropout_nodes)
    s_cart = np.column_stack([_cart_survival_at(h, delay, t, nodes) for t in times])
    s_tec = np.column_stack([_tec_survival_at(h, t) for t in times])
    return s_cart, s_tec


def cart_survival(df: pd.DataFrame, t: float, scenario: str | SimulationParams = "default"):
    """Exact S_cart(t|x) of each row at one time (months)."""
    return true_survival_curves(df, [t], scenario)[0][:, 0]


# --------------------------------------------------------------------------------------------------
# Truth table


def true_effects(df: pd.DataFrame, scenario: str | SimulationParams = "default") -> pd.DataFrame:
    """The exact ``true_*`` columns (all but the potential-outcome draws) for the rows of ``df``."""
    params = resolve_params(scenario)
    h, delay = model_of(df, params)
    tp = params.truth
    nodes = (tp.delay_nodes, tp.dropout_nodes)
    h12, h24 = tp.surv_horizon_months, tp.rmst_horizon_months
    s12_cart = _cart_survival_at(h, delay, h12, nodes)
    s12_tec = _tec_survival_at(h, h12)
    breaks = [delay.lo, delay.hi] if delay.enabled else []
    k = tp.time_nodes_per_piece
    rmst_cart = _rmst(lambda t: _cart_survival_at(h, delay, t, nodes), h24, breaks, k)
    rmst_tec = _rmst(lambda t: _tec_survival_at(h, t), h24, breaks, k)
    p_infused = infusion_probability(h, delay, tp.delay_nodes)
    p_tec, p_inf, ge_tec, ge_cart = crs_model(df, params.crs)
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
