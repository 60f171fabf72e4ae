"""Cox model with treatment x covariate interactions: a baseline beside published analyses.

CATE from the model's counterfactual curves with the Breslow baseline hazard; a fit that does not
converge or separates is refitted with a ridge penalty (``RIDGE_LADDER``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.exceptions import ConvergenceError, ConvergenceWarning

from hte.estimators.survival_curves import CounterfactualSurvivalEstimator

_T, _E, _W, _SW = "__time", "__event", "treatment", "__weight"
# Ridge penalizers tried, in order, when a Cox fit does not converge (collinear covariates) or
# separates (a coefficient above MAX_STANDARDIZED_COEF per standard deviation of its column).
RIDGE_LADDER = (0.01, 0.1, 1.0)
MAX_STANDARDIZED_COEF = 10.0  # a hazard ratio of e^10 per SD: separation, not an estimate


def _interaction_columns(names: list[str]) -> list[str]:
    return [*names, _W, *[f"{_W}:{c}" for c in names]]


def _interaction_frame(X: np.ndarray, treatment: np.ndarray, names: list[str]) -> pd.DataFrame:
    w = treatment.astype(float).reshape(-1, 1)
    return pd.DataFrame(np.hstack([X, w, w * X]), columns=_interaction_columns(names))


class CoxInteractionModel(CounterfactualSurvivalEstimator):
    """Cox proportional hazards with treatment, covariates and treatment x covariate interactions.

    ``fit(X, time, event, treatment, sample_weight=None)``: lifelines ``CoxPHFitter`` (Efron
    ties; robust variance when weighted). The CATE is the RMST difference (``target="rmst"``) or
    survival difference at the horizon (``target="survival"``) between the model's counterfactual
    curves ``S_a(t|x) = exp(-H0(t) exp(lp_a(x)))`` with the Breslow baseline ``H0``. Intervals come
    from a stratified bootstrap refit when ``n_bootstrap > 0``, else NaN. ``summary_`` holds the
    coefficient table (robust standard errors when weighted).

    A fit that does not converge (lifelines' ConvergenceError: collinear covariates) or separates
    (a coefficient above ``MAX_STANDARDIZED_COEF`` per SD of its column) is refitted with the
    ridge penalizers of ``RIDGE_LADDER`` above ``penalizer`` in turn; ``penalizer_used_`` and
    ``fit_info_`` record what was used and why. If none works the error says how to fix it.
    """

    _supports_weights = True

    def __init__(
        self,
        *,
        target: str = "rmst",
        horizon: float | None = None,
        penalizer: float = 0.0,
        n_bootstrap: int = 0,
        random_state: int | None = None,
    ) -> None:
        super().__init__(
            target=target, horizon=horizon, n_bootstrap=n_bootstrap, random_state=random_state
        )
        self.penalizer = penalizer

    def _fit_state(self, X, time, event, treatment, sample_weight, seed):
        names = [str(c) for c in self.feature_names_in_]
        df = _interaction_frame(X, treatment, names)
        df[_T], df[_E] = time, event.astype(int)
        kwargs = {}
        if sample_weight is not None:
            df[_SW] = sample_weight
            kwargs = dict(weights_col=_SW, robust=True)
        if self.penalizer < 0:
            raise ValueError(f"penalizer must be >= 0; got {self.penalizer}")
        scale = df.drop(columns=[_T, _E, _SW], errors="ignore").std().to_numpy()
        ladder = [float(self.penalizer)] + [p for p in RIDGE_LADDER if p > self.penalizer]
        problem = ""
        for penalizer in ladder:
            cph = CoxPHFitter(penalizer=penalizer)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    cph.fit(df, duration_col=_T, event_col=_E, **kwargs)
            except ConvergenceError as exc:
                problem = f"did not converge at penalizer {penalizer:g} ({_first_sentence(exc)})"
                continue
            diverging = [
                w
                for w in caught
                if issubclass(w.category, ConvergenceWarning) and "norm(delta)" in str(w.message)
            ]
            if diverging:
                problem = (
                    f"did not converge at penalizer {penalizer:g} (no unique maximum: "
                    "collinearity or complete separation)"
                )
                continue
            coef = cph.params_.to_numpy()
            standardized = np.abs(coef * scale)
            if not np.all(np.isfinite(coef)) or np.nanmax(standardized) > MAX_STANDARDIZED_COEF:
                worst = cph.params_.index[int(np.nanargmax(standardized))]
                problem = (
                    f"separated at penalizer {penalizer:g} (coefficient of {worst} "
                    f"{cph.params_[worst]:.3g})"
                )
                continue
            cph.hte_fit_note_ = problem  # why the penalizer was raised, or ""
            return cph
        raise ValueError(
            f"Cox with interactions {problem}, even with the ridge penalizers "
            f"{', '.join(f'{p:g}' for p in ladder)}: drop collinear or sparse covariates, or set "
            "params.penalizer higher"
        )

    def fit(self, X, time=None, event=None, treatment=None, sample_weight=None):
        """Fit the interaction Cox model (see class docstring); X may be an ``EffectData``."""
        super().fit(X, time, event, treatment, sample_weight)
        self.model_ = self.state_
        self.summary_ = self.state_.summary
        self.penalizer_used_ = float(self.state_.penalizer)
        note = getattr(self.state_, "hte_fit_note_", "")
        self.fit_info_ = {
            "penalizer_requested": float(self.penalizer),
            "penalizer_used": self.penalizer_used_,
            "ridge_fallback": bool(note),
            **({"reason": f"the unpenalized fit {note.split(' at ')[0]}"} if note else {}),
        }
        return self

    def _arm_steps(self, state, X):
        names = [str(c) for c in self.feature_names_in_]
        columns = _interaction_columns(names)
        knots = state.baseline_cumulative_hazard_.index.to_numpy(dtype=float)
        cumhaz = state.baseline_cumulative_hazard_.to_numpy()[:, 0]
        X = np.asarray(X, dtype=float)
        out = []
        for arm in (1, 0):
            w = np.full((X.shape[0], 1), float(arm))
            design = np.hstack([X, w, w * X])
            risk = np.exp(_log_partial_hazard(state, design, columns))
            out.append((knots, np.exp(-np.outer(risk, cumhaz))))
        return out[0], out[1]


def _log_partial_hazard(state: CoxPHFitter, design: np.ndarray, columns: list[str]) -> np.ndarray:
    """lifelines' ``predict_log_partial_hazard`` (covariates centred at their training means, times
    the coefficients) in plain numpy on a design whose columns are named ``columns``: the same
    numbers without lifelines' per-call frame reshuffling, which cost ~6 ms a call and made each
    what-if query ~60 ms."""
    params = state.params_
    position = {c: k for k, c in enumerate(columns)}
    order = np.array([position.get(str(c), -1) for c in params.index.tolist()])
    if (order < 0).any():
        missing = [str(c) for c, k in zip(params.index.tolist(), order, strict=True) if k < 0]
        raise ValueError(f"the design lacks the fitted model's columns {missing[:5]}")
    centred = design[:, order] - state._norm_mean.to_numpy(dtype=float)
    return np.dot(centred, params.to_numpy(dtype=float))


def _first_sentence(exc: Exception) -> str:
    return str(exc).split(". ")[0].strip()
