"""One coherent answer per profile: per-arm numbers that agree with the chosen effect model.

The profile explorer shows, for one outcome, an effect (CAR-T minus teclistamab, from the model
the run chose by held-out doubly robust loss) beside per-arm survival curves and CRS risks. The
effect models give only a difference; the per-arm levels come from a prognosis model (ridge Cox /
logistic per arm, ``hte.estimators.prognosis``). Shown side by side unchanged they can
disagree, even in sign. Here the per-arm numbers are made to agree with the effect by
construction, changing the prognosis model's numbers as little as possible:

- **a point difference** (survival at h, CRS risk): the pair ``(q1, q0)`` closest in squared
  distance to the prognosis pair ``(p1, p0)`` with ``q1 - q0 = tau`` and both in their bounds
  (``split_difference``; a one-dimensional convex problem, solved by clipping);
- **curves**: each arm's cumulative hazard is scaled piecewise, by ``k1`` up to the survival
  horizon and by ``k2`` after it (``S(t) = exp(-k1 H(t))``, then continued with ``k2``), so the
  curve passes through the adjusted survival at the horizon and the difference of the areas
  under the curves up to the RMST horizon equals the RMST effect (``match_curves``). The scaling
  is monotone, keeps ``S(0) = 1`` and keeps curves non-increasing.

The size of each adjustment is returned, so the app can say how far the prognosis model alone
was from the effect model ("the difference explained").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

EPS = 1e-12
MAX_SCALE = 1e6  # largest cumulative-hazard scale tried when matching an area
SMALLEST_SCALE = 1e-12  # below it, the search is on the scale itself, not its logarithm
# precision of log(scale): a relative change of 1e-13 moves an area up to 36 months by < 1e-11
LOG_SCALE_TOL = 1e-13
MAX_ITERATIONS = 200


@dataclass(frozen=True)
class Split:
    """Adjusted per-arm values with ``cart - tec == difference`` (when ``feasible``)."""

    cart: float
    tec: float
    feasible: bool  # False: no pair within the bounds has this difference (closest one given)


def split_difference(
    p_cart: float,
    p_tec: float,
    difference: float,
    bounds_cart: tuple[float, float] = (0.0, 1.0),
    bounds_tec: tuple[float, float] = (0.0, 1.0),
) -> Split:
    """The pair closest to ``(p_cart, p_tec)`` (least squares) whose difference is
    ``difference`` with each value inside its bounds. Minimising ``(q1 - p1)^2 + (q0 - p0)^2``
    under ``q1 = q0 + d`` gives ``q0 = (p0 + p1 - d) / 2``; the bounds make an interval for
    ``q0``, and the minimiser of a convex quadratic over an interval is the clipped one."""
    d = float(difference)
    lo = max(bounds_tec[0], bounds_cart[0] - d)
    hi = min(bounds_tec[1], bounds_cart[1] - d)
    q0 = (float(p_tec) + float(p_cart) - d) / 2.0
    if lo > hi:  # infeasible: the closest difference the bounds allow
        q0 = float(np.clip(q0, bounds_tec[0], bounds_tec[1]))
        q1 = float(np.clip(q0 + d, bounds_cart[0], bounds_cart[1]))
        return Split(q1, q0, False)
    q0 = float(np.clip(q0, lo, hi))
    return Split(q0 + d, q0, True)


def restricted_mean(grid: np.ndarray, survival: np.ndarray, horizon: float) -> np.ndarray:
    """Area under step curves (right-continuous, held from each grid point to the next) from 0
    to ``horizon``; ``survival`` is (..., len(grid))."""
    widths = np.clip(np.minimum(np.append(grid[1:], np.inf), horizon) - grid, 0.0, None)
    return np.asarray(survival) @ widths


@dataclass(frozen=True)
class CurveScale:
    """How one arm's cumulative hazard ``H`` is changed: up to ``knot``
    ``k1 H(knot) (H(t) / H(knot)) ** gamma`` (so ``gamma`` reshapes the curve before the knot
    without moving its value there), after it ``+ k2 (H(t) - H(knot))``. Without a knot,
    ``k1 H(t)`` everywhere."""

    k1: float
    k2: float
    knot: float | None  # the survival horizon (None: one scale everywhere)
    gamma: float = 1.0

    def apply(self, grid: np.ndarray, survival: np.ndarray) -> np.ndarray:
        """The changed curves of ``survival`` (..., len(grid))."""
        H = -np.log(np.clip(survival, EPS, 1.0))
        if self.knot is None:
            return np.exp(-self.k1 * H)
        at = int(np.searchsorted(grid, self.knot))
        H_knot = np.maximum(H[..., at : at + 1], EPS)
        ratio = np.clip(H / H_knot, 0.0, 1.0)
        before = self.k1 * H_knot * (ratio if self.gamma == 1.0 else ratio**self.gamma)
        after = self.k1 * H_knot + self.k2 * (H - H_knot)
        return np.exp(-np.where(grid > self.knot, after, before))


def _scale_to_point(s_model: float, s_target: float) -> float:
    """k with ``s_model ** k == s_target`` (clipped away from 0 and 1)."""
    a = np.log(np.clip(s_model, EPS, 1 - 1e-15))
    b = np.log(np.clip(s_target, EPS, 1.0))
    return float(b / a) if a < 0 else 1.0


def _area(grid, survival, scale: CurveScale, horizon) -> float:
    return float(restricted_mean(grid, scale.apply(grid, survival), horizon))


def _solve_decreasing(area_of, lo: float, hi: float, target: float) -> float:
    """The parameter in [lo, hi] where the decreasing ``area_of`` reaches ``target`` (an end
    when the target is beyond it). Brent's method on the logarithm of the parameter (the
    bracket spans orders of magnitude, and the area is smooth in log scale): about a dozen
    evaluations where halving the bracket took forty."""
    if area_of(lo) <= target:
        return lo
    if area_of(hi) >= target:
        return hi
    floor = max(lo, SMALLEST_SCALE)
    if area_of(floor) <= target:  # between lo and a scale of 1e-12: halve the small bracket
        return brentq(lambda k: area_of(k) - target, lo, floor, xtol=EPS * SMALLEST_SCALE)
    log_scale = brentq(
        lambda u: area_of(math.exp(u)) - target,
        math.log(floor),
        math.log(hi),
        xtol=LOG_SCALE_TOL,
        rtol=4 * np.finfo(float).eps,
        maxiter=MAX_ITERATIONS,
    )
    return math.exp(log_scale)


class _KnotArea:
    """The area up to ``horizon`` of one curve under ``CurveScale(k1, k2, knot, gamma)`` as a
    cheap function of (k2, gamma): the grid terms are computed once (a search calls it
    a dozen or more times per arm and query). Equal to ``_area`` (checked in the tests)."""

    def __init__(self, grid, survival, k1, knot, horizon):
        H = -np.log(np.clip(np.asarray(survival, float), EPS, 1.0))
        at = int(np.searchsorted(grid, knot))
        self.hk = max(H[at], EPS)
        widths = np.clip(np.minimum(np.append(grid[1:], np.inf), horizon) - grid, 0.0, None)
        after = grid > knot
        self.w_before, self.w_after = widths[~after], widths[after]
        self.ratio = np.clip(H[~after] / self.hk, 0.0, 1.0)
        self.d_after = H[after] - self.hk
        self.k1 = k1
        self._before_at_one = None

    def __call__(self, k2: float, gamma: float = 1.0) -> float:
        if gamma == 1.0:  # the part before the knot does not move with k2: computed once
            if self._before_at_one is None:
                self._before_at_one = self.w_before @ np.exp(-self.k1 * self.hk * self.ratio)
            before = self._before_at_one
        else:
            before = self.w_before @ np.exp(-self.k1 * self.hk * self.ratio**gamma)
        after = self.w_after @ np.exp(-self.k1 * self.hk - k2 * self.d_after)
        return float(before + after)


def _solve_after_knot(grid, survival, k1, knot, horizon, target_area) -> CurveScale:
    """The scale reaching ``target_area`` up to ``horizon`` with the value at the knot fixed:
    ``k2`` first (the curve after the knot); when that is not enough, ``k2`` at its end and the
    shape before the knot (``gamma``: smaller drops earlier, larger holds longer)."""
    area = _KnotArea(grid, survival, k1, knot, horizon)
    lowest, highest = area(MAX_SCALE), area(0.0)
    if lowest <= target_area <= highest:
        return CurveScale(k1, _solve_decreasing(area, 0.0, MAX_SCALE, target_area), knot)
    k2 = MAX_SCALE if target_area < lowest else 0.0
    # area increases with gamma: search on 1 / gamma so that the area function decreases
    inverse = _solve_decreasing(lambda g: area(k2, 1 / g), 1 / MAX_SCALE, MAX_SCALE, target_area)
    return CurveScale(k1, k2, knot, 1 / inverse)


def _area_range(grid, survival, k1, knot, horizon) -> tuple[float, float]:
    area = _KnotArea(grid, survival, k1, knot, horizon)
    return area(MAX_SCALE, 1 / MAX_SCALE), area(0.0, MAX_SCALE)


@dataclass(frozen=True)
class CurveMatch:
    """Scales per arm and the adjusted values they reach (``None`` where not matched)."""

    scales: dict[str, CurveScale]
    survival: Split | None  # adjusted S_cart(h), S_tec(h)
    rmst: Split | None  # adjusted RMST_cart(h_r), RMST_tec(h_r)
    rmst_matched: bool


def match_curves(
    grid: np.ndarray,
    cart: np.ndarray,
    tec: np.ndarray,
    survival_horizon: float | None,
    survival_difference: float | None,
    rmst_horizon: float | None,
    rmst_difference: float | None,
) -> CurveMatch:
    """Scales of each arm's prognosis curve (``cart``, ``tec``: (len(grid),)) so that the scaled
    curves agree with the survival difference at ``survival_horizon`` and the RMST difference up
    to ``rmst_horizon`` (each optional; a horizon off the grid is not matched). The survival
    point is matched first (the adjusted pair closest to the model's); the RMST through the
    hazard scale after the survival horizon, its correction split between the arms by least
    squares within what each curve can reach."""
    grid = np.asarray(grid, dtype=float)
    curves = {"cart": np.asarray(cart, float), "tec": np.asarray(tec, float)}

    def on_grid(h) -> bool:  # np.isclose's tolerances, without its overhead
        return h is not None and bool(np.any(np.abs(grid - h) <= 1e-8 + 1e-5 * abs(h)))

    knot = float(survival_horizon) if on_grid(survival_horizon) else None
    point = None
    k1 = {"cart": 1.0, "tec": 1.0}
    if knot is not None and survival_difference is not None and np.isfinite(survival_difference):
        at = int(np.argmin(np.abs(grid - knot)))
        point = split_difference(curves["cart"][at], curves["tec"][at], survival_difference)
        k1 = {
            "cart": _scale_to_point(curves["cart"][at], point.cart),
            "tec": _scale_to_point(curves["tec"][at], point.tec),
        }
    scales = {arm: CurveScale(k1[arm], k1[arm], knot) for arm in curves}
    rmst, matched = None, False
    usable_rmst = (
        on_grid(rmst_horizon) and rmst_difference is not None and np.isfinite(rmst_difference)
    )
    if usable_rmst and (knot is None or rmst_horizon > knot):
        h = float(rmst_horizon)
        now = {a: _area(grid, curves[a], scales[a], h) for a in curves}
        if knot is None:  # one scale over the whole curve
            ranges = {
                a: (
                    _area(grid, curves[a], CurveScale(MAX_SCALE, 0, None), h),
                    _area(grid, curves[a], CurveScale(0.0, 0, None), h),
                )
                for a in curves
            }
        else:
            ranges = {a: _area_range(grid, curves[a], k1[a], knot, h) for a in curves}
        rmst = split_difference(
            now["cart"], now["tec"], rmst_difference, ranges["cart"], ranges["tec"]
        )
        matched = rmst.feasible
        targets = {"cart": rmst.cart, "tec": rmst.tec}
        for arm in curves:
            if knot is None:
                k = _solve_k1_area(grid, curves[arm], h, targets[arm])
                scales[arm] = CurveScale(k, k, None)
            else:
                scales[arm] = _solve_after_knot(grid, curves[arm], k1[arm], knot, h, targets[arm])
    return CurveMatch(scales, point, rmst, matched)


def _solve_k1_area(grid, survival, horizon, target_area) -> float:
    at_k = lambda k: _area(grid, survival, CurveScale(k, k, None), horizon)  # noqa: E731
    return _solve_decreasing(at_k, 0.0, MAX_SCALE, target_area)


def shift_risks(members: np.ndarray, target: float) -> np.ndarray:
    """Members of a risk ensemble (member 0 the point) shifted on the logit scale so that member 0
    equals ``target`` (a band for an adjusted risk that stays in [0, 1])."""
    p = np.clip(np.asarray(members, dtype=float), EPS, 1 - EPS)
    logit = np.log(p) - np.log1p(-p)
    t = float(np.clip(target, EPS, 1 - EPS))
    shift = (np.log(t) - np.log1p(-t)) - logit[0]
    out = 1.0 / (1.0 + np.exp(-(logit + shift)))
    out[0] = target
    return out
