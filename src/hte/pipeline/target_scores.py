"""Doubly robust scores per target, computed once per analysis and independent of which
estimators the run fitted, and the R-loss residuals from the same nuisances.

OS targets: AIPCW scores ``Gamma = mu1 - mu0 + (W - e) / (e (1 - e)) (Y* - mu_W)`` from 5-fold
cross-fitted nuisances (propensity, event and censoring survival): the analysis's shared nuisances
(``hte.estimators.shared_nuisances``, the ones the estimators were fitted with). CRS: AIPW scores
with the shared cross-fitted propensity and boosted arm risks. The held-out tests
(``hte.pipeline.heterogeneity``), the subgroups and the model choice all read them.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from hte.array_checks import check_survival_outcome
from hte.errors import STAGE_FAILURES
from hte.estimators.nuisance import cross_fit_pseudo_outcomes
from hte.estimators.shared_nuisances import DEFAULT_SURVIVAL, Nuisances
from hte.evaluation.rate import aipw_scores_binary, dr_scores_from_pseudo_outcomes
from hte.evaluation.selection import Residuals
from hte.pipeline.stages import AnalysisData, FittedEffect, crs_nuisances
from hte.vocabulary import CRS_TARGETS

log = logging.getLogger("hte.pipeline")

# Survival nuisances of the OS scores: the causal survival forest's defaults, so a forest fitted
# with its defaults and the run's seed holds exactly these scores (and they are reused).
SURVIVAL_NUISANCE = {
    "grid_size": 25,
    "event_learner": "hazard_gbm",
    "censoring_learner": "hazard_gbm",
    "n_folds": 5,
    "censoring_floor": 0.05,
    "propensity_clip": 0.01,
}
Scores = tuple[np.ndarray, np.ndarray, str]


# --------------------------------------------------------------------------------------------
# doubly robust scores per target
# --------------------------------------------------------------------------------------------
def target_scores(data: AnalysisData, fits: list[FittedEffect], seed: int) -> dict[str, Scores]:
    """Per fitted target: (keep mask over ``data.cohort`` rows, doubly robust scores of the kept
    rows, where they come from). A target whose scores cannot be computed is left out (logged);
    ``heterogeneity_tests`` records the reason."""
    scores, _, _ = _scores_and_reasons(data, fits, seed)
    return scores


def target_scores_and_residuals(
    data: AnalysisData, fits: list[FittedEffect], seed: int
) -> tuple[dict[str, Scores], dict[str, Residuals]]:
    """``target_scores`` and the R-loss residuals (``r_loss_residuals``) of the same targets,
    from one read of each target's nuisances."""
    scores, _, residuals = _scores_and_reasons(data, fits, seed)
    return scores, residuals


def _scores_and_reasons(
    data: AnalysisData, fits: list[FittedEffect], seed: int
) -> tuple[dict[str, Scores], dict[str, str], dict[str, Residuals]]:
    scores: dict[str, Scores] = {}
    skipped: dict[str, str] = {}
    residuals: dict[str, Residuals] = {}
    for target, horizon in _targets(fits).items():
        try:
            parts = _target_nuisances(data, target, horizon, seed)
        except STAGE_FAILURES as exc:  # an optional extra: the run goes on, the reason is recorded
            log.warning("no doubly robust scores for %s/%s: %s", data.label, target, exc)
            skipped[target] = f"skipped: {type(exc).__name__}: {exc}"
            continue
        scores[target] = parts.scores()
        try:
            residuals[target] = parts.residuals()
        except ValueError as exc:  # e.g. no treatment variation left: the R-loss is not offered
            log.warning("no R-loss residuals for %s/%s: %s", data.label, target, exc)
    return scores, skipped, residuals


@dataclasses.dataclass(frozen=True)
class _TargetNuisances:
    """One target's cross-fitted outcome (Y*, or the CRS outcome), arm, propensity and arm means
    over the rows ``keep``: everything its DR scores and R-loss residuals are made of."""

    keep: np.ndarray
    y: np.ndarray
    w: np.ndarray
    e: np.ndarray
    mu1: np.ndarray
    mu0: np.ndarray
    source: str
    binary: bool  # a CRS target: AIPW scores of a binary outcome

    def scores(self) -> Scores:
        score = aipw_scores_binary if self.binary else dr_scores_from_pseudo_outcomes
        return self.keep, score(self.y, self.w, self.e, self.mu1, self.mu0), self.source

    def residuals(self) -> Residuals:
        m = self.e * self.mu1 + (1 - self.e) * self.mu0
        return Residuals(self.y - m, self.w - self.e)


def _target_nuisances(
    data: AnalysisData, target: str, horizon: float | None, seed: int
) -> _TargetNuisances:
    if target in CRS_TARGETS:
        keep, y, w, e, mu1, mu0 = crs_nuisances(_with_propensity(data, seed), target, seed)
        source = (
            "AIPW: the design's 5-fold cross-fitted propensity and 5-fold cross-fitted boosted "
            f"outcome models (covariates + arm), {int(keep.sum())} patients with the outcome"
        )
        return _TargetNuisances(keep, y, w, e, mu1, mu0, source, binary=True)
    s, what = _aipcw_pseudo_outcomes(data, target, horizon, seed)
    keep = np.ones(len(data.treatment), dtype=bool)
    return _TargetNuisances(
        keep, s["pseudo_outcome"], data.treatment, s["e"], s["mu1"], s["mu0"], what, binary=False
    )


def _targets(fits: list[FittedEffect]) -> dict[str, float | None]:
    """Each target the run fitted (successfully or not) and its horizon."""
    out: dict[str, float | None] = {}
    for fit in fits:
        out.setdefault(fit.target, None if fit.horizon is None else float(fit.horizon))
    return out


def crs_scores(data: AnalysisData, target: str, seed: int) -> Scores:
    """AIPW scores of a CRS target over the rows that carry it."""
    return _target_nuisances(data, target, None, seed).scores()


def _with_propensity(data: AnalysisData, seed: int) -> AnalysisData:
    """``data`` with a cross-fitted propensity (fitted here when the analysis has none)."""
    if data.propensity is not None:
        return data
    from hte.design.propensity import cross_fit_propensity

    e = cross_fit_propensity(data.X, data.treatment, random_state=seed)
    return dataclasses.replace(data, propensity=e)


def aipcw_scores(
    data: AnalysisData, fits: list[FittedEffect], target: str, horizon: float | None, seed: int
) -> Scores:
    """AIPCW scores of an OS target ("survival" or "rmst" at ``horizon``), every patient kept.

    Read from the analysis's shared nuisances (``data.nuisances``, cross-fitted once with
    ``SURVIVAL_NUISANCE`` and the seed: the ones the causal survival forest and DR-learner were
    fitted with); cross-fitted here with the same settings when the analysis has none. ``fits``
    is kept for the signature (the scores do not depend on which estimators ran).
    """
    return _target_nuisances(data, target, horizon, seed).scores()


def _aipcw_pseudo_outcomes(
    data: AnalysisData, target: str, horizon: float | None, seed: int
) -> tuple[dict, str]:
    """The AIPCW pseudo-outcomes and nuisances of an OS target, and where they come from."""
    if horizon is None:
        raise ValueError(f"target {target!r} needs a horizon")
    t, d = data.survival_outcome()
    W = data.treatment
    check_survival_outcome(t, d, len(t), horizon)
    what = (
        f"AIPCW: 5-fold cross-fitted propensity, event and censoring survival (discrete-time "
        f"hazard boosting on a grid of up to 25 points per horizon to {horizon:g} months, "
        f"censoring survival floored at 0.05)"
    )
    floor, clip = SURVIVAL_NUISANCE["censoring_floor"], SURVIVAL_NUISANCE["propensity_clip"]
    shared = data.nuisances
    if shared is not None and _serves_default(shared, horizon, seed):
        shared.check_rows(W)
        s = shared.pseudo_outcomes(
            t, d, target=target, horizon=horizon, censoring_floor=floor, propensity_clip=clip
        )
        what += "; the analysis's shared nuisances, the ones its estimators were fitted with"
    else:
        X = data.X.to_numpy(dtype=float)
        s = cross_fit_pseudo_outcomes(
            X,
            W,
            t,
            d,
            target=target,
            horizon=horizon,
            random_state=seed,
            n_jobs=2,
            **SURVIVAL_NUISANCE,
        )
    return s, what


def r_loss_residuals(
    data: AnalysisData, fits: list[FittedEffect], targets, seed: int
) -> dict[str, Residuals]:
    """Per target of ``targets``: the cross-fitted residuals of the R-loss over the same rows and
    from the same nuisances as its DR scores. OS: ``Y* - (e mu1 + (1 - e) mu0)`` and ``W - e``
    with the AIPCW pseudo-outcome Y*; CRS: ``Y - (e mu1 + (1 - e) mu0)`` and ``W - e``. A run
    gets them with its scores from ``target_scores_and_residuals``."""
    horizons = _targets(fits)
    return {
        target: _target_nuisances(data, target, horizons[target], seed).residuals()
        for target in targets
    }


def _serves_default(nuisances: Nuisances, horizon: float, seed: int) -> bool:
    """Shared nuisances fitted with ``SURVIVAL_NUISANCE``'s settings and ``seed``, reaching
    ``horizon``."""
    wanted = {k: SURVIVAL_NUISANCE[k] for k in DEFAULT_SURVIVAL} | {"random_state": seed}
    same = all(nuisances.settings.get(k) == v for k, v in wanted.items())
    return same and any(np.isclose(horizon, h) for h in nuisances.horizons)
