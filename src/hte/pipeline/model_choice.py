"""Which model the run shows per target, and how sure it is (issue 10).

Per target with doubly robust scores (``hte.pipeline.target_scores.target_scores``), from the
fits' held-out (``evaluation.heldout_folds``-fold cross-fitted) effects (``all_heldout_effects``):

* learner selection by held-out DR loss against a held-out constant effect, with the stack
  (``hte.evaluation.selection``);
* calibration for benefit of every learner's held-out predictions (quintiles, intercept and
  slope, E- and c-for-benefit; ``hte.evaluation.benefit_calibration``);
* "patients like this": the chosen model's held-out predicted-benefit quintiles, each with its
  DR estimate and interval, and the cut points that place a new profile's prediction in one.
  When the constant is chosen there is one group, everybody, and its DR estimate.

``model_choices`` returns JSON-ready metrics and a ``ModelChoice`` per target that the profile
explorer uses to pick its effect source.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from hte.estimators.nuisance import aipw_average
from hte.evaluation.benefit_calibration import (
    benefit_calibration,
    calibration_summary,
    group_cuts,
    quantile_groups,
)
from hte.evaluation.selection import (
    CONSTANT,
    LOSSES,
    Residuals,
    Selection,
    select_model,
    selection_summary,
)
from hte.pipeline.stages import AnalysisData, FittedEffect

log = logging.getLogger("hte.pipeline")

N_GROUPS = 5
CONSTANT_WORDS = "this cohort does not support individual differences; showing the average effect"


@dataclass(frozen=True)
class ModelChoice:
    """The chosen model of one target and its "patients like this" groups.

    ``estimator``: the config name of the chosen fit, or ``"constant"``. ``cuts``: boundaries of
    the chosen model's held-out predicted-benefit groups (empty for the constant); ``groups``:
    per group (DR estimate, lower, upper, n)."""

    target: str
    estimator: str
    reason: str
    constant: tuple[float, float, float]
    cuts: tuple[float, ...]
    groups: tuple[tuple[float, float, float, int], ...]
    alpha: float

    @property
    def is_constant(self) -> bool:
        return self.estimator == CONSTANT

    def group_of(self, prediction: float) -> int:
        return int(np.searchsorted(np.asarray(self.cuts), prediction))


def _round(x: float, digits: int = 6) -> float:
    return float(round(float(x), digits))


def _choice(target, chosen, reason, gamma, predictions, alpha) -> ModelChoice:
    constant = aipw_average(gamma, alpha)
    if chosen == CONSTANT:
        return ModelChoice(target, chosen, reason, constant, (), ((*constant, gamma.size),), alpha)
    pred = predictions[chosen]
    groups = quantile_groups(pred, N_GROUPS)
    cuts = tuple(float(c) for c in group_cuts(pred, groups, N_GROUPS))
    per_group = tuple(
        (*aipw_average(gamma[groups == g], alpha), int((groups == g).sum()))
        for g in range(N_GROUPS)
    )
    return ModelChoice(target, chosen, reason, constant, cuts, per_group, alpha)


def _choice_summary(choice: ModelChoice) -> dict:
    return {
        "shown": choice.estimator,
        "statement": CONSTANT_WORDS if choice.is_constant else None,
        "patients_like_this": {
            "cuts": [_round(c) for c in choice.cuts],
            "groups": [
                {"estimate": _round(m), "lower": _round(lo), "upper": _round(hi), "n": n}
                for m, lo, hi, n in choice.groups
            ],
            "method": (
                "the chosen model's held-out predicted-benefit quintiles; per group the mean DR "
                f"score with a {100 * (1 - choice.alpha):g}% normal interval (an interval for "
                "the group's mean effect, not for one patient's)"
                if not choice.is_constant
                else "one group, every patient: the DR estimate of the average effect"
            ),
        },
    }


def _other_loss_summary(selection: Selection) -> dict:
    """What the loss the run did not choose by would have shown (for comparison)."""
    full = selection_summary(selection)
    return {k: full[k] for k in ("loss", "chosen", "reason", "losses")}


def model_choices(
    data: AnalysisData,
    fits: list[FittedEffect],
    scores: dict,
    refits: dict,
    alpha: float,
    seed: int,
    residuals: dict[str, Residuals] | None = None,
    loss: str = "dr",
    gate: str = "slope",
    preferred: str | None = None,
) -> tuple[dict[str, dict], dict[str, ModelChoice]]:
    """Per target: metrics (selection, calibration for benefit, patients-like-this groups) and
    the ``ModelChoice``. The choice is by ``loss`` ("dr" or "r"; "r" needs ``residuals`` of that
    target, as from ``target_scores.target_scores_and_residuals``); where residuals are given, the other
    loss's table is recorded beside it. ``gate`` ("loss" or "slope") decides whether the
    lowest-loss learner is shown or the average effect (``hte.evaluation.selection``); a learner
    named ``preferred`` (the run's model average) is shown in that learner's place unless its
    held-out loss is clearly worse. Fits whose held-out refit failed are left out of the
    candidates (named in ``excluded``)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    residuals = residuals or {}
    metrics: dict[str, dict] = {}
    choices: dict[str, ModelChoice] = {}
    for target, (keep, gamma, _) in scores.items():
        predictions: dict[str, np.ndarray] = {}
        excluded: dict[str, str] = {}
        for fit in fits:
            if fit.target != target or fit.key not in refits:
                continue
            effects = refits[fit.key]
            if isinstance(effects, str):
                excluded[fit.estimator] = f"held-out refit failed: {effects}"
            elif not np.isfinite(effects[keep]).all():
                excluded[fit.estimator] = "non-finite held-out predictions"
            else:
                predictions[fit.estimator] = np.round(effects[keep], 10)
        resid = residuals.get(target)
        try:
            if loss == "r" and resid is None:
                raise ValueError("the R-loss needs this target's residuals; none were given")
            prefer = preferred if preferred in predictions else None
            by_dr = select_model(gamma, predictions, random_state=seed, gate=gate, preferred=prefer)
            by_r = None
            if resid is not None:
                by_r = select_model(
                    gamma,
                    predictions,
                    random_state=seed,
                    residuals=resid,
                    gate=gate,
                    preferred=prefer,
                )
        except ValueError as exc:
            log.warning("no model selection for %s/%s: %s", data.label, target, exc)
            metrics[target] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        selection, other = (by_r, by_dr) if loss == "r" else (by_dr, by_r)
        choice = _choice(target, selection.chosen, selection.reason, gamma, predictions, alpha)
        choices[target] = choice
        calibration = {
            name: calibration_summary(benefit_calibration(pred, gamma, alpha=alpha))
            for name, pred in predictions.items()
        }
        metrics[target] = {
            **selection_summary(selection),
            **({} if other is None else {"other_loss": _other_loss_summary(other)}),
            **_choice_summary(choice),
            "excluded": excluded,
            "benefit_calibration": calibration,
        }
    return metrics, choices
