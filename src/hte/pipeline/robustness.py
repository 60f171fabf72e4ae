"""Robustness of the average effects of one analysis: refutation tests and E-values.

``robustness_checks`` returns the JSON-ready dict stored in metrics.json under
``analyses.<label>.robustness``:

* ``refutations``: placebo treatment, random common cause and data subsets
  (``hte.evaluation.refutation``) of the doubly robust averages: the survival difference at the
  survival horizon (AIPCW, target ``"survival"``) and the CRS risk differences (AIPW, ``"crs"`` and
  ``"crs_g3"``), every nuisance refitted at each re-run. The CRS originals are read from the
  analysis's shared nuisances (the same cross-fit); the survival original keeps its own cheaper
  cross-fit (10-point grid, 32-bin hazard learner), so that it is the same estimator as its
  re-runs: the refuters compare re-runs with it, and a change of nuisance settings between
  the two would move the estimate by itself.
* ``evalues``: E-values (``hte.evaluation.evalues``) of the risk ratio of death by the survival
  horizon and of CRS (from the same doubly robust arm means, delta-method intervals), and of the
  IPTW Cox hazard ratio in ``baselines`` (target ``"os"``; the common-outcome conversion unless
  fewer than 15% die by its follow-up cut).

A target whose estimate fails is recorded (``passed: false`` / the error in ``detail`` or
``note``); the others go on.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from hte.config import ExperimentConfig
from hte.data.columns import CRS, CRS_GRADE
from hte.design.propensity import cross_fit_propensity
from hte.errors import STAGE_FAILURES
from hte.estimators.average_effects import weighted_kaplan_meier
from hte.estimators.crs_outcomes import crs_binary_outcome
from hte.evaluation.average_effects import (
    DRAverage,
    aipcw_survival_difference,
    aipw_from_nuisances,
    aipw_risk_difference,
    log_ratio_se,
)
from hte.evaluation.cohort_calibration import HR_HORIZON_MONTHS
from hte.evaluation.evalues import EValue, evalue_hr, evalue_rr, risk_ratio_from_risks
from hte.evaluation.refutation import REFUTERS, RefutationResult, reruns, verdict
from hte.pipeline.parallel import map_tasks
from hte.pipeline.stages import AnalysisData, crs_outcomes

log = logging.getLogger("hte.pipeline")

N_SUBSETS = 5  # data-subset refits per target (cost: one full estimate each)
SUBSET_FRACTION = 0.8
# Random common cause: allowed move, in original standard errors. Refitting the boosted nuisances
# with a noise column moves a correct estimate by itself: on the default cohort (n = 2,000, 30
# noise draws per target) the move exceeded 0.5 SE in 5/30 (CRS) and 4/30 (survival) draws, with
# maxima 0.73 and 0.89 SE; at 1 SE none of the 60 draws would have failed.
RCC_TOLERANCE = 1.0
RARE_OUTCOME = 0.15  # VanderWeele & Ding: below this cumulative risk a HR approximates a RR
N_JOBS = 2  # threads of the survival estimate's nuisance folds
# the originals and refuters are independent estimates: worker processes (1 = in-process)
PROCESSES = 2


def _clean(value: Any) -> Any:
    """Floats with NaN/inf as None, numpy scalars as Python ones (JSON-ready)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _refutation_entry(target: str, r: RefutationResult) -> dict:
    return {
        "target": target,
        "refuter": r.refuter,
        "description": r.description,
        "original": _clean(r.original),
        "estimate": _clean(r.estimate),
        "lower": _clean(r.lower),
        "upper": _clean(r.upper),
        "expected": r.expected,
        "passed": bool(r.passed),
        "detail": r.detail,
    }


def _failed_refutations(target: str, error: str, original: float | None = None) -> list[dict]:
    """Entries of refuters that could not run (the error in ``detail``, ``passed`` false)."""
    return [
        {
            "target": target,
            "refuter": name,
            "description": "not run: an estimate failed",
            "original": _clean(original),
            "estimate": None,
            "lower": None,
            "upper": None,
            "expected": "not run",
            "passed": False,
            "detail": f"error: {error}",
        }
        for name in REFUTERS
    ]


def _evalue_entry(target: str, ev: EValue, note: str) -> dict:
    return {
        "target": target,
        "measure": ev.measure,
        "estimate": _clean(ev.estimate),
        "lower": _clean(ev.lower),
        "upper": _clean(ev.upper),
        "evalue": _clean(ev.evalue),
        "evalue_ci": _clean(ev.evalue_ci),
        "note": note if ev.measure == "RR" else f"{note}; {ev.note}",
    }


def _failed_evalue(target: str, measure: str, error: str) -> dict:
    return {
        "target": target,
        "measure": measure,
        "estimate": None,
        "lower": None,
        "upper": None,
        "evalue": None,
        "evalue_ci": None,
        "note": f"not computed: {error}",
    }


def _ratio_evalue(result: DRAverage, *, complement: bool, alpha: float) -> EValue:
    """E-values of risk_cart / risk_tec from DR arm means (risks = 1 - value if complement)."""
    r1, r0 = result.value_cart, result.value_tec
    if complement:
        r1, r0 = 1 - r1, 1 - r0
    rr, lo, hi = risk_ratio_from_risks(
        r1, r0, se_log_rr=log_ratio_se(result, complement=complement), alpha=alpha
    )
    return evalue_rr(rr, lo, hi)


@dataclass(frozen=True)
class _Target:
    """One doubly robust target of the refutations: its estimator and data, and its original
    estimate when already in hand (the CRS ones, from the shared nuisances)."""

    name: str
    estimate_fn: Callable
    X: np.ndarray
    W: np.ndarray
    outcome: tuple
    complement: bool
    what: str
    original: DRAverage | None = None


PROPENSITY_FOLDS = 5  # folds of every DR average's propensity cross-fit (their default)


def _data_key(X: np.ndarray, W: np.ndarray) -> str:
    """A digest of one data set's covariates and arms: re-runs with equal keys (the targets'
    copies of one placebo, noise column or subset) share one propensity cross-fit."""
    digest = hashlib.sha256()
    for a in (np.ascontiguousarray(X, dtype=float), np.ascontiguousarray(W, dtype=np.int64)):
        digest.update(str(a.shape).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _run_task(task: tuple):
    """One independent piece of the refutations, run in a worker (module-level and
    self-contained): ``("propensity", X, W, seed)``, the unclipped propensity cross-fit of one
    data set; ``("original", target, seed, e)``, a target's original estimate; or ``("rerun",
    target, seed, e, rerun)``, the ``(estimate, std_err)`` of one re-estimate a refuter asked
    for. ``e`` is the data set's propensity cross-fit when in hand (None: fitted here). An
    error comes back as an ``("error", text)`` pair."""
    kind = task[0]
    try:
        if kind == "propensity":
            _, X, W, seed = task
            return cross_fit_propensity(X, W, n_folds=PROPENSITY_FOLDS, random_state=seed, clip=0.0)
        target, seed, e = task[1:4]
        if kind == "original":
            return target.estimate_fn(target.X, target.W, *target.outcome, seed=seed, propensity=e)
        rerun = task[4]
        return target.estimate_fn(
            rerun.X, rerun.W, *rerun.outcome, seed=seed, propensity=e
        ).as_pair()
    except STAGE_FAILURES as exc:  # recorded, the other targets go on
        return ("error", f"{type(exc).__name__}: {exc}")


def _is_error(result) -> bool:
    return isinstance(result, tuple) and len(result) == 2 and result[0] == "error"


def _planned_reruns(target: _Target, seed: int) -> dict[str, list | tuple]:
    """Per refuter, its changed data sets (``hte.evaluation.refutation.reruns``) or the error
    that stopped drawing them."""
    out: dict[str, list | tuple] = {}
    for name in REFUTERS:
        try:
            out[name] = reruns(
                name,
                target.X,
                target.W,
                target.outcome,
                seed=seed,
                n_subsets=N_SUBSETS,
                fraction=SUBSET_FRACTION,
            )
        except STAGE_FAILURES as exc:
            out[name] = ("error", f"{type(exc).__name__}: {exc}")
    return out


def _shared_propensities(
    data_sets: list[tuple[np.ndarray, np.ndarray]], known: dict[str, np.ndarray], seed: int
) -> dict[str, np.ndarray]:
    """The propensity cross-fit of every distinct data set (by ``_data_key``): ``known`` ones
    as given, the others fitted once each in worker processes. A data set whose fit fails is
    left out (each estimate then refits it and records the error)."""
    out = dict(known)
    todo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for X, W in data_sets:
        key = _data_key(X, W)
        if key not in out:
            todo.setdefault(key, (X, W))
    tasks = [("propensity", X, W, seed) for X, W in todo.values()]
    for key, e in zip(todo, map_tasks(_run_task, tasks, PROCESSES), strict=True):
        if not _is_error(e):
            out[key] = e
    return out


def _refute_targets(
    targets: list[_Target], seed: int, alpha: float, known: dict[str, np.ndarray] | None = None
) -> list[tuple]:
    """Per target, its original (or the error that stopped it) and its refuters' results, in
    ``REFUTERS`` order. Every estimate is independent of the others (a refuter needs the
    original only to judge its re-estimates), so the missing originals and every refuter's
    re-estimates (7 per target: placebo, random common cause and the data subsets) run as one
    flat list in ``PROCESSES`` worker processes (``hte.pipeline.parallel``), the targets in
    their order (the survival ones, the slowest, first). Each refuter draws its changes from
    its own seeded stream, so the targets' re-runs share their data sets (the same permuted
    arms, noise column or subset rows): each data set's propensity is cross-fitted once, before
    the estimates, and read by every target (``known``: ones already in hand, by
    ``_data_key``). The numbers are those ``refute`` gives."""
    plans = {t.name: _planned_reruns(t, seed) for t in targets}
    missing = [t for t in targets if t.original is None]
    runs = [(t, r) for t in targets for p in plans[t.name].values() if not _is_error(p) for r in p]
    propensity = _shared_propensities(
        [(t.X, t.W) for t in missing] + [(r.X, r.W) for _, r in runs], known or {}, seed
    )
    tasks: list[tuple] = [
        ("original", t, seed, propensity.get(_data_key(t.X, t.W))) for t in missing
    ]
    tasks += [("rerun", t, seed, propensity.get(_data_key(r.X, r.W)), r) for t, r in runs]
    done = map_tasks(_run_task, tasks, PROCESSES)  # read back in the order of ``tasks``
    originals = {t.name: next(done) if t.original is None else t.original for t in targets}
    out = []
    for t in targets:
        refuted = []
        for name in REFUTERS:
            plan = plans[t.name][name]
            if _is_error(plan):
                refuted.append(plan)
                continue
            estimates = [next(done) for _ in plan]
            refuted.append(_judged(name, estimates, originals[t.name], alpha))
        out.append((originals[t.name], refuted))
    return out


def _judged(name: str, estimates: list, original, alpha: float):
    """The refuter's result, or the first error among its re-estimates (or its original's)."""
    failed = next((e for e in estimates if _is_error(e)), None)
    if failed is not None:
        return failed
    if _is_error(original):
        return original
    return verdict(
        name,
        estimates,
        original.as_pair(),
        alpha=alpha,
        tolerance=RCC_TOLERANCE,
        fraction=SUBSET_FRACTION,
    )


def _target_entries(target: _Target, original, refuted: list, alpha: float):
    """Refutation entries and the E-value entry of one target from its results."""
    if _is_error(original):
        log.warning("robustness: %s estimate failed: %s", target.name, original[1])
        return _failed_refutations(target.name, original[1]), _failed_evalue(
            target.name, "RR", original[1]
        )
    failed = next((r for r in refuted if _is_error(r)), None)
    if failed is not None:  # e.g. a subset without follow-up to the horizon: recorded
        log.warning("robustness: %s refutations failed: %s", target.name, failed[1])
        entries = _failed_refutations(target.name, failed[1], original.estimate)
    else:
        entries = [_refutation_entry(target.name, r) for r in refuted]
    r1, r0 = (
        (1 - original.value_cart, 1 - original.value_tec)
        if target.complement
        else (original.value_cart, original.value_tec)
    )
    note = (
        f"{target.what}: CAR-T {r1:.4g} vs teclistamab {r0:.4g} ({original.method}); risk "
        "ratio CAR-T / teclistamab with a delta-method Wald interval on log RR"
    )
    try:
        ratio = _ratio_evalue(original, complement=target.complement, alpha=alpha)
        ev = _evalue_entry(target.name, ratio, note)
    except ValueError as exc:
        ev = _failed_evalue(target.name, "RR", str(exc))
    return entries, ev


def _hazard_ratio_evalue(data: AnalysisData, baselines: dict) -> dict | None:
    hr = baselines.get("hazard_ratio_iptw")
    if hr is None:
        return None
    t, d = data.survival_outcome()
    knots, surv = weighted_kaplan_meier(t, d.astype(float), np.ones(t.size))
    idx = np.searchsorted(knots, HR_HORIZON_MONTHS, side="right") - 1
    risk = 1.0 - (surv[idx] if idx >= 0 else 1.0)
    rare = bool(risk < RARE_OUTCOME)
    note = (
        f"IPTW Cox hazard ratio (baselines.hazard_ratio_iptw, follow-up cut at "
        f"{HR_HORIZON_MONTHS:g} months); Kaplan-Meier risk of death by the cut {risk:.2f} "
        f"({'rare' if rare else 'common'}: threshold {RARE_OUTCOME:g})"
    )
    try:
        ev = evalue_hr(hr["hr"], hr["lower"], hr["upper"], rare=rare)
    except ValueError as exc:
        return _failed_evalue("os", "HR", str(exc))
    return _evalue_entry("os", ev, note)


def _shared_crs_original(data: AnalysisData, outcome: str, seed: int) -> DRAverage | None:
    """The AIPW original of a CRS target from the analysis's shared nuisances, when they are
    exactly what ``aipw_risk_difference`` would fit (same seed, every patient carries the
    outcome: the propensity is then the same cross-fit); None otherwise (it is refitted)."""
    shared = data.nuisances
    if shared is None or shared.settings.get("random_state") != seed or outcome not in shared.crs:
        return None
    risks = shared.crs[outcome]
    if not risks.keep.all() or data.propensity is None:
        return None
    return aipw_from_nuisances(risks.y, data.treatment, data.propensity, risks.mu1, risks.mu0)


def _known_propensity(data: AnalysisData, X: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The analysis's own propensity cross-fit (``_data_key`` -> values) when it is the one a
    DR average of the whole analysis would fit (the shared nuisances' seed and folds), else
    nothing: then it is fitted with the re-runs'."""
    shared = data.nuisances
    if shared is None or data.propensity is None:
        return {}
    settings = shared.settings
    if settings.get("random_state") != seed or settings.get("n_folds") != PROPENSITY_FOLDS:
        return {}
    return {_data_key(X, data.treatment): data.propensity}


def robustness_checks(
    data: AnalysisData, baselines: dict, config: ExperimentConfig, seed: int
) -> dict:
    """Refutation tests and E-values of one analysis's average effects (module docstring)."""
    alpha = config.evaluation.alpha
    X = data.X.to_numpy(dtype=float)
    targets: list[_Target] = []
    os_cfg = config.outcomes.os
    if os_cfg.enabled and data.has_os and os_cfg.survival_horizon is not None:
        horizon = float(os_cfg.survival_horizon)
        fn = partial(
            aipcw_survival_difference, horizon=horizon, n_folds=PROPENSITY_FOLDS, n_jobs=N_JOBS
        )
        targets.append(
            _Target(
                "survival",
                fn,
                X,
                data.treatment,
                data.survival_outcome(),
                complement=True,
                what=f"risk of death by {horizon:g} months",
            )
        )
    grade = data.cohort[CRS_GRADE].to_numpy() if CRS_GRADE in data.cohort.columns else None
    for outcome in crs_outcomes(config, data.cohort):
        crs = data.cohort[CRS].to_numpy(dtype=int)
        y, keep = crs_binary_outcome(crs, grade, outcome, len(data.cohort))
        what = "risk of any-grade CRS" if outcome == "crs" else "risk of grade >= 3 CRS"
        if not keep.all():
            what += f" ({int((~keep).sum())} patients without a recorded grade left out)"
        targets.append(
            _Target(
                outcome,
                partial(aipw_risk_difference, n_folds=PROPENSITY_FOLDS),
                X[keep],
                data.treatment[keep],
                (y[keep],),
                complement=False,
                what=what,
                original=_shared_crs_original(data, outcome, seed),
            )
        )
    refutations: list[dict] = []
    evalues: list[dict] = []
    for target, (original, refuted) in zip(
        targets,
        _refute_targets(targets, seed, alpha, _known_propensity(data, X, seed)),
        strict=True,
    ):
        entries, ev = _target_entries(target, original, refuted, alpha)
        refutations += entries
        evalues.append(ev)
    if config.outcomes.os.enabled and data.has_os:
        hr = _hazard_ratio_evalue(data, baselines)
        if hr is not None:
            evalues.append(hr)
    return {"refutations": refutations, "evalues": evalues}
