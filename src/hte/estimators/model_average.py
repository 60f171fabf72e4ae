"""An equal-weight average of CATE learners already fitted for the same target (issue 10).

Learners from different families err differently: on the synthetic RRMM cohort (n = 2,000) the
Bayesian causal forest, the gradient-boosted S-learner and Cox with interactions each reach a
normalized MSE of 0.35-0.53, and their plain average 0.27-0.29 (docs/model_average.md). The
weights are fixed in advance, not fitted: a stack whose weights are estimated from the same
2,000 patients was noisier than any of its members (experiments/benchmarks/learner_selection.md).

The average's interval (``widened_band``) is the ``interval_member``'s own (1 - alpha) interval
around the average, each half widened by the members' disagreement: a half-width h becomes
sqrt(h^2 + z^2 v), with v the variance of the members' estimates for that patient and z the
normal quantile of the level. This is the law of total variance for a model average (within one
model, plus between the models), with the interval member's spread standing in for every
member's own. It is not an interval derived for the average: its coverage of the true effect is
measured on the synthetic cohort (0.96 / 0.95 over ten cohorts of 2,000, no patient's band
excluding 0 under the null; the member's band merely moved to the average covered 0.93 / 0.91
and excluded 0 for 4-15% under the null: docs/model_average.md). Without an interval member the
interval is NaN.

The members are fitted elsewhere (``hte.pipeline.stages.fit_estimators``) and passed in fitted;
``fit`` is not offered, and the run's held-out effects of an average are the average of its
members' held-out effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from hte.array_checks import check_covariates, check_feature_names
from hte.estimators.result import EffectEstimate

__all__ = ["ModelAverage", "average_estimates", "moved_band", "widened_band"]


def moved_band(average, own, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """A member's interval (``lower``, ``upper`` around its estimate ``own``) moved to the
    average: the same distances below and above, taken around ``average``."""
    own = np.asarray(own, dtype=float)
    return average - (own - np.asarray(lower, dtype=float)), average + (
        np.asarray(upper, dtype=float) - own
    )


def widened_band(
    average, own, lower, upper, member_effects, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """A member's (1 - alpha) interval around the average, each half widened to
    ``sqrt(half^2 + z^2 * v)`` with ``v`` the variance of ``member_effects`` (members x rows)
    per row: within-model plus between-model spread (module docstring). Members that agree give
    the moved band (``moved_band``)."""
    own = np.asarray(own, dtype=float)
    between = np.var(np.asarray(member_effects, dtype=float), axis=0)
    z2 = norm.ppf(1 - alpha / 2) ** 2
    below = np.sqrt((own - np.asarray(lower, dtype=float)) ** 2 + z2 * between)
    above = np.sqrt((np.asarray(upper, dtype=float) - own) ** 2 + z2 * between)
    return average - below, average + above


class ModelAverage:
    """The equal-weight average of fitted learners' ``predict`` (see the module docstring).

    ``members``: member name -> fitted estimator with ``predict(X)``; ``interval_member``: the
    member whose ``predict_interval`` gives the band (None: no interval); ``target`` and
    ``horizon`` name the estimand, as every member's."""

    def __init__(
        self,
        members: Mapping[str, Any] | None = None,
        interval_member: str | None = None,
        target: str = "rmst",
        horizon: float | None = None,
    ):
        self.members = members
        self.interval_member = interval_member
        self.target = target
        self.horizon = horizon

    def _checked_members(self) -> dict[str, Any]:
        members = dict(self.members or {})
        if len(members) < 2:
            raise ValueError(f"a model average needs at least 2 members, got {len(members)}")
        if self.interval_member is not None and self.interval_member not in members:
            raise ValueError(
                f"interval_member {self.interval_member!r} is not a member "
                f"(members: {', '.join(members)})"
            )
        return members

    def _rows(self, X):
        """A frame's covariates checked once (numeric, the members' fitted names) and handed to
        the members as an array: each member's own check of a one-row frame cost ~0.2 ms."""
        if not isinstance(X, pd.DataFrame):
            return X
        arr, names = check_covariates(X, allow_nan=True)  # the members check NaN themselves
        for name, member in self._checked_members().items():
            fitted = getattr(member, "feature_names_in_", None)
            check_feature_names(names, fitted, f"{type(member).__name__} ({name})")
        return arr

    def _member_effects(self, rows) -> dict[str, np.ndarray]:
        members = self._checked_members()
        return {n: np.asarray(m.predict(rows), dtype=float) for n, m in members.items()}

    def _average_and_band(self, X, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The average and its widened interval, each member predicted once (an interval member
        with ``predict_with_interval``, BCF, gives both from one pass over its draws)."""
        rows = self._rows(X)
        members = self._checked_members()
        effects, band = {}, None
        for name, member in members.items():
            if name == self.interval_member and hasattr(member, "predict_with_interval"):
                effects[name], *band = member.predict_with_interval(rows, alpha)
            else:
                effects[name] = np.asarray(member.predict(rows), dtype=float)
        average = np.mean(list(effects.values()), axis=0)
        if self.interval_member is None:
            return average, np.full(average.shape, np.nan), np.full(average.shape, np.nan)
        if band is None:
            band = members[self.interval_member].predict_interval(rows, alpha)
        spread = list(effects.values())
        return average, *widened_band(average, effects[self.interval_member], *band, spread, alpha)

    def predict(self, X) -> np.ndarray:
        """The members' mean effect per row of X."""
        return np.mean(list(self._member_effects(self._rows(X)).values()), axis=0)

    def predict_interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """The interval member's (1 - alpha) interval around the average, widened by the
        members' spread (``widened_band``; NaN without an interval member)."""
        _, lower, upper = self._average_and_band(X, alpha)
        return lower, upper

    def interval_words(self, level: float) -> str:
        """What the interval is, in words (the explorer shows it beside the band)."""
        names = ", ".join(self._checked_members())
        if self.interval_member is None:
            return f"none (the average of {names} has no interval)"
        return (
            f"{self.interval_member}'s own {level:g}% interval around the average of {names}, "
            "widened where they disagree (that model's spread plus theirs, not an interval "
            "derived for the average)"
        )

    def estimate(self, X, alpha: float = 0.05) -> EffectEstimate:
        """Per-patient average effects with the widened interval, as the shared result type."""
        average, lower, upper = self._average_and_band(X, alpha)
        return EffectEstimate(
            effect=average,
            lower=lower,
            upper=upper,
            target=self.target,
            horizon=self.horizon,
            alpha=alpha,
            estimator="model average",
        )


def average_estimates(
    estimates: Mapping[str, EffectEstimate], interval_member: str | None
) -> EffectEstimate:
    """The average of members' estimates on the same rows, with the interval member's interval
    widened around it: what ``ModelAverage.estimate`` gives, from estimates already computed."""
    if len(estimates) < 2:
        raise ValueError(f"a model average needs at least 2 members, got {len(estimates)}")
    first = next(iter(estimates.values()))
    for name, est in estimates.items():
        if (est.target, est.horizon, est.alpha) != (first.target, first.horizon, first.alpha):
            raise ValueError(f"member {name!r} estimates another target, horizon or alpha")
    effects = [np.asarray(e.effect, dtype=float) for e in estimates.values()]
    average = np.mean(effects, axis=0)
    if interval_member is None:
        lower, upper = np.full(average.shape, np.nan), np.full(average.shape, np.nan)
    else:
        own = estimates[interval_member]
        lower, upper = widened_band(average, own.effect, own.lower, own.upper, effects, first.alpha)
    return EffectEstimate(
        effect=average,
        lower=lower,
        upper=upper,
        target=first.target,
        horizon=first.horizon,
        alpha=first.alpha,
        estimator="model average",
    )
