"""The slope gate of the model choice: does a learner's held-out ranking of patients by benefit
find differences the held-out outcomes confirm?

Each learner's held-out calibration slope (OLS of the doubly robust scores Gamma on its held-out
predictions, heteroskedasticity-robust standard error; Chernozhukov et al.'s best linear
predictor slope) is tested one-sided against 0. The learners' tests share a family-wise level
``SLOPE_GATE_LEVEL``: evenly (Bonferroni, ``slope_gate_z``), or, when one learner is named in
advance, ``PREFERRED_SHARE`` of it for that learner and the rest evenly for the others
(``preferred_gate_bounds``). Either way the chance that some learner passes when no patient
differs is at most the level, and a test of the learner a run would show is not diluted by the
learners it would not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import norm

from hte.evaluation.benefit_calibration import calibration_slope

SLOPE_GATE_LEVEL = 0.025  # family-wise one-sided level of the slope gate
PREFERRED_SHARE = 0.8  # of that level, spent on the learner named in advance (when there is one)


def slope_gate_z(n_learners: int, level: float = SLOPE_GATE_LEVEL) -> float:
    """One-sided Bonferroni bound for ``n_learners`` slope tests at family-wise ``level``."""
    return float(norm.ppf(1 - level / max(n_learners, 1)))


def preferred_gate_bounds(
    n_learners: int, level: float = SLOPE_GATE_LEVEL, share: float = PREFERRED_SHARE
) -> tuple[float, float]:
    """One-sided bounds of the slope gate when one of ``n_learners`` is named in advance: that
    learner's, at ``share`` of the family-wise ``level``, and each other learner's, at an even
    part of the rest (weighted Bonferroni: the levels sum to ``level``)."""
    others = max(n_learners - 1, 1)
    return (
        float(norm.ppf(1 - level * share)),
        float(norm.ppf(1 - level * (1 - share) / others)),
    )


def slope_gate(
    ranked: Sequence[tuple[str, float]],
    gamma: np.ndarray,
    heldout: Mapping[str, np.ndarray],
    loss_name: str,
    bound: float,
    own: tuple[str, float] | None = None,
) -> tuple[str | None, str, float, str]:
    """The lowest-loss learner whose held-out calibration slope exceeds 0 by more than
    ``bound`` standard errors, or None (show the constant effect); ``ranked``: (learner, held-out
    loss), lowest loss first. With ``own`` (a learner named in advance and its bound) that
    learner is tested first against its own bound, and shown when it passes. Returns the choice,
    the reason, and the z statistic and learner of the deciding test."""
    z = {}
    for name, _ in ranked:
        slope, slope_se = calibration_slope(heldout[name], gamma)
        z[name] = slope / slope_se if slope_se > 0 else 0.0
    if own is not None:
        name, own_bound = own
        if z[name] > own_bound:
            return (
                name,
                f"the prespecified {name}'s held-out predictions rank patients by benefit as "
                f"their outcomes do (calibration slope > 0 by {z[name]:.1f} SE > "
                f"{own_bound:.2f}, its share of the gate's level)",
                z[name],
                name,
            )
    passing = [
        (name, loss) for name, loss in ranked if z[name] > bound and (own is None or name != own[0])
    ]
    if passing:
        best, loss = passing[0]
        return (
            best,
            f"{best} has the lowest held-out {loss_name} ({loss:.4g}) of the learners "
            f"whose held-out predictions rank patients by benefit as their outcomes do "
            f"(calibration slope > 0 by {z[best]:.1f} SE > {bound:.2f})",
            z[best],
            best,
        )
    top = max(z, key=lambda k: (z[k], k))
    asked = (
        f"more than {own[1]:.2f} for the prespecified {own[0]}, {bound:.2f} for the others"
        if own is not None
        else f"more than {bound:.2f}"
    )
    return (
        None,
        f"no learner's held-out predictions rank patients by benefit beyond chance (largest "
        f"calibration-slope z: {top}, {z[top]:.1f} SE; the rule asks {asked}): "
        "this cohort does not support individual differences; showing the average effect",
        z[top],
        top,
    )
