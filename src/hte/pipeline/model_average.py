"""The run's model average (``evaluation.model_average``): one more fit per target, composed from
its members' fits instead of fitted again (``hte.estimators.model_average``).

``average_fits`` adds, for each target its members were fitted for, a ``FittedEffect`` whose
model is the members' ``ModelAverage`` and whose estimate is the average of their estimates. The
later stages read it like any fit: truth metrics, held-out tests and model choice, subgroups,
SHAP, the saved models and the profile explorer. ``average_heldout`` gives its held-out effects
as the average of the members' held-out effects: each member's were predicted by a refit that
never saw the patient, so the average never did either.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from hte.config import ExperimentConfig
from hte.config.sections import ModelAverageSpec
from hte.estimators.model_average import ModelAverage, average_estimates
from hte.runs import fit_key

KIND = "model_average"


# The fits are hte.pipeline.stages.FittedEffect, which calls ``average_fits``: not imported here.


def _member_fits(spec: ModelAverageSpec, fits: list, target: str) -> dict:
    by_name = {f.estimator: f for f in fits if f.target == target}
    return {name: by_name.get(name) for name in spec.members}


def _targets(spec: ModelAverageSpec, fits: list) -> list:
    """One fit per target of the first member (its order), as the template of the average's."""
    return [f for f in fits if f.estimator == spec.members[0]]


def average_fits(fits: list, config: ExperimentConfig) -> list:
    """The model average's fit per target (none without ``evaluation.model_average``). A target
    where a member was not fitted, or failed, gets a fit with that error."""
    spec = config.evaluation.model_average
    if spec is None:
        return []
    out = []
    for template in _targets(spec, fits):
        fit = dataclasses.replace(
            template,
            estimator=spec.name,
            kind=KIND,
            model=None,
            estimate=None,
            arms={},
            seconds=0.0,
            error=None,
            fix=None,
        )
        members = _member_fits(spec, fits, template.target)
        missing = [n for n, f in members.items() if f is None or f.error or f.estimate is None]
        if missing:
            fit.error = f"ValueError: member(s) not fitted for {fit.target}: {', '.join(missing)}"
            fit.fix = "fix the members' fits, or remove them from evaluation.model_average"
        else:
            fit.model = ModelAverage(
                {n: f.model for n, f in members.items()},
                interval_member=spec.interval_member,
                target=fit.target,
                horizon=fit.horizon,
            )
            fit.estimate = average_estimates(
                {n: f.estimate for n, f in members.items()}, spec.interval_member
            )
        out.append(fit)
    return out


def is_average(fit) -> bool:
    return fit.kind == KIND


def average_heldout(fit, refits: dict) -> np.ndarray | str:
    """The average's held-out effects: the mean of its members' (``refits``: fit key -> held-out
    effects or the error of that refit), or an error naming the member without them."""
    names = list(fit.model.members)
    effects = []
    for name in names:
        member = refits.get(fit_key(name, fit.target))
        if member is None or isinstance(member, str):
            return f"member {name} has no held-out effects: {member or 'not refitted'}"
        effects.append(np.asarray(member, dtype=float))
    return np.mean(effects, axis=0)


def preferred_model(config: ExperimentConfig) -> str | None:
    """The model average's name when the config prefers it over the gate's learner."""
    spec = config.evaluation.model_average
    return spec.name if spec is not None and spec.preferred else None
