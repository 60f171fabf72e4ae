"""Best-linear-predictor calibration test of CATE predictions (Chernozhukov et al.; grf style).

Given held-out CATE predictions tau_hat with mean tau_bar, fit by least squares (no intercept)

    residualized form:  Y - m(X) = a * (W - e) tau_bar + b * (W - e) (tau_hat - tau_bar) + eps
    score form:         Gamma     = a * tau_bar       + b * (tau_hat - tau_bar)           + eps

where m = E[Y | X], e = P(W = 1 | X) and Gamma are doubly robust scores (AIPW, or the AIPCW based
scores for survival, see hte.evaluation.rate). ``a`` ("mean forest prediction") is about 1 when the
average prediction is right; ``b`` ("differential forest prediction") is about 1 when the
predicted differences between patients are right, and b > 0 significantly means the heterogeneity
the model found is real. Standard errors are heteroskedasticity robust (HC3; cluster robust when
``clusters`` is given); p-values are one-sided for H0: coefficient <= 0, as grf reports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from hte.evaluation.rate import _as_vector, _check_binary, _check_propensity


@dataclass(frozen=True)
class BLPResult:
    """Coefficients, robust standard errors, t statistics and one-sided p-values of the BLP fit."""

    mean_coef: float
    mean_se: float
    mean_t: float
    mean_p_value: float
    differential_coef: float
    differential_se: float
    differential_t: float
    differential_p_value: float
    form: str
    n: int

    def heterogeneity_detected(self, level: float = 0.05) -> bool:
        """True when the differential coefficient is significantly > 0 at ``level``."""
        return bool(self.differential_p_value < level)


def _design(cate_pred, y, w, e, m, scores):
    tau = _as_vector("cate_pred", cate_pred)
    n = tau.shape[0]
    tau_bar = float(tau.mean())
    if scores is not None:
        if any(v is not None for v in (y, w, e, m)):
            raise ValueError("give either scores or (y, w, e, m), not both")
        target = _as_vector("scores", scores, n)
        Z = np.column_stack([np.full(n, tau_bar), tau - tau_bar])
        return target, Z, "scores"
    if any(v is None for v in (y, w, e, m)):
        raise ValueError("give either scores or all of y, w, e and m")
    y = _as_vector("y", y, n)
    w = _as_vector("w", w, n)
    _check_binary("w", w)
    e = _as_vector("e", e, n)
    _check_propensity(e)
    m = _as_vector("m", m, n)
    r = w - e
    Z = np.column_stack([r * tau_bar, r * (tau - tau_bar)])
    return y - m, Z, "residualized"


def blp_calibration_test(
    cate_pred,
    *,
    scores=None,
    y=None,
    w=None,
    e=None,
    m=None,
    clusters=None,
) -> BLPResult:
    """Calibration test of held-out CATE predictions against DR ``scores`` or (y, w, e, m).

    Use cross-fitted nuisances and predictions for patients the CATE model did not see.
    """
    target, Z, form = _design(cate_pred, y, w, e, m, scores)
    n = target.shape[0]
    if np.allclose(Z[:, 1], 0.0):
        raise ValueError("cate_pred is constant: there is no differential prediction to test")
    if np.allclose(Z[:, 0], 0.0):
        raise ValueError("the mean prediction (or W - e) is zero: the mean term is not identified")
    from statsmodels.regression.linear_model import OLS  # here: 1.3 s to import, workers skip it

    model = OLS(target, Z)
    if clusters is None:
        fit = model.fit(cov_type="HC3")
    else:
        groups = np.asarray(clusters)
        if groups.shape != (n,):
            raise ValueError(f"clusters must have shape ({n},); got {groups.shape}")
        _, codes = np.unique(groups, return_inverse=True)
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
    coef = np.asarray(fit.params, dtype=float)
    se = np.asarray(fit.bse, dtype=float)
    t = coef / se
    # one-sided H0: coefficient <= 0, t reference with the residual degrees of freedom (as grf)
    p_one = stats.t.sf(t, df=fit.model.df_resid)
    return BLPResult(
        mean_coef=float(coef[0]),
        mean_se=float(se[0]),
        mean_t=float(t[0]),
        mean_p_value=float(p_one[0]),
        differential_coef=float(coef[1]),
        differential_se=float(se[1]),
        differential_t=float(t[1]),
        differential_p_value=float(p_one[1]),
        form=form,
        n=n,
    )
