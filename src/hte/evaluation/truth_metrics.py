"""Accuracy of per-patient effect estimates against simulated truth (benchmarks, not real data).

All functions take 1-d arrays of equal length. Point estimates and truth must be finite; interval
bounds may be NaN where an estimator offers no interval: such rows are left out of the interval
metrics, and a metric with no interval at all is NaN.
"""

from __future__ import annotations

import numpy as np

from hte.estimators.result import EffectEstimate


def _vector(x, name: str, n: int | None = None, *, allow_nan: bool = False) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1 or arr.size == 0 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "a non-empty 1-d shape"
        raise ValueError(f"{name} must have shape {want}; got {arr.shape}")
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} has non-finite values in rows {np.flatnonzero(bad)[:5].tolist()}"
            + ("" if allow_nan else " (NaN not allowed here)")
        )
    return arr


def _pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    t = _vector(truth, "truth")
    return _vector(pred, "pred", t.shape[0]), t


def _bounds(lower, upper, n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = _vector(lower, "lower", n, allow_nan=True)
    hi = _vector(upper, "upper", lo.shape[0], allow_nan=True)
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    inverted = ok & (lo > hi)
    if inverted.any():
        raise ValueError(f"lower > upper in rows {np.flatnonzero(inverted)[:5].tolist()}")
    return lo, hi, ok


def truth_is_constant(truth) -> bool:
    """True when the true effect does not vary beyond floating-point noise.

    Exact truths computed by quadrature carry round-off (~1e-16) even when the effect is null, so
    an exact ``Var == 0`` test would call such a truth heterogeneous and divide by ~1e-32.
    """
    t = np.asarray(truth, dtype=float)
    scale = max(1.0, float(np.max(np.abs(t)))) if t.size else 1.0
    return float(np.std(t)) <= 1e-9 * scale


def mse(pred, truth) -> float:
    """Mean squared error of the per-patient effect."""
    p, t = _pair(pred, truth)
    return float(np.mean((p - t) ** 2))


def normalized_mse(pred, truth) -> float:
    """MSE / Var(truth) (population variance): 0 is perfect, 1 = predicting the true mean."""
    p, t = _pair(pred, truth)
    var = float(np.var(t))
    if truth_is_constant(t):
        raise ValueError(
            "the true effect is the same for every patient (Var(truth) = 0), so the normalized "
            "MSE is undefined; use mse() instead"
        )
    return float(np.mean((p - t) ** 2)) / var


def ate_bias(pred, truth) -> float:
    """Mean estimated effect minus mean true effect over the same patients."""
    p, t = _pair(pred, truth)
    return float(p.mean() - t.mean())


def interval_coverage(lower, upper, truth) -> float:
    """Share of patients (with an interval) whose true effect is in [lower, upper]; NaN if none."""
    t = _vector(truth, "truth")
    lo, hi, ok = _bounds(lower, upper, t.shape[0])
    if not ok.any():
        return float("nan")
    return float(np.mean((lo[ok] <= t[ok]) & (t[ok] <= hi[ok])))


def interval_width(lower, upper) -> float:
    """Mean width upper - lower over patients with an interval; NaN if none has one."""
    lo, hi, ok = _bounds(lower, upper)
    return float(np.mean(hi[ok] - lo[ok])) if ok.any() else float("nan")


def share_excluding_zero(lower, upper) -> float:
    """Share of patients (with an interval) whose interval excludes 0 (lower > 0 or upper < 0)."""
    lo, hi, ok = _bounds(lower, upper)
    if not ok.any():
        return float("nan")
    return float(np.mean((lo[ok] > 0) | (hi[ok] < 0)))


def truth_metrics(estimate: EffectEstimate, truth) -> dict:
    """All metrics for one estimate against the true per-patient effects, as a flat dict.

    Keys: estimator, target, horizon, alpha, n, mse, rmse, normalized_mse, correlation,
    ate_estimate, ate_true, ate_bias, coverage, mean_width, share_excluding_zero, n_with_interval,
    note. ``note`` explains any NaN (no intervals, constant truth or estimate).
    """
    p, t = _pair(estimate.effect, truth)
    lo, hi, ok = _bounds(estimate.lower, estimate.upper, t.shape[0])
    notes = []
    err = float(np.mean((p - t) ** 2))
    constant = truth_is_constant(t)
    if not constant:
        nmse = err / float(np.var(t))
    else:
        nmse = float("nan")
        notes.append("true effect is constant: normalized_mse undefined (see mse)")
    if not constant and np.var(p) > 0:
        corr = float(np.corrcoef(p, t)[0, 1])
    else:
        corr = float("nan")
        notes.append("estimate or truth is constant: correlation undefined")
    n_int = int(ok.sum())
    if n_int == 0:
        notes.append(f"{estimate.estimator} gives no intervals: coverage, width and share NaN")
    elif n_int < t.shape[0]:
        notes.append(
            f"intervals missing for {t.shape[0] - n_int} of {t.shape[0]} patients: "
            "interval metrics use the rest"
        )
    return {
        "estimator": estimate.estimator,
        "target": estimate.target,
        "horizon": estimate.horizon,
        "alpha": estimate.alpha,
        "n": int(t.shape[0]),
        "mse": err,
        "rmse": float(np.sqrt(err)),
        "normalized_mse": nmse,
        "correlation": corr,
        "ate_estimate": float(p.mean()),
        "ate_true": float(t.mean()),
        "ate_bias": float(p.mean() - t.mean()),
        "coverage": interval_coverage(lo, hi, t),
        "mean_width": interval_width(lo, hi),
        "share_excluding_zero": share_excluding_zero(lo, hi),
        "n_with_interval": n_int,
        "note": "; ".join(notes),
    }
