"""Run time of the profile explorer: what a what-if query needs beyond the run's saved estimators.

``fit_profile_bundle`` runs inside ``hte run`` when models are written; the run stores its result
as ``models/<analysis>/profile.joblib`` (hash-checked like every model):

- the covariate fields (labels, kinds, units, observed ranges, defaults) and example profiles;
- a propensity model fitted on the analysed cohort (``hte.design.propensity.PropensityModel``) and
  the cohort's propensity support, to flag profiles with poor overlap;
- per-arm survival curves with pointwise bands: a ridge Cox model per arm refitted on 200 within-arm
  bootstrap resamples; the band is the 2.5-97.5% bootstrap percentile of the curve for this profile,
  i.e. the sampling uncertainty of that model's curve (it assumes proportional hazards, linear in
  the covariates, within each arm; it is not a prediction interval for one patient's survival);
  the models live in ``hte.estimators.prognosis``;
- per-arm CRS risks (any grade; grade >= 3 where recorded) the same way, with ridge logistic models;
- which of the run's estimators gives each effect and its interval: the model the run chose by
  held-out doubly robust loss (``hte.pipeline.model_choice``). When the constant effect won, the
  explorer shows the DR average effect for every profile and says so. Without a choice (older
  callers) the registry's preference order (``hte.vocabulary.preference``: for OS the causal
  survival forest, then the DR-learner, the Cox interaction baseline, the meta-learners, BCF; for
  CRS the CRS causal forest, then the logistic interaction baseline, CRS BCF), the first fitted
  one with finite intervals;
- "patients like this": the chosen model's held-out predicted-benefit quintiles with their DR
  estimates and intervals; a profile is placed in the group of its predicted benefit;
- SHAP surrogates: boosted trees fitted to those estimators' CATE on the whole analysed cohort with
  3-fold cross-validated fidelity R^2, so one profile's waterfall is exact TreeSHAP in milliseconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from hte.data.columns import CRS, CRS_GRADE
from hte.estimators.grf_reader import grf_reader
from hte.estimators.prognosis import (
    CoxArmEnsemble,
    LogisticArmEnsemble,
    fit_cox_ensemble,
    fit_logistic_ensemble,
)
from hte.pipeline.parallel import map_tasks
from hte.pipeline.profile_fields import (
    ProfileField,
    build_fields,
    example_profiles,
    typical_profile,
)
from hte.pipeline.profile_support import JointSupport, fit_joint_support
from hte.vocabulary import TARGET_NAMES, preference

log = logging.getLogger("hte.pipeline")

PROFILE_FILE = "profile.joblib"
N_BOOTSTRAP = 200  # bootstrap refits of the per-arm curve and risk models
N_JOBS = 2  # worker processes of the SHAP surrogates (1 = in this process)
RIDGE_PENALTY = 1.0  # on standardized covariates, in units of the summed log-likelihood
SURROGATE_FOLDS = 3
GRID_STEP = 0.5  # months between points of the survival curves
EFFECT_DECIMALS = 8  # as hte.pipeline.explain: surrogates fit the same numbers on every rerun


# --------------------------------------------------------------------------------------------------
# What the run stores


@dataclass(frozen=True)
class EffectSource:
    """The run estimator that gives one target's effect and interval in the explorer."""

    target: str
    estimator: str
    kind: str
    relpath: str  # under models/, hash-checked at load
    horizon: float | None
    fast: bool  # read with GRFReader (checked equal to the estimator's own intervals at run time)
    interval: str
    choice: str = "preference order (no held-out model choice recorded)"
    # (estimate, lower, upper) of the DR average effect when the constant model was chosen: shown
    # for every profile instead of the estimator's CATE
    constant: tuple[float, float, float] | None = None
    cuts: tuple[float, ...] = ()  # predicted-benefit group boundaries of the chosen model
    groups: tuple[tuple[float, float, float, int], ...] = ()  # per group: DR estimate, lo, hi, n


@dataclass
class Surrogate:
    """Boosted trees fitted to one estimator's CATE on the analysed cohort (for TreeSHAP)."""

    model: Any
    r2_cv: float
    r2_in_sample: float
    n: int


@dataclass
class ProfileBundle:
    """Everything a what-if query needs beyond the run's saved estimators (see module docstring)."""

    analysis: str
    alpha: float
    fields: list[ProfileField]
    default: dict
    examples: dict[str, dict]
    encoder: Any
    feature_fields: dict[str, str]  # design column -> field
    propensity_model: Any
    propensity_support: tuple[float, float]  # where both arms have patients (in-sample scores)
    curves: CoxArmEnsemble | None
    crs_risk: dict[str, LogisticArmEnsemble]
    sources: dict[str, EffectSource]
    surrogates: dict[str, Surrogate]
    n_patients: int
    seconds: dict[str, float] = field(default_factory=dict)
    # joint support: the arms' patients on a common scale (hte.pipeline.profile_support)
    support: JointSupport | None = None


# --------------------------------------------------------------------------------------------------
# Run time


def _choose_source(
    fits, target: str, priority: tuple[str, ...], label: str, X, choice=None
) -> EffectSource | None:
    """The target's effect source: the run's held-out choice (``ModelChoice``) when given and
    usable, else the first usable fit in ``priority`` (with intervals first). A constant choice
    keeps the preference-order fit as the loaded model (for the waterfall) but shows the DR
    average effect."""
    usable = [
        f
        for f in fits
        if f.target == target and f.model is not None and f.error is None and f.estimate is not None
    ]
    rank = {kind: i for i, kind in enumerate(priority)}
    usable.sort(key=lambda f: rank.get(f.kind, len(priority)))
    with_intervals = [f for f in usable if np.isfinite(f.estimate.lower).all()]
    chosen = (with_intervals or usable or [None])[0]
    picked = [f for f in usable if choice is not None and f.estimator == choice.estimator]
    if picked:
        chosen = picked[0]
    if chosen is None:
        return None
    fast = _fast_reader_agrees(chosen, X)
    level = 100 * (1 - chosen.estimate.alpha)
    interval = (
        getattr(chosen.model, "interval_words", lambda _: None)(level)
        or f"{chosen.estimator}'s own {level:g}% interval"
        if np.isfinite(chosen.estimate.lower).all()
        else f"none ({chosen.estimator} offers no interval)"
    )
    extra: dict = {}
    if choice is not None and (picked or choice.is_constant):
        extra = {"choice": choice.reason, "cuts": choice.cuts, "groups": choice.groups}
        if choice.is_constant:
            extra["constant"] = choice.constant
            interval = f"{100 * (1 - choice.alpha):g}% interval of the DR average effect"
    return EffectSource(
        target,
        chosen.estimator,
        chosen.kind,
        f"{label}/{chosen.key}.joblib",
        chosen.horizon,
        fast,
        interval,
        **extra,
    )


def _fast_reader_agrees(fit, X: pd.DataFrame, n_rows: int = 5) -> bool:
    """True when GRFReader reproduces the estimator's own effects and intervals (to 1e-9) on a few
    cohort rows; otherwise the explorer calls the estimator itself (slower, same numbers)."""
    try:
        reader = grf_reader(fit.model, fit.kind)
        if reader is None:
            return False
        rows = X.iloc[:n_rows]
        point, lower, upper, _ = reader.predict(rows.to_numpy(float), fit.estimate.alpha)
        own = fit.estimate
        return bool(
            np.allclose(point, own.effect[:n_rows], rtol=0, atol=1e-9)
            and np.allclose(lower, own.lower[:n_rows], rtol=0, atol=1e-9)
            and np.allclose(upper, own.upper[:n_rows], rtol=0, atol=1e-9)
        )
    except (AttributeError, IndexError, ValueError) as exc:  # econml internals changed: fall back
        log.warning("fast forest reader unavailable for %s: %s", fit.key, exc)
        return False


def _fit_surrogate(effect: np.ndarray, X: pd.DataFrame, seed: int) -> Surrogate:
    from sklearn.ensemble import GradientBoostingRegressor

    from hte.explain.attributions import fit_surrogate

    y = np.round(np.asarray(effect, dtype=float), EFFECT_DECIMALS)
    # lighter than hte.explain's default (100 trees, half subsamples): the same fidelity on the
    # default cohort (R^2 0.965 vs 0.965 for the true CATE, 3-fold) at a third of the time
    light = GradientBoostingRegressor(
        n_estimators=100,
        max_depth=4,
        learning_rate=0.1,
        subsample=0.5,
        min_samples_leaf=5,
        random_state=seed,
    )
    model, r2_cv, r2_in = fit_surrogate(
        y, X, surrogate=light, cv=SURROGATE_FOLDS, random_state=seed
    )
    return Surrogate(model, r2_cv, r2_in, len(y))


def _curve_grid(time: np.ndarray, treatment: np.ndarray, horizons) -> np.ndarray:
    """0 to the shorter arm's longest follow-up, every GRID_STEP months, plus the horizons."""
    t_max = min(time[treatment == 1].max(), time[treatment == 0].max())
    grid = np.arange(0.0, np.floor(t_max / GRID_STEP) * GRID_STEP + 1e-9, GRID_STEP)
    extra = [h for h in horizons if h is not None and h <= t_max]
    return np.union1d(grid, extra)


def _propensity(data, seed: int):
    from hte.design.propensity import PropensityModel

    model = PropensityModel().fit(data.X, data.treatment)
    e = model.predict(data.X)
    w = data.treatment
    support = (
        float(max(e[w == 1].min(), e[w == 0].min())),
        float(min(e[w == 1].max(), e[w == 0].max())),
    )
    return model, support


def fit_profile_bundle(
    data, fits: list, config, seed: int, choices: Mapping | None = None
) -> ProfileBundle:
    """Fit the profile explorer's run-time pieces for one analysis (see the module docstring).
    ``choices``: target -> ``hte.pipeline.model_choice.ModelChoice`` (the run's held-out choice)."""
    from hte.estimators.crs_outcomes import crs_binary_outcome

    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    X = data.X.reset_index(drop=True)
    arr = X.to_numpy(dtype=float)
    fields = build_fields(data.cohort, data.design.encoder)
    default = typical_profile(fields, data.cohort)
    feature_fields = {}
    for enc in data.design.encoder.encodings_:
        for name in (*enc.outputs, *([enc.indicator] if enc.indicator else [])):
            feature_fields[name] = enc.name
    propensity_model, support = _propensity(data, seed)
    seconds["fields_and_propensity"] = time.perf_counter() - clock
    clock = time.perf_counter()
    joint = fit_joint_support(arr, data.treatment, list(X.columns))
    seconds["joint_support"] = time.perf_counter() - clock

    sources: dict[str, EffectSource] = {}
    for target in TARGET_NAMES:
        choice = (choices or {}).get(target)
        source = _choose_source(fits, target, preference(target), data.label, X, choice)
        if source is not None:
            sources[target] = source

    # the SHAP surrogates are independent of the curves and risks: they start now in the worker
    # processes (hte.pipeline.parallel, same numbers as here) while this process fits those
    by_key = {(f.estimator, f.target): f for f in fits}
    effects = [by_key[(s.estimator, target)].estimate.effect for target, s in sources.items()]
    pending = map_tasks(partial(_fit_surrogate, X=X, seed=seed), effects, N_JOBS)

    clock = time.perf_counter()
    curves = None
    if data.has_os and config.outcomes.os.enabled:
        t, d = data.survival_outcome()
        horizons = [s.horizon for s in sources.values() if s.horizon is not None]
        grid = _curve_grid(t, data.treatment, horizons)
        curves = fit_cox_ensemble(
            arr,
            t,
            d,
            data.treatment,
            grid,
            n_bootstrap=N_BOOTSTRAP,
            penalty=RIDGE_PENALTY,
            seed=seed,
        )
    seconds["survival_curves"] = time.perf_counter() - clock

    clock = time.perf_counter()
    crs_risk = {}
    if CRS in data.cohort.columns and config.outcomes.crs.enabled:
        grade = data.cohort[CRS_GRADE].to_numpy() if CRS_GRADE in data.cohort.columns else None
        for outcome in config.outcomes.crs.outcomes(has_grade=grade is not None):
            y, keep = crs_binary_outcome(
                data.cohort[CRS].to_numpy(dtype=int), grade, outcome, len(data.cohort)
            )
            crs_risk[outcome] = fit_logistic_ensemble(
                arr[keep],
                y[keep],
                data.treatment[keep],
                n_bootstrap=N_BOOTSTRAP,
                penalty=RIDGE_PENALTY,
                seed=seed,
            )
    seconds["crs_risks"] = time.perf_counter() - clock

    clock = time.perf_counter()
    surrogates = dict(zip(sources, pending, strict=True))
    seconds["surrogates_wait"] = time.perf_counter() - clock
    return ProfileBundle(
        analysis=data.label,
        alpha=float(config.evaluation.alpha),
        fields=fields,
        default=default,
        examples=example_profiles(fields, data.cohort),
        encoder=data.design.encoder,
        feature_fields=feature_fields,
        propensity_model=propensity_model,
        propensity_support=support,
        curves=curves,
        crs_risk=crs_risk,
        sources=sources,
        surrogates=surrogates,
        n_patients=len(X),
        seconds=seconds,
        support=joint,
    )
