"""scikit-survival's gradient-boosted Cox model without its per-stage loss values.

``GradientBoostingSurvivalAnalysis`` computes the Cox partial likelihood of the whole training set
after every stage (and, with ``subsample`` < 1, of the out-of-bag rows too), only to fill its
diagnostics ``train_score_``, ``oob_scores_`` and ``oob_improvement_``. The boosting itself reads
the loss's gradient, never its value, so the trees and predictions are the same without it. At
n = 2,000 with the S-learner's settings (100 stages, ``subsample=0.8``) those values were about a
third of a fit: 2.66-2.73 CPU s against 1.76-1.79 s (docs/speed.md). ``BoostedCoxSurvival``
leaves them out (NaN) unless early stopping needs them (``n_iter_no_change``).
"""

from __future__ import annotations

import numpy as np
from sksurv.ensemble import GradientBoostingSurvivalAnalysis
from sksurv.ensemble.survival_loss import CoxPH


class _CoxPartialLikelihoodGradientOnly(CoxPH):
    """The Cox loss whose value is not computed (NaN); its gradient is scikit-survival's."""

    def __call__(self, y_true, raw_prediction, sample_weight=None) -> float:
        return np.nan


class BoostedCoxSurvival(GradientBoostingSurvivalAnalysis):
    """``GradientBoostingSurvivalAnalysis`` (same parameters, trees and predictions) that skips
    the per-stage loss values for the Cox loss without early stopping: ``train_score_``,
    ``oob_scores_`` and ``oob_improvement_`` are then NaN."""

    def _get_loss(self, sample_weight):
        loss = super()._get_loss(sample_weight)
        if type(loss) is CoxPH and self.n_iter_no_change is None:
            return _CoxPartialLikelihoodGradientOnly()
        return loss
