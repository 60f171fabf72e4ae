"""Treatment-effect estimators. All return hte.estimators.result.EffectEstimate.

Each public name is imported from its module on first use (PEP 562), so a run imports the
libraries of the estimators it fits (econml, scikit-survival, lifelines, stochtree) and not the
others: ``from hte.estimators import CRSCausalForest`` works as before.
"""

from hte.lazy_names import lazy_names

_HOMES = {
    "AverageEffect": "hte.estimators.average_effects",
    "HazardRatio": "hte.estimators.average_effects",
    "SurvivalATE": "hte.estimators.average_effects",
    "average_treatment_effect_binary": "hte.estimators.average_effects",
    "average_treatment_effect_survival": "hte.estimators.average_effects",
    "weighted_cox_hazard_ratio": "hte.estimators.average_effects",
    "CoxInteractionModel": "hte.estimators.cox_interaction",
    "CRSCausalForest": "hte.estimators.crs_forest",
    "LogisticInteractionModel": "hte.estimators.logistic_interaction",
    "SLearnerSurvival": "hte.estimators.meta_learners",
    "TLearnerSurvival": "hte.estimators.meta_learners",
    "EffectEstimate": "hte.estimators.result",
    "SurvivalCurves": "hte.estimators.result",
    "CausalSurvivalForest": "hte.estimators.causal_survival_forest",
    "SurvivalDRLearner": "hte.estimators.dr_learner",
    "BayesianCausalForest": "hte.estimators.bcf",
    "CRSBayesianCausalForest": "hte.estimators.bcf",
}

__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
