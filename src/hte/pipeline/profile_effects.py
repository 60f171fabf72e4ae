"""What one profile query answers: ``ProfileEffects`` (effects, per-arm survival and CRS risks,
curves with bands, support flags, a plain-language summary) and the per-arm numbers made to agree
with the effect estimates (``coherent_survival``, ``arm_risks``; the matching itself is
``hte.pipeline.profile_arms``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hte.estimators.prognosis import CoxArmEnsemble, LogisticArmEnsemble, percentile_band
from hte.estimators.quantiles import linear_quantiles
from hte.pipeline.profile_arms import match_curves, restricted_mean, shift_risks, split_difference

ARMS = ("cart", "tec")


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Estimate:
    """A number with its (1 - alpha) interval (None where the source offers none) and its source."""

    value: float
    lower: float | None
    upper: float | None
    source: str


@dataclass(frozen=True)
class ProfileEffects:
    """Everything the app shows for one profile. Differences are CAR-T minus teclistamab;
    survival and risks are probabilities (0-1), RMST in months. ``to_json()`` for the browser."""

    analysis: str
    alpha: float
    profile: dict
    defaults_used: tuple[str, ...]
    survival_horizon: float | None
    rmst_horizon: float | None
    survival_difference: Estimate | None  # S_cart(h) - S_tec(h), the run's effect estimator
    rmst_difference: Estimate | None
    survival_cart: Estimate | None  # S_a(h | x) from the per-arm curves, with the band
    survival_tec: Estimate | None
    crs_cart: Estimate | None  # P(CRS | x, arm), per-arm ridge logistic bootstrap
    crs_tec: Estimate | None
    crs_difference: Estimate | None  # the run's CRS effect estimator
    crs_g3_cart: Estimate | None
    crs_g3_tec: Estimate | None
    crs_g3_difference: Estimate | None
    curves: dict | None  # times, cart/tec: survival, lower, upper; band (what it means)
    propensity: float
    propensity_support: tuple[float, float]
    out_of_range: tuple[str, ...]
    low_overlap: bool
    warnings: tuple[str, ...]
    summary: str
    icon_counts: dict
    notes: dict
    # target -> the DR estimate of the chosen model's predicted-benefit group the profile falls in
    patients_like_this: dict = field(default_factory=dict)
    rmst_cart: Estimate | None = None  # months alive up to the RMST horizon, from the curves
    rmst_tec: Estimate | None = None
    # what the per-arm prognosis model alone gave (before agreeing with the effect estimates)
    coherence: dict = field(default_factory=dict)
    # per arm: distance to the k most similar patients, the cohort's 99% threshold, the fields
    # that set the profile apart (hte.pipeline.profile_support)
    joint_support: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        from hte.runs import round_floats

        return round_floats(self)


# --------------------------------------------------------------------------------------------------
# Per-arm numbers that agree with the effect estimates


def _arm_members(ens: CoxArmEnsemble, arr: np.ndarray) -> dict:
    """The prognosis model's per-arm survival curves, every bootstrap member (row 0 the
    full fit): arm -> (B + 1, len(grid))."""
    return {arm: ens.survival(arr, arm)[:, 0, :] for arm in ARMS}


def coherent_survival(
    ens: CoxArmEnsemble | None, alpha: float, arr: np.ndarray, h_surv, h_rmst, surv_diff, rmst_diff
) -> tuple:
    """Curves, per-arm survival at the horizon and per-arm RMST that agree with the effect
    estimates by construction (``hte.pipeline.profile_arms.match_curves``), and what the
    prognosis model alone said."""
    if ens is None:
        return None, (None, None), (None, None), {}
    members = _arm_members(ens, arr)
    grid = ens.grid
    match = match_curves(
        grid,
        members["cart"][0],
        members["tec"][0],
        h_surv,
        None if surv_diff is None else surv_diff.value,
        h_rmst,
        None if rmst_diff is None else rmst_diff.value,
    )
    curves: dict[str, Any] = {"times": grid}
    scaled = {}
    for arm in ARMS:
        scaled[arm] = match.scales[arm].apply(grid, members[arm])
        point, lower, upper = percentile_band(scaled[arm], alpha)
        curves[arm] = {"survival": point, "lower": lower, "upper": upper}
    curves["band"] = (
        f"{100 * (1 - alpha):g}% pointwise bootstrap percentile band "
        f"({ens.n_bootstrap} refits) of the per-arm prognosis model (ridge Cox), scaled to "
        "agree with the effect estimates: the sampling uncertainty of each arm's level, not "
        "a prediction interval for one patient"
    )
    source = "per-arm prognosis model (ridge Cox), adjusted to the effect estimate"
    at_h = _grid_index(grid, h_surv)
    survival: tuple = (None, None)
    if at_h is not None:
        values = (
            (match.survival.cart, match.survival.tec)
            if match.survival is not None
            else (scaled["cart"][0, at_h], scaled["tec"][0, at_h])
        )
        survival = tuple(
            _banded(value, scaled[arm][1:, at_h], alpha, source)
            for value, arm in zip(values, ARMS, strict=True)
        )
    rmst: tuple = (None, None)
    if _grid_index(grid, h_rmst) is not None:
        areas = {a: restricted_mean(grid, scaled[a], h_rmst) for a in scaled}
        rmst = tuple(_banded(float(areas[a][0]), areas[a][1:], alpha, source) for a in ARMS)
    own = {}
    if at_h is not None:
        own["survival"] = {a: float(members[a][0, at_h]) for a in members}
    if _grid_index(grid, h_rmst) is not None:
        own["rmst"] = {a: float(restricted_mean(grid, members[a][0], h_rmst)) for a in members}
    coherence = {"prognosis_model": own, "rmst_matched": match.rmst_matched}
    return curves, survival, rmst, coherence


def _grid_index(grid: np.ndarray, horizon: float | None) -> int | None:
    if horizon is None:
        return None
    k = int(np.argmin(np.abs(grid - horizon)))
    return k if abs(grid[k] - horizon) <= 1e-9 else None


def arm_risks(ens: LogisticArmEnsemble | None, alpha: float, arr: np.ndarray, difference) -> tuple:
    """Per-arm CRS risks agreeing with the effect estimate (the closest pair to the prognosis
    model's with that difference), their bands shifted on the logit scale, and the
    prognosis model's own pair."""
    if ens is None:
        return None, None, None
    members = {arm: ens.risk(arr, arm)[:, 0] for arm in ARMS}
    own = {arm: float(members[arm][0]) for arm in members}
    source = "per-arm prognosis model (ridge logistic)"
    if difference is not None:
        split = split_difference(own["cart"], own["tec"], difference.value)
        members = {
            "cart": shift_risks(members["cart"], split.cart),
            "tec": shift_risks(members["tec"], split.tec),
        }
        source += ", adjusted to the effect estimate"
    out = []
    for arm in ARMS:
        point, lower, upper = percentile_band(members[arm], alpha)
        out.append(Estimate(float(point), float(lower), float(upper), source))
    return out[0], out[1], own


def _banded(value: float, members: np.ndarray, alpha: float, source: str) -> Estimate:
    """An adjusted value with the percentile band of its bootstrap members (widened to hold
    the value)."""
    lower, upper = linear_quantiles(members, [alpha / 2, 1 - alpha / 2])
    return Estimate(float(value), float(min(lower, value)), float(max(upper, value)), source)


def finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def plain_value(v: object) -> object:
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _count(p: float) -> int:
    return int(np.clip(round(100 * p), 0, 100))


def summary_text(h, s_cart, s_tec, crs_cart, crs_tec, overlap) -> tuple[str, dict]:
    """The plain-language summary and the icon-array counts (out of 100), both from the per-arm
    numbers (which agree with the effect estimates by construction)."""
    parts, icons = [], {}
    if s_cart is not None and s_tec is not None:
        a, b = _count(s_cart.value), _count(s_tec.value)
        parts.append(
            f"Out of 100 patients like this, about {a} would be alive at {h:g} months with CAR-T "
            f"and {b} with teclistamab"
        )
        icons["survival"] = {
            "horizon_months": h,
            "cart": {"alive": a, "dead": 100 - a},
            "tec": {"alive": b, "dead": 100 - b},
        }
    if crs_cart is not None and crs_tec is not None:
        a, b = _count(crs_cart.value), _count(crs_tec.value)
        icons["crs"] = {"cart": {"crs": a, "no_crs": 100 - a}, "tec": {"crs": b, "no_crs": 100 - b}}
        z = abs(a - b)
        more = "more" if a > b else "fewer"
        crs_text = (
            f"about {z} {more} would have CRS with CAR-T than with teclistamab ({a} vs {b})"
            if z
            else f"about as many would have CRS with either treatment ({a} vs {b})"
        )
        parts.append(crs_text if parts else crs_text[0].upper() + crs_text[1:])
    text = "; ".join(parts) + "." if parts else "No outcome model is available for this analysis."
    if overlap:
        text += " Caution: few patients like this received both treatments in the cohort."
    return text, icons
