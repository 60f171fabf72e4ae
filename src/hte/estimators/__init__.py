"""Treatment-effect estimators. All return hte.estimators.result.EffectEstimate."""

from hte.estimators.result import EffectEstimate, SurvivalCurves

__all__ = ["EffectEstimate", "SurvivalCurves"]
