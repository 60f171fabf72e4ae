"""Which CATE model to show: learner selection and stacking by a held-out doubly robust loss.

Every candidate is scored on patients whose outcome it never saw:

* a fitted learner by its held-out (cross-fitted) predictions ``tau_hat(x_i)``;
* the constant-effect ("average only") candidate by the leave-one-out mean of the doubly robust
  scores, ``(sum(Gamma) - Gamma_i) / (n - 1)``: estimated without the scored patient;
* a non-negative stack of the learners' held-out predictions plus a free intercept, whose weights
  for a patient are fitted (NNLS) on the other folds' patients only.

The DR loss of a candidate is ``mean_i (Gamma_i - tau_hat(x_i))^2``. When Gamma is (conditionally)
unbiased for tau(x) and tau_hat is held out, ``E[(Gamma - tau_hat)^2] = E[(tau - tau_hat)^2] +
E[(Gamma - tau)^2]``: the second term is the same for every candidate, so paired loss differences
estimate differences in mean squared error against the true CATE. Their standard errors are the
standard deviation of the per-patient paired difference over sqrt(n).

The R-loss (Nie and Wager), ``mean_i ((Y_i - m(x_i)) - (W_i - e(x_i)) tau_hat(x_i))^2`` with
cross-fitted residuals, is the other loss offered (``loss="r"``, ``Residuals``). Its paired
differences estimate differences in ``E[(W - e)^2 (tau - tau_hat)^2]``: an MSE weighted by
``e (1 - e)``, without the ``1 / (e (1 - e))`` factor that makes DR scores noisy where the
propensity is extreme (which of the two selects better on the synthetic cohort is measured by
``benchmarks.bench_selection``). Its constant candidate is the
leave-one-out residual-on-residual slope, its stack the NNLS fit of the outcome residual on the
treatment residual times the learners' predictions.

Rule (``select_model``): the learners are ranked by held-out loss and the best-ranked one that
passes a gate is shown, otherwise the constant. Two gates (``gate``):

* ``"loss"`` (tested on the lowest-loss learner only): it beats the constant by more than ``threshold`` standard errors of the paired loss
  difference. A learner close to the constant is not worth the noise it would show a clinician.
  Beating the constant needs a calibration slope above 1/2: a learner whose held-out predictions
  rank patients correctly but spread them twice too far fails it.
* ``"slope"`` (tested on every learner): its held-out calibration slope (OLS of Gamma on tau_hat,
  heteroskedasticity-robust standard error; the slope of the best linear predictor of the CATE
  given tau_hat in Chernozhukov et al.'s sense) exceeds 0 by more than ``threshold`` standard
  errors, by default the one-sided Bonferroni bound for the number of learners at a family-wise
  ``SLOPE_GATE_LEVEL`` (``slope_gate_z``): the learner has found
  differences between patients that the held-out outcomes confirm. A test of heterogeneity, not of
  calibration.

A learner named in advance (``preferred``: the run's model average) is shown in place of the
learner a gate passes unless its held-out loss is worse by more than ``THRESHOLD_SE`` SE of the
paired difference; it never brings in a learner when the gate shows the constant. Under the slope
gate it is also tested on its own first, at ``PREFERRED_SHARE`` of the family-wise level, the
other learners at the rest split evenly (a weighted Bonferroni rule, ``preferred_gate_bounds``):
the chance that any learner passes when no patient differs stays at ``SLOPE_GATE_LEVEL``, and
the test of the learner that would be shown is not diluted by the learners that would not.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls
from sklearn.model_selection import KFold

from hte.evaluation.gates import (
    PREFERRED_SHARE,
    SLOPE_GATE_LEVEL,
    preferred_gate_bounds,
    slope_gate,
    slope_gate_z,
)

CONSTANT = "constant"
STACK = "stack"
LOSSES = ("dr", "r")
GATES = ("loss", "slope")
THRESHOLD_SE = 2.0
STACK_FOLDS = 5


@dataclass(frozen=True)
class CandidateLoss:
    """One candidate's held-out DR loss and its paired differences (candidate minus other)."""

    name: str
    loss: float
    loss_se: float
    diff_vs_constant: float
    diff_vs_constant_se: float
    diff_vs_best: float
    diff_vs_best_se: float


@dataclass(frozen=True)
class Stack:
    """NNLS weights of the learners (and the free intercept) fitted on all patients; ``loss`` is
    the DR loss of the cross-fitted stack (weights for a fold fitted on the other folds)."""

    weights: dict[str, float]
    intercept: float
    heldout: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Residuals:
    """Cross-fitted residuals of the R-loss, one per patient scored: the outcome's
    ``Y - m(x)`` (OS: the censoring-adjusted pseudo-outcome) and the treatment's ``W - e(x)``."""

    outcome: np.ndarray
    treatment: np.ndarray

    def __post_init__(self) -> None:
        for name in ("outcome", "treatment"):
            value = np.asarray(getattr(self, name), dtype=float).reshape(-1)
            bad = np.flatnonzero(~np.isfinite(value))
            if bad.size:
                raise ValueError(f"{name} residuals are not finite at rows {bad[:5].tolist()}")
            object.__setattr__(self, name, value)
        if self.outcome.shape != self.treatment.shape:
            raise ValueError(
                f"outcome residuals have {self.outcome.size} rows, treatment {self.treatment.size}"
            )
        if float(np.sum(self.treatment**2)) <= 0:
            raise ValueError(
                "treatment residuals are all zero: the R-loss cannot tell effects apart"
            )


@dataclass(frozen=True)
class Selection:
    """The loss table (sorted by loss), the chosen candidate and why; ``loss``: "dr" or "r"."""

    chosen: str
    reason: str
    constant_effect: float
    constant_se: float
    table: list[CandidateLoss]
    stack: Stack | None
    n: int
    threshold_se: float
    loss: str = "dr"
    gate: str = "loss"
    gate_z: float = 0.0  # the gate's statistic in SE: the shown learner's, else the best tested
    preferred: str | None = None  # the learner named in advance (``select_model``)
    gate_learner: str | None = None  # whose test ``gate_z`` is (None: the loss gate's best)
    preferred_threshold_se: float | None = None  # the preferred learner's own bound (slope gate)

    def loss_of(self, name: str) -> CandidateLoss:
        for row in self.table:
            if row.name == name:
                return row
        raise KeyError(f"no candidate {name!r}; have {[r.name for r in self.table]}")


def _check(gamma: np.ndarray, predictions: Mapping[str, np.ndarray]) -> np.ndarray:
    gamma = np.asarray(gamma, dtype=float).reshape(-1)
    if gamma.size < 3 or not np.isfinite(gamma).all():
        raise ValueError(f"gamma must be >= 3 finite DR scores; got {gamma.size} values")
    for name, pred in predictions.items():
        pred = np.asarray(pred, dtype=float)
        if pred.shape != gamma.shape:
            raise ValueError(f"predictions[{name!r}] has shape {pred.shape}, gamma {gamma.shape}")
        bad = np.flatnonzero(~np.isfinite(pred))
        if bad.size:
            raise ValueError(
                f"predictions[{name!r}] is not finite at {bad.size} rows (first: {bad[:5]})"
            )
        if name in (CONSTANT, STACK):
            raise ValueError(f"{name!r} is a reserved candidate name")
    return gamma


def loo_constant(gamma: np.ndarray) -> np.ndarray:
    """The constant-effect candidate's held-out prediction per patient: the mean of the other
    patients' DR scores."""
    gamma = np.asarray(gamma, dtype=float)
    n = gamma.size
    return (gamma.sum() - gamma) / (n - 1)


def loo_constant_r(residuals: Residuals) -> np.ndarray:
    """The constant candidate of the R-loss per patient: the slope of the outcome residual on the
    treatment residual over the other patients."""
    ry, rw = residuals.outcome, residuals.treatment
    num = float(np.sum(ry * rw)) - ry * rw
    den = float(np.sum(rw**2)) - rw**2
    return num / np.where(den > 0, den, np.nan)


def _mean_se(x: np.ndarray) -> tuple[float, float]:
    return float(np.mean(x)), float(np.std(x, ddof=1) / np.sqrt(x.size))


def per_patient_losses(
    gamma: np.ndarray, heldout: Mapping[str, np.ndarray], residuals: Residuals | None = None
) -> dict[str, np.ndarray]:
    """Each candidate's per-patient loss: DR ``(Gamma - tau_hat)^2`` or, given ``residuals``,
    R ``(r_Y - r_W tau_hat)^2``."""
    if residuals is None:
        gamma = np.asarray(gamma, dtype=float)
        return {name: (gamma - np.asarray(p, float)) ** 2 for name, p in heldout.items()}
    ry, rw = residuals.outcome, residuals.treatment
    return {name: (ry - rw * np.asarray(p, float)) ** 2 for name, p in heldout.items()}


def loss_table(
    gamma: np.ndarray, heldout: Mapping[str, np.ndarray], residuals: Residuals | None = None
) -> list[CandidateLoss]:
    """DR loss (R-loss given ``residuals``) of each held-out prediction vector (names include
    the constant), with paired differences against the constant and against the lowest-loss
    candidate; sorted by loss (ties by name, so the order is deterministic)."""
    per_patient = per_patient_losses(gamma, heldout, residuals)
    losses = {name: float(np.mean(v)) for name, v in per_patient.items()}
    best = min(losses, key=lambda k: (round(losses[k], 12), k))
    rows = []
    for name, v in per_patient.items():
        loss, loss_se = _mean_se(v)
        dc, dc_se = _mean_se(v - per_patient[CONSTANT]) if CONSTANT in per_patient else (0.0, 0.0)
        db, db_se = _mean_se(v - per_patient[best])
        rows.append(CandidateLoss(name, loss, loss_se, dc, dc_se, db, db_se))
    rows.sort(key=lambda r: (round(r.loss, 12), r.name))
    return rows


def stack_predictions(
    gamma: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    n_folds: int = STACK_FOLDS,
    random_state: int | None = 0,
    residuals: Residuals | None = None,
) -> Stack:
    """Non-negative stack ``c + sum_k w_k tau_hat_k`` (w >= 0, c free) fitted by least squares to
    the DR scores (given ``residuals``: minimising the R-loss, i.e. the outcome residual on the
    treatment residual times the stack). ``heldout``: each patient's stack prediction with
    weights fitted on the other folds (so the patient's own score is not used); ``weights`` /
    ``intercept``: fitted on all."""
    gamma = _check(gamma, predictions)
    names = sorted(predictions)
    if not names:
        raise ValueError("stacking needs at least one learner's predictions")
    P = np.column_stack([np.asarray(predictions[k], float) for k in names])
    design = np.column_stack([P, np.ones(len(gamma)), -np.ones(len(gamma))])
    if residuals is None:
        lhs, rhs = design, gamma
    else:
        lhs, rhs = design * residuals.treatment[:, None], residuals.outcome

    def fit(rows: np.ndarray) -> np.ndarray:
        coef, _ = nnls(lhs[rows], rhs[rows])
        return coef

    heldout = np.empty(len(gamma))
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    for train, test in folds.split(P):
        heldout[test] = design[test] @ fit(train)
    coef = fit(np.arange(len(gamma)))
    weights = {k: float(w) for k, w in zip(names, coef[: len(names)], strict=True)}
    return Stack(weights, float(coef[-2] - coef[-1]), heldout)


def select_model(
    gamma: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    *,
    threshold_se: float | None = None,
    stack: bool = True,
    random_state: int | None = 0,
    residuals: Residuals | None = None,
    gate: str = "loss",
    preferred: str | None = None,
) -> Selection:
    """Score the learners' held-out ``predictions`` and the constant against ``gamma`` by DR
    loss (by R-loss when ``residuals`` are given; the average effect reported stays the mean DR
    score) and choose what to show (module docstring). The stack is scored and reported but is
    not a shown candidate (a weighted mix of models has no single model's interval).

    ``preferred``: a learner named in advance (the run's model average). Under the slope gate
    (default bounds) it is tested first, at its share of the level (``hte.evaluation.gates``),
    and shown when it passes. When another learner passes, the preferred one is shown in its
    place unless its held-out loss exceeds that learner's by more than ``THRESHOLD_SE`` SE of
    the paired difference (``_prefer``)."""
    gamma = _check(gamma, predictions)
    if gate not in GATES:
        raise ValueError(f"gate must be one of {GATES}, got {gate!r}")
    if residuals is not None and residuals.outcome.shape != gamma.shape:
        raise ValueError(
            f"residuals have {residuals.outcome.size} rows, the DR scores {gamma.size}"
        )
    # rounded: last-bit differences between identical runs must not reorder near-ties
    heldout = {k: np.round(np.asarray(v, float), 10) for k, v in sorted(predictions.items())}
    heldout[CONSTANT] = loo_constant(gamma) if residuals is None else loo_constant_r(residuals)
    fitted_stack = None
    if stack and predictions:
        fitted_stack = stack_predictions(
            gamma, heldout_learners(heldout), random_state=random_state, residuals=residuals
        )
        heldout[STACK] = fitted_stack.heldout
    table = loss_table(gamma, heldout, residuals)
    loss_name = "DR loss" if residuals is None else "R-loss"
    learners = [r for r in table if r.name not in (CONSTANT, STACK)]
    c_mean, c_se = _mean_se(gamma)
    own_bound = None  # the preferred learner's own bound under the slope gate
    if threshold_se is None:  # the gate's default: 2 SE, or Bonferroni over the learners
        if gate == "loss":
            threshold_se = THRESHOLD_SE
        elif len(learners) > 1 and any(r.name == preferred for r in learners):
            own_bound, threshold_se = preferred_gate_bounds(len(learners))
        else:
            threshold_se = slope_gate_z(len(learners))
    gate_z, gate_learner = 0.0, None
    if not learners:
        chosen, reason = CONSTANT, "no learner was fitted for this target"
    elif gate == "slope":
        own = (preferred, own_bound) if own_bound is not None else None
        ranked = [(r.name, r.loss) for r in learners]
        shown, reason, gate_z, gate_learner = slope_gate(
            ranked, gamma, heldout, loss_name, threshold_se, own
        )
        chosen = CONSTANT if shown is None else shown
    else:
        best = learners[0]
        margin = -best.diff_vs_constant
        gate_z = margin / best.diff_vs_constant_se if best.diff_vs_constant_se > 0 else 0.0
        if gate_z > threshold_se:
            chosen = best.name
            reason = (
                f"{best.name} has the lowest held-out {loss_name} ({best.loss:.4g}) and beats the "
                f"constant effect by {margin:.3g} ({gate_z:.1f} SE of the paired difference > "
                f"{threshold_se:g})"
            )
        else:
            chosen = CONSTANT
            reason = (
                f"no learner beats the constant effect by more than {threshold_se:g} SE of the "
                f"paired difference in held-out {loss_name} (best: {best.name}, {gate_z:.1f} SE): "
                "this cohort does not support individual differences; showing the average effect"
            )
    if preferred is not None and chosen != CONSTANT and preferred != chosen:
        if preferred in heldout:
            pair = {k: heldout[k] for k in (preferred, chosen)}
            per_patient = per_patient_losses(gamma, pair, residuals)
            chosen, reason = _prefer(chosen, reason, preferred, per_patient, loss_name)
        else:  # its members' refits failed: the gate's learner stays
            reason += f"; the prespecified {preferred} has no held-out predictions"
    loss = "dr" if residuals is None else "r"
    return Selection(
        chosen,
        reason,
        c_mean,
        c_se,
        table,
        fitted_stack,
        len(gamma),
        threshold_se,
        loss,
        gate,
        gate_z,
        preferred,
        gate_learner,
        own_bound,
    )


def _prefer(
    chosen: str, reason: str, preferred: str, per_patient: Mapping[str, np.ndarray], loss_name: str
) -> tuple[str, str]:
    """The preferred learner in place of the gate's ``chosen`` one, unless its held-out loss is
    worse by more than ``THRESHOLD_SE`` SE of the paired per-patient difference. Held-out losses
    of learners close to each other are noise at a few thousand patients; a learner named in
    advance is then the better bet (docs/model_average.md)."""
    diff, se = _mean_se(per_patient[preferred] - per_patient[chosen])
    z = diff / se if se > 0 else 0.0
    if z <= THRESHOLD_SE:
        return preferred, (
            f"{reason}; shown instead: the prespecified {preferred}, whose held-out {loss_name} "
            f"is within {THRESHOLD_SE:g} SE of {chosen}'s (difference {diff:.3g}, {z:.1f} SE)"
        )
    return chosen, (
        f"{reason}; the prespecified {preferred} is not shown: its held-out {loss_name} exceeds "
        f"{chosen}'s by {z:.1f} SE (more than {THRESHOLD_SE:g})"
    )


def heldout_learners(heldout: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The learners' entries of a held-out prediction map (without constant and stack)."""
    return {k: v for k, v in heldout.items() if k not in (CONSTANT, STACK)}


def r_loss(outcome_residual: np.ndarray, treatment_residual: np.ndarray, tau: np.ndarray) -> float:
    """Nie and Wager's R-loss ``mean(((Y - m(x)) - (W - e(x)) tau(x))^2)`` with cross-fitted
    residuals (for OS targets Y is the censoring-adjusted pseudo-outcome)."""
    r = np.asarray(outcome_residual, float) - np.asarray(treatment_residual, float) * tau
    return float(np.mean(r**2))


def _slope_rule(selection: Selection, loss_formula: str) -> str:
    """The slope gate's rule in words, with the preferred learner's own test when it had one."""
    rule = f"{loss_formula}; "
    if selection.preferred_threshold_se is not None:
        rule += (
            f"the prespecified {selection.preferred} when its held-out calibration slope (OLS of "
            f"Gamma on its predictions) exceeds 0 by more than "
            f"{selection.preferred_threshold_se:.2f} SE ({PREFERRED_SHARE:g} of the one-sided "
            f"family-wise level {SLOPE_GATE_LEVEL:g}), else the lowest-loss other learner whose "
            f"slope exceeds 0 by more than {selection.threshold_se:.2f} SE (the rest of the "
            "level, Bonferroni over them), else the constant effect"
        )
    else:
        rule += (
            f"the lowest-loss learner whose held-out calibration slope (OLS of Gamma on its "
            f"predictions) exceeds 0 by more than {selection.threshold_se:.2f} SE (one-sided, "
            "Bonferroni over the learners), else the constant effect"
        )
    return rule


def selection_summary(selection: Selection, digits: int = 6) -> dict:
    """JSON-ready form of a Selection (rounded so reruns give the same bytes)."""

    def rnd(x: float) -> float:
        return float(round(x, digits))

    loss_formula = {
        "dr": "held-out DR loss mean((Gamma - tau_hat)^2)",
        "r": "held-out R-loss mean(((Y - m(x)) - (W - e(x)) tau_hat)^2)",
    }[selection.loss]
    out = {
        "chosen": selection.chosen,
        "reason": selection.reason,
        "loss": selection.loss,
        "rule": (
            f"{loss_formula}; the constant effect unless the best "
            f"learner beats it by more than {selection.threshold_se:g} SE of the paired "
            "difference, then the lowest loss"
            if selection.gate == "loss"
            else _slope_rule(selection, loss_formula)
        )
        + (
            f"; when a learner passes, the prespecified {selection.preferred} is shown in its "
            f"place unless its loss is worse by more than {THRESHOLD_SE:g} SE"
            if selection.preferred
            else ""
        ),
        "gate": selection.gate,
        "gate_z": rnd(selection.gate_z),
        "gate_learner": selection.gate_learner,
        "preferred_threshold_se": (
            None
            if selection.preferred_threshold_se is None
            else rnd(selection.preferred_threshold_se)
        ),
        "preferred": selection.preferred,
        "n": selection.n,
        "constant_effect": {
            "estimate": rnd(selection.constant_effect),
            "std_err": rnd(selection.constant_se),
        },
        "losses": [
            {
                "candidate": r.name,
                "loss": rnd(r.loss),
                "loss_se": rnd(r.loss_se),
                "diff_vs_constant": rnd(r.diff_vs_constant),
                "diff_vs_constant_se": rnd(r.diff_vs_constant_se),
                "diff_vs_best": rnd(r.diff_vs_best),
                "diff_vs_best_se": rnd(r.diff_vs_best_se),
            }
            for r in selection.table
        ],
    }
    if selection.stack is not None:
        out["stack"] = {
            "weights": {k: rnd(v) for k, v in selection.stack.weights.items()},
            "intercept": rnd(selection.stack.intercept),
            "note": (
                f"non-negative weights on the held-out predictions plus a free intercept, "
                f"minimising the {selection.loss.upper()} loss; its loss uses weights "
                f"cross-fitted over {STACK_FOLDS} folds; reported, not shown"
            ),
        }
    return out
