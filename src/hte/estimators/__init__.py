"""Treatment-effect estimators. All return hte.estimators.result.EffectEstimate.

Each public name is imported from its module on first use (PEP 562), so a run imports the
libraries of the estimators it fits (econml, scikit-survival, lifelines, stochtree) and not the
others: ``from hte.estimators import CRSCausalForest`` works as before.
"""

from importlib import import_module

_HOMES = {
    "AverageEffect": "average_effects",
    "HazardRatio": "average_effects",
    "SurvivalATE": "average_effects",
    "average_treatment_effect_binary": "average_effects",
    "average_treatment_effect_survival": "average_effects",
    "weighted_cox_hazard_ratio": "average_effects",
    "CoxInteractionModel": "cox_interaction",
    "CRSCausalForest": "crs_forest",
    "LogisticInteractionModel": "logistic_interaction",
    "SLearnerSurvival": "meta_learners",
    "TLearnerSurvival": "meta_learners",
    "EffectEstimate": "result",
    "SurvivalCurves": "result",
    "CausalSurvivalForest": "causal_survival_forest",
    "SurvivalDRLearner": "dr_learner",
    "BayesianCausalForest": "bcf",
    "CRSBayesianCausalForest": "bcf",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hte.estimators' has no attribute {name!r}")
    value = getattr(import_module(f"hte.estimators.{home}"), name)
    globals()[name] = value  # found once, then an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
