"""Treatment-effect estimators. All return hte.estimators.result.EffectEstimate."""

from hte.estimators.average_effects import (
    AverageEffect,
    HazardRatio,
    SurvivalATE,
    average_treatment_effect_binary,
    average_treatment_effect_survival,
    weighted_cox_hazard_ratio,
)
from hte.estimators.cox_interaction import CoxInteractionModel
from hte.estimators.crs_forest import CRSCausalForest
from hte.estimators.logistic_interaction import LogisticInteractionModel
from hte.estimators.meta_learners import SLearnerSurvival, TLearnerSurvival
from hte.estimators.result import EffectEstimate, SurvivalCurves

__all__ = ["EffectEstimate", "SurvivalCurves"]
__all__ += [
    "AverageEffect",
    "CRSCausalForest",
    "CoxInteractionModel",
    "HazardRatio",
    "LogisticInteractionModel",
    "SLearnerSurvival",
    "SurvivalATE",
    "TLearnerSurvival",
    "average_treatment_effect_binary",
    "average_treatment_effect_survival",
    "weighted_cox_hazard_ratio",
]

from hte.estimators.causal_survival_forest import CausalSurvivalForest  # noqa: E402
from hte.estimators.dr_learner import SurvivalDRLearner  # noqa: E402

__all__ += ["CausalSurvivalForest", "SurvivalDRLearner"]
from hte.estimators.bcf import BayesianCausalForest, CRSBayesianCausalForest  # noqa: E402

__all__ += ["BayesianCausalForest", "CRSBayesianCausalForest"]
