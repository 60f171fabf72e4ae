"""Held-out work started before the estimator fits: what needs no fitted model.

The held-out stage (``hte.pipeline.heterogeneity``) refits each estimator on the other folds of
the patients it ranks. Two parts of it depend on the data, the seed and the estimators' settings
only, never on a fitted model:

* the folds' nuisances, read by the estimators that take the analysis's shared nuisances
  (``start_heldout_fold_nuisances``);
* the refits of the estimators that read none (``start_independent_refits``): the survival
  meta-learners, Cox, the CRS learners.

So the run sends both to its worker processes before it fits, and the workers do them while the
run's own process fits the Bayesian causal forests, which stay there
(``hte.pipeline.stages.fit_placement``). They are the very tasks the held-out stage would run
afterwards (same folds, seeds and settings, the same numbers): the stage takes their results,
and refits anew a group whose fits did not all succeed.
"""

from __future__ import annotations

from collections.abc import Iterator

from hte.config import ExperimentConfig
from hte.config.sections import HeldoutFolds
from hte.pipeline.heterogeneity import (
    HELDOUT_FOLDS,
    FoldNuisances,
    StartedRefits,
    folds_of,
    reads_fold_nuisances,
    refit_groups,
    start_fold_nuisances,
    start_refits,
)
from hte.pipeline.stages import (
    AnalysisData,
    FittedEffect,
    fit_tasks,
    unfitted_model,
)


def planned_fits(config: ExperimentConfig, data: AnalysisData) -> list[FittedEffect]:
    """The fits ``fit_estimators`` will make, in its order, each with its unfitted model (what
    a held-out refit needs); a fit whose settings fail is left out (its fit records why)."""
    planned = []
    for spec, targets in fit_tasks(config, data.cohort):
        for target, horizon in targets:
            model = unfitted_model(spec, (target, horizon), config)
            if model is not None:
                planned.append(
                    FittedEffect(spec.name, spec.kind, spec.outcome, target, horizon, model=model)
                )
    return planned


def start_heldout_work(
    config: ExperimentConfig, data: AnalysisData, n_folds: int | HeldoutFolds = HELDOUT_FOLDS
) -> tuple[Iterator[FoldNuisances] | None, StartedRefits | None]:
    """Both parts started now, from one plan of the fits: the folds' nuisances
    (``start_heldout_fold_nuisances``) and the independent refits
    (``start_independent_refits``)."""
    planned = planned_fits(config, data)
    return (
        start_heldout_fold_nuisances(config, data, n_folds, planned=planned),
        start_independent_refits(config, data, n_folds, planned=planned),
    )


def start_heldout_fold_nuisances(
    config: ExperimentConfig,
    data: AnalysisData,
    n_folds: int | HeldoutFolds = HELDOUT_FOLDS,
    planned: list[FittedEffect] | None = None,
) -> Iterator[FoldNuisances] | None:
    """The held-out folds' nuisances, started now when some OS estimator of ``config`` will read
    the analysis's shared nuisances (else None); pass the result to
    ``heterogeneity.heldout_fold_nuisances`` as ``started``. ``planned``: ``planned_fits``, when
    already made."""
    if data.nuisances is None or not data.nuisances.horizons:
        return None
    planned = planned_fits(config, data) if planned is None else planned
    if not any(reads_fold_nuisances(f, data) for f in planned):
        return None
    os_folds = folds_of(n_folds, "os")
    return start_fold_nuisances(data, config.seed, data.nuisances.horizons, os_folds)


def start_independent_refits(
    config: ExperimentConfig,
    data: AnalysisData,
    n_folds: int | HeldoutFolds = HELDOUT_FOLDS,
    planned: list[FittedEffect] | None = None,
) -> StartedRefits | None:
    """The held-out refits of the estimators that read no fold nuisances, started now (None
    when there are none); pass the result to ``heterogeneity.all_heldout_effects`` as
    ``started``. ``planned``: ``planned_fits``, when already made."""
    planned = planned_fits(config, data) if planned is None else planned
    independent = [f for f in planned if not reads_fold_nuisances(f, data)]
    groups = refit_groups(independent, data)
    return start_refits(groups, data, config.seed, n_folds) if groups else None
