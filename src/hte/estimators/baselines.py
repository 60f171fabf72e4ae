"""The baselines' former module, kept only so that models pickled in run folders written before
the split (they name ``hte.estimators.baselines``) still load. Import from ``hte.estimators``."""

from hte.estimators.average_effects import (
    AverageEffect,
    HazardRatio,
    SurvivalATE,
    average_treatment_effect_binary,
    average_treatment_effect_survival,
    weighted_cox_hazard_ratio,
    weighted_kaplan_meier,
)
from hte.estimators.cox_interaction import CoxInteractionModel
from hte.estimators.logistic_interaction import LogisticInteractionModel

__all__ = [
    "AverageEffect",
    "CoxInteractionModel",
    "HazardRatio",
    "LogisticInteractionModel",
    "SurvivalATE",
    "average_treatment_effect_binary",
    "average_treatment_effect_survival",
    "weighted_cox_hazard_ratio",
    "weighted_kaplan_meier",
]
