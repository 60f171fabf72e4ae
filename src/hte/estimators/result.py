"""The one result type every estimator returns, so evaluation, reports and the app read them alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SurvivalCurves:
    """Counterfactual survival curves per patient: ``surv_cart[i, k] = S_cart(times[k] | x_i)``."""

    times: np.ndarray  # (m,) months, increasing
    surv_cart: np.ndarray  # (n, m)
    surv_tec: np.ndarray  # (n, m)
    lower_cart: np.ndarray | None = None  # optional pointwise bands, (n, m)
    upper_cart: np.ndarray | None = None
    lower_tec: np.ndarray | None = None
    upper_tec: np.ndarray | None = None


@dataclass(frozen=True)
class EffectEstimate:
    """Per-patient effect of CAR-T versus teclistamab with a (1 - alpha) interval.

    ``target`` names the estimand: ``"rmst"`` (RMST difference up to ``horizon`` months),
    ``"survival"`` (difference in probability of surviving past ``horizon``), ``"crs"`` or
    ``"crs_g3"`` (risk difference). Intervals may be NaN where an estimator offers none.
    """

    effect: np.ndarray  # (n,)
    lower: np.ndarray  # (n,)
    upper: np.ndarray  # (n,)
    target: str
    horizon: float | None
    alpha: float
    estimator: str
    curves: SurvivalCurves | None = None

    def __post_init__(self) -> None:
        n = np.shape(self.effect)[0]
        for name in ("lower", "upper"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"EffectEstimate.{name} must have shape ({n},)")


class IntervalEstimateMixin:
    """``estimate(X, alpha)`` built from the estimator's own ``predict`` and ``predict_interval``.

    Subclasses say what the effect is through ``_estimate_labels() -> (target, horizon, name)``.
    """

    def _estimate_labels(self) -> tuple[str, float | None, str]:
        raise NotImplementedError

    def estimate(self, X, alpha: float = 0.05) -> EffectEstimate:
        """Per-patient effects with their (1 - alpha) intervals as the shared result type."""
        lower, upper = self.predict_interval(X, alpha)
        target, horizon, name = self._estimate_labels()
        return EffectEstimate(
            effect=self.predict(X),
            lower=lower,
            upper=upper,
            target=target,
            horizon=horizon,
            alpha=alpha,
            estimator=name,
        )
