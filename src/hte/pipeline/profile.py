"""Per-patient answers for the profile explorer (the Gradio app's one modelling entry point).

Run time (inside ``hte run``, when models are written): ``fit_profile_bundle`` fits what a what-if
query needs beyond the run's saved estimators and the run stores it as
``models/<analysis>/profile.joblib`` (hash-checked like every model):

- the covariate fields (labels, kinds, units, observed ranges, defaults) and example profiles;
- a propensity model fitted on the analysed cohort (``hte.design.propensity.PropensityModel``) and
  the cohort's propensity support, to flag profiles with poor overlap;
- per-arm survival curves with pointwise bands: a ridge Cox model per arm refitted on 200 within-arm
  bootstrap resamples; the band is the 2.5-97.5% bootstrap percentile of the curve for this profile,
  i.e. the sampling uncertainty of that model's curve (it assumes proportional hazards, linear in
  the covariates, within each arm; it is not a prediction interval for one patient's survival);
- per-arm CRS risks (any grade; grade >= 3 where recorded) the same way, with ridge logistic models;
- which of the run's estimators gives each effect and its interval: the model the run chose by
  held-out doubly robust loss (``hte.pipeline.model_choice``). When the constant effect won, the
  explorer shows the DR average effect for every profile and says so. Without a choice (older
  callers) a preference order: for OS the causal survival forest, falling back to the
  DR-learner, the Cox interaction baseline, then the meta-learners (the first fitted one with
  finite intervals); for CRS the CRS causal forest, then the logistic interaction baseline;
- "patients like this": the chosen model's held-out predicted-benefit quintiles with their DR
  estimates and intervals; a profile is placed in the group of its predicted benefit;
- SHAP surrogates: boosted trees fitted to those estimators' CATE on the whole analysed cohort with
  3-fold cross-validated fidelity R^2, so one profile's waterfall is exact TreeSHAP in milliseconds.

Query time: ``ProfileExplorer.from_run(run_dir)`` and its methods ``fields``, ``examples``,
``default_profile``, ``validate``, ``effects``, ``waterfall``, ``what_moves_it``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte.data.columns import CRS, CRS_GRADE
from hte.pipeline.profile_arms import (
    match_curves,
    restricted_mean,
    shift_risks,
    split_difference,
)
from hte.pipeline.profile_fields import (
    ProfileError,
    ProfileField,
    build_fields,
    coerce_profile,
    example_profiles,
    out_of_range,
    profile_frame,
    typical_profile,
    validate_profile,
)
from hte.pipeline.profile_models import (
    CoxArmEnsemble,
    GRFReader,
    LogisticArmEnsemble,
    fit_cox_ensemble,
    fit_logistic_ensemble,
    percentile_band,
)
from hte.pipeline.profile_support import JointSupport, fit_joint_support, support_flags

__all__ = [
    "Estimate",
    "ProfileBundle",
    "ProfileEffects",
    "ProfileError",
    "ProfileExplorer",
    "ProfileField",
    "fit_profile_bundle",
]

log = logging.getLogger("hte.pipeline")

PROFILE_FILE = "profile.joblib"
TARGETS = ("survival", "rmst", "crs", "crs_g3")
OS_PRIORITY = ("causal_survival_forest", "dr_learner", "cox_interaction", "t_learner", "s_learner")
CRS_PRIORITY = ("crs_causal_forest", "logistic_interaction")
TARGET_NAMES = {  # plain words for the summary sentence
    "survival": "survival",
    "rmst": "months of life gained",
    "crs": "CRS",
    "crs_g3": "severe (grade 3+) CRS",
}
N_BOOTSTRAP = 200  # bootstrap refits of the per-arm curve and risk models
RIDGE_PENALTY = 1.0  # on standardized covariates, in units of the summed log-likelihood
OVERLAP_BOUNDS = (0.05, 0.95)
SURROGATE_FOLDS = 3
GRID_STEP = 0.5  # months between points of the survival curves
EFFECT_DECIMALS = 8  # as hte.pipeline.explain: surrogates fit the same numbers on every rerun
TARGET_WORDS = {
    "survival": "difference in {h:g}-month survival probability (CAR-T minus teclistamab)",
    "rmst": "difference in restricted mean survival up to {h:g} months, in months",
    "crs": "difference in risk of CRS, any grade (CAR-T minus teclistamab)",
    "crs_g3": "difference in risk of grade >= 3 CRS (CAR-T minus teclistamab)",
}


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
        f for f in fits
        if f.target == target and f.model is not None and f.error is None and f.estimate is not None
    ]  # fmt: skip
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
    interval = (
        f"{chosen.estimator}'s own {100 * (1 - chosen.estimate.alpha):g}% interval"
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
        target, chosen.estimator, chosen.kind, f"{label}/{chosen.key}.joblib",
        chosen.horizon, fast, interval, **extra,
    )  # fmt: skip


def grf_reader(model, kind: str) -> GRFReader | None:
    """A fast reader of the run estimator's forest (CSF, CRS causal forest), None for others."""
    if kind == "causal_survival_forest":
        return GRFReader(model.forest_)
    if kind == "crs_causal_forest":
        final = model.model_.ortho_learner_model_final_._model_final
        if final._featurizer is not None or len(final._model.estimators_) != 1:
            return None
        forest = final._model.estimators_[0]
        projector = np.zeros(forest.n_outputs_)
        projector[0] = 1.0  # the treatment effect; the rest is econml's intercept
        return GRFReader(forest, projector)
    return None


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
        n_estimators=100, max_depth=4, learning_rate=0.1, subsample=0.5, min_samples_leaf=5,
        random_state=seed,
    )  # fmt: skip
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
    from hte.estimators.crs_forest import crs_binary_outcome

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
    for target in TARGETS:
        priority = OS_PRIORITY if target in ("survival", "rmst") else CRS_PRIORITY
        choice = (choices or {}).get(target)
        source = _choose_source(fits, target, priority, data.label, X, choice)
        if source is not None:
            sources[target] = source

    clock = time.perf_counter()
    curves = None
    if data.has_os and config.outcomes.os.enabled:
        t, d = data.survival_outcome()
        horizons = [s.horizon for s in sources.values() if s.horizon is not None]
        grid = _curve_grid(t, data.treatment, horizons)
        curves = fit_cox_ensemble(
            arr, t, d, data.treatment, grid, n_bootstrap=N_BOOTSTRAP, penalty=RIDGE_PENALTY,
            seed=seed,
        )  # fmt: skip
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
                arr[keep], y[keep], data.treatment[keep], n_bootstrap=N_BOOTSTRAP,
                penalty=RIDGE_PENALTY, seed=seed,
            )  # fmt: skip
    seconds["crs_risks"] = time.perf_counter() - clock

    clock = time.perf_counter()
    by_key = {(f.estimator, f.target): f for f in fits}
    surrogates = {
        target: _fit_surrogate(by_key[(s.estimator, target)].estimate.effect, X, seed)
        for target, s in sources.items()
    }
    seconds["surrogates"] = time.perf_counter() - clock
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


# --------------------------------------------------------------------------------------------------
# Query time: results


@dataclass(frozen=True)
class Estimate:
    """A number with its (1 - alpha) interval (None where the source offers none) and its source."""

    value: float
    lower: float | None
    upper: float | None
    source: str


@dataclass(frozen=True)
class ProfileEffects:
    """Everything the app shows for one profile. Differences are CAR-T minus teclistamab;
    survival and risks are probabilities (0-1), RMST in months. ``to_json()`` for the browser."""

    analysis: str
    alpha: float
    profile: dict
    defaults_used: tuple[str, ...]
    survival_horizon: float | None
    rmst_horizon: float | None
    survival_difference: Estimate | None  # S_cart(h) - S_tec(h), the run's effect estimator
    rmst_difference: Estimate | None
    survival_cart: Estimate | None  # S_a(h | x) from the per-arm curves, with the band
    survival_tec: Estimate | None
    crs_cart: Estimate | None  # P(CRS | x, arm), per-arm ridge logistic bootstrap
    crs_tec: Estimate | None
    crs_difference: Estimate | None  # the run's CRS effect estimator
    crs_g3_cart: Estimate | None
    crs_g3_tec: Estimate | None
    crs_g3_difference: Estimate | None
    curves: dict | None  # times, cart/tec: survival, lower, upper; band (what it means)
    propensity: float
    propensity_support: tuple[float, float]
    out_of_range: tuple[str, ...]
    low_overlap: bool
    warnings: tuple[str, ...]
    summary: str
    icon_counts: dict
    notes: dict
    # target -> the DR estimate of the chosen model's predicted-benefit group the profile falls in
    patients_like_this: dict = field(default_factory=dict)
    rmst_cart: Estimate | None = None  # months alive up to the RMST horizon, from the curves
    rmst_tec: Estimate | None = None
    # what the per-arm prognosis model alone gave (before agreeing with the effect estimates)
    coherence: dict = field(default_factory=dict)
    # per arm: distance to the k most similar patients, the cohort's 99% threshold, the fields
    # that set the profile apart (hte.pipeline.profile_support)
    joint_support: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        from hte.runs import round_floats

        return round_floats(asdict(self))


# --------------------------------------------------------------------------------------------------
# Query time: the explorer


class ProfileExplorer:
    """Per-patient answers from one analysis of a run folder (models loaded hash-checked)."""

    def __init__(self, bundle: ProfileBundle, models: dict[str, Any], run_dir: Path | None = None):
        self.bundle = bundle
        self.models = models  # target -> the run estimator named in bundle.sources
        self.run_dir = run_dir
        self._readers = {
            target: grf_reader(models[target], source.kind)
            for target, source in bundle.sources.items()
            if source.fast
        }
        self._fields = {f.name: f for f in bundle.fields}
        self._explainers: dict[str, Any] = {}
        self._columns = list(bundle.encoder.feature_names_)
        self._threads = None
        default = self.validate(bundle.default)
        self._fast_encoding = np.array_equal(
            encode_row(bundle.encoder, bundle.default), self._design(default).to_numpy(float)
        )

    @classmethod
    def from_run(cls, run_dir: Path, analysis: str | None = None) -> ProfileExplorer:
        """Load the profile bundle and the estimators it names from a run folder (hash-checked by
        ``hte.runs.load_model``); ``analysis`` defaults to the run's first one."""
        from hte.pipeline.predict import PredictError, check_finished_run, load_run_config
        from hte.runs import load_model, read_manifest

        run_dir = Path(run_dir)
        try:
            check_finished_run(run_dir)  # a plain "not a run folder" before any manifest message
            manifest = read_manifest(run_dir)  # also checks the config is this run's (signed)
            config = load_run_config(run_dir)
        except PredictError as exc:
            raise ProfileError("run", str(exc)) from None
        labels = [str(a.label) for a in config.time_zero]
        label = labels[0] if analysis is None else analysis
        if label not in labels:
            raise ProfileError(
                "analysis", f"the run has no analysis {label!r}; choose one of {', '.join(labels)}"
            )
        relpath = f"{label}/{PROFILE_FILE}"
        entry = manifest["files"].get(relpath)
        if entry is None or entry.get("role") != "profile":
            raise ProfileError(
                "run",
                f"{run_dir} has no profile bundle for analysis {label!r} (written before the "
                "profile explorer existed, or without models); rerun `hte run` on its config to "
                "get one",
            )
        try:
            bundle = load_model(run_dir, relpath, manifest)
        except (AttributeError, ImportError) as exc:  # written by an older hte: classes moved
            raise ProfileError(
                "run",
                f"{run_dir}'s profile bundle was written by another version of hte ({exc}); "
                "rerun `hte run` on its config to get one this version reads",
            ) from None
        models = {t: load_model(run_dir, s.relpath, manifest) for t, s in bundle.sources.items()}
        return cls(bundle, models, run_dir)

    # -- fields and profiles
    def fields(self) -> list[ProfileField]:
        return list(self.bundle.fields)

    def examples(self) -> dict[str, dict]:
        return {name: dict(p) for name, p in self.bundle.examples.items()}

    def default_profile(self) -> dict:
        return dict(self.bundle.default)

    def targets(self) -> list[str]:
        """The effect targets this analysis answers (of "survival", "rmst", "crs", "crs_g3")."""
        return list(self.bundle.sources)

    def validate(self, profile: Mapping[str, object]) -> pd.DataFrame:
        """The profile as a one-row cohort frame (left-out fields take the cohort default);
        ``ProfileError(field, rule)`` for an unknown field, wrong type, unknown category, NaN or
        a value outside the schema's limits. Values outside the observed range are accepted (and
        flagged by ``effects``)."""
        return validate_profile(self.bundle.fields, self.bundle.default, profile)[0]

    def _design(self, frame: pd.DataFrame) -> pd.DataFrame:
        return self.bundle.encoder.transform(frame)

    def _encode(self, row: dict) -> pd.DataFrame:
        """The design row of one coerced profile (direct encoding when it was checked equal to
        the run's encoder at load, else the encoder itself)."""
        if self._fast_encoding:
            return pd.DataFrame(encode_row(self.bundle.encoder, row), columns=self._columns)
        return self._design(profile_frame(self.bundle.fields, row))

    def _single_thread(self):
        """One OpenMP / BLAS thread for a query: a single row gains nothing from threads, and on
        a busy machine their spin-waiting made the propensity model's p95 ~100x slower."""
        from threadpoolctl import ThreadpoolController

        if self._threads is None:
            self._threads = ThreadpoolController()  # scans the loaded libraries once
        return self._threads.limit(limits=1)

    def _propensity(self, X: pd.DataFrame) -> float:
        model = self.bundle.propensity_model
        classes = list(getattr(model.model_, "classes_", [0, 1]))
        p = float(model.model_.predict_proba(X.to_numpy(dtype=float))[0, classes.index(1)])
        return float(np.clip(p, model.clip_, 1.0 - model.clip_))

    # -- effects
    def _effect(self, target: str, X: pd.DataFrame):
        """(point, lower, upper) arrays of the target's source for the rows of X: the estimator,
        or the DR average effect for every row when the run chose the constant model."""
        constant = self.bundle.sources[target].constant
        if constant is not None:
            return tuple(np.full(len(X), v, dtype=float) for v in constant)
        return self._model_effect(target, X)

    def _model_effect(self, target: str, X: pd.DataFrame):
        alpha = self.bundle.alpha
        reader = self._readers.get(target)
        if reader is not None:
            point, lower, upper, _ = reader.predict(X.to_numpy(dtype=float), alpha)
            return point, lower, upper
        est = self.models[target].estimate(X, alpha=alpha)
        return np.asarray(est.effect), np.asarray(est.lower), np.asarray(est.upper)

    def _effect_estimate(self, target: str, X: pd.DataFrame) -> Estimate | None:
        if target not in self.bundle.sources:
            return None
        point, lower, upper = (float(v[0]) for v in self._effect(target, X))
        source = self.bundle.sources[target]
        name = "average effect (DR)" if source.constant is not None else source.estimator
        return Estimate(point, _finite(lower), _finite(upper), name)

    def _patients_like_this(self, X: pd.DataFrame) -> dict:
        """Per target with held-out groups: the group of the profile's predicted benefit and that
        group's DR estimate (an interval for the group's mean effect, not one patient's)."""
        out = {}
        for target, source in self.bundle.sources.items():
            if not source.groups:
                continue
            if source.constant is not None:
                k = 0
            else:
                k = int(
                    np.searchsorted(np.asarray(source.cuts), self._model_effect(target, X)[0][0])
                )
            m, lo, hi, n = source.groups[k]
            out[target] = {
                "group": k + 1,
                "n_groups": len(source.groups),
                "n": n,
                "estimate": m,
                "lower": lo,
                "upper": hi,
                "what": (
                    "every patient: the DR estimate of the average effect"
                    if source.constant is not None
                    else f"patients in the same fifth of {source.estimator}'s held-out predicted "
                    "benefit: their DR estimate of the mean effect"
                ),
            }
        return out

    def _arm_members(self, arr: np.ndarray) -> dict | None:
        """The prognosis model's per-arm survival curves, every bootstrap member (row 0 the
        full fit): arm -> (B + 1, len(grid))."""
        ens = self.bundle.curves
        if ens is None:
            return None
        return {arm: ens.survival(arr, arm)[:, 0, :] for arm in ("cart", "tec")}

    def _coherent_survival(self, arr, h_surv, h_rmst, surv_diff, rmst_diff) -> tuple:
        """Curves, per-arm survival at the horizon and per-arm RMST that agree with the effect
        estimates by construction (``hte.pipeline.profile_arms.match_curves``), and what the
        prognosis model alone said."""
        members = self._arm_members(arr)
        if members is None:
            return None, (None, None), (None, None), {}
        ens = self.bundle.curves
        grid = ens.grid
        match = match_curves(
            grid, members["cart"][0], members["tec"][0], h_surv,
            None if surv_diff is None else surv_diff.value, h_rmst,
            None if rmst_diff is None else rmst_diff.value,
        )  # fmt: skip
        curves: dict[str, Any] = {"times": grid}
        scaled = {}
        for arm in ("cart", "tec"):
            scaled[arm] = match.scales[arm].apply(grid, members[arm])
            point, lower, upper = percentile_band(scaled[arm], self.bundle.alpha)
            curves[arm] = {"survival": point, "lower": lower, "upper": upper}
        curves["band"] = (
            f"{100 * (1 - self.bundle.alpha):g}% pointwise bootstrap percentile band "
            f"({ens.n_bootstrap} refits) of the per-arm prognosis model (ridge Cox), scaled to "
            "agree with the effect estimates: the sampling uncertainty of each arm's level, not "
            "a prediction interval for one patient"
        )
        source = "per-arm prognosis model (ridge Cox), adjusted to the effect estimate"
        at_h = self._grid_index(grid, h_surv)
        survival: tuple = (None, None)
        if at_h is not None:
            values = (
                (match.survival.cart, match.survival.tec)
                if match.survival is not None
                else (scaled["cart"][0, at_h], scaled["tec"][0, at_h])
            )
            survival = tuple(
                _banded(value, scaled[arm][1:, at_h], self.bundle.alpha, source)
                for value, arm in zip(values, ("cart", "tec"), strict=True)
            )
        rmst: tuple = (None, None)
        if self._grid_index(grid, h_rmst) is not None:
            areas = {a: restricted_mean(grid, scaled[a], h_rmst) for a in scaled}
            rmst = tuple(
                _banded(float(areas[a][0]), areas[a][1:], self.bundle.alpha, source)
                for a in ("cart", "tec")
            )
        own = {}
        if at_h is not None:
            own["survival"] = {a: float(members[a][0, at_h]) for a in members}
        if self._grid_index(grid, h_rmst) is not None:
            own["rmst"] = {a: float(restricted_mean(grid, members[a][0], h_rmst)) for a in members}
        coherence = {"prognosis_model": own, "rmst_matched": match.rmst_matched}
        return curves, survival, rmst, coherence

    @staticmethod
    def _grid_index(grid: np.ndarray, horizon: float | None) -> int | None:
        if horizon is None:
            return None
        k = int(np.argmin(np.abs(grid - horizon)))
        return k if abs(grid[k] - horizon) <= 1e-9 else None

    def _arm_risks(self, outcome: str, arr: np.ndarray, difference) -> tuple:
        """Per-arm CRS risks agreeing with the effect estimate (the closest pair to the prognosis
        model's with that difference), their bands shifted on the logit scale, and the
        prognosis model's own pair."""
        ens = self.bundle.crs_risk.get(outcome)
        if ens is None:
            return None, None, None
        members = {arm: ens.risk(arr, arm)[:, 0] for arm in ("cart", "tec")}
        own = {arm: float(members[arm][0]) for arm in members}
        source = "per-arm prognosis model (ridge logistic)"
        if difference is not None:
            split = split_difference(own["cart"], own["tec"], difference.value)
            members = {
                "cart": shift_risks(members["cart"], split.cart),
                "tec": shift_risks(members["tec"], split.tec),
            }
            source += ", adjusted to the effect estimate"
        out = []
        for arm in ("cart", "tec"):
            point, lower, upper = percentile_band(members[arm], self.bundle.alpha)
            out.append(Estimate(float(point), float(lower), float(upper), source))
        return out[0], out[1], own

    def _joint_support(self, arr: np.ndarray) -> tuple[list[str], dict]:
        """Flags for a profile unlike the cohort's patients of either arm (all covariates at
        once); nothing for bundles written before the check existed."""
        support = getattr(self.bundle, "support", None)
        if support is None:
            return [], {}
        labels = {f.name: f.label for f in self.bundle.fields}
        return support_flags(support, arr[0], self.bundle.feature_fields, labels)

    def _overlap(self, e: float) -> list[str]:
        lo, hi = self.bundle.propensity_support
        flags = []
        if not OVERLAP_BOUNDS[0] <= e <= OVERLAP_BOUNDS[1]:
            flags.append(
                f"propensity score {e:.3f} is outside [{OVERLAP_BOUNDS[0]}, {OVERLAP_BOUNDS[1]}]: "
                f"patients like this almost always got "
                f"{'CAR-T' if e > 0.5 else 'teclistamab'}, so the comparison rests on few patients"
            )
        if not lo <= e <= hi:
            flags.append(
                f"propensity score {e:.3f} is outside the range where both arms have patients in "
                f"the cohort ({lo:.3f} to {hi:.3f}): the effect is extrapolated"
            )
        return flags

    def effects(self, profile: Mapping[str, object]) -> ProfileEffects:
        """Effects, per-arm survival and CRS risks, curves with bands, propensity and support
        warnings, and a plain-language summary for one profile."""
        row, defaulted = coerce_profile(self.bundle.fields, self.bundle.default, profile)
        with self._single_thread():
            return self._effects(row, defaulted)

    def _effects(self, row: dict, defaulted: list[str]) -> ProfileEffects:
        b = self.bundle
        X = self._encode(row)
        arr = X.to_numpy(dtype=float)
        e = self._propensity(X)
        ranges = out_of_range(b.fields, row)
        joint, joint_detail = self._joint_support(arr)
        overlap = joint + self._overlap(e)
        h_surv = _horizon(b.sources.get("survival"))
        h_rmst = _horizon(b.sources.get("rmst"))
        surv_diff = self._effect_estimate("survival", X)
        rmst_diff = self._effect_estimate("rmst", X)
        crs_diff = self._effect_estimate("crs", X)
        g3_diff = self._effect_estimate("crs_g3", X)
        curves, (s_cart, s_tec), (r_cart, r_tec), coherence = self._coherent_survival(
            arr, h_surv, h_rmst, surv_diff, rmst_diff
        )
        crs_cart, crs_tec, own_crs = self._arm_risks("crs", arr, crs_diff)
        g3_cart, g3_tec, own_g3 = self._arm_risks("crs_g3", arr, g3_diff)
        if coherence:
            coherence["prognosis_model"].update(
                {k: v for k, v in (("crs", own_crs), ("crs_g3", own_g3)) if v is not None}
            )
        summary, icons = _summary(h_surv, s_cart, s_tec, crs_cart, crs_tec, overlap)
        constant = [t for t, s in b.sources.items() if s.constant is not None]
        if constant:
            summary += (
                f" For {', '.join(TARGET_NAMES[t] for t in constant)}: this cohort does not "
                "support individual differences; showing the average effect."
            )
        return ProfileEffects(
            analysis=b.analysis,
            alpha=b.alpha,
            profile={k: _plain(v) for k, v in row.items()},
            defaults_used=tuple(defaulted),
            survival_horizon=h_surv,
            rmst_horizon=h_rmst,
            survival_difference=surv_diff,
            rmst_difference=rmst_diff,
            survival_cart=s_cart,
            survival_tec=s_tec,
            crs_cart=crs_cart,
            crs_tec=crs_tec,
            crs_difference=crs_diff,
            crs_g3_cart=g3_cart,
            crs_g3_tec=g3_tec,
            crs_g3_difference=g3_diff,
            curves=curves,
            propensity=e,
            propensity_support=b.propensity_support,
            out_of_range=tuple(ranges),
            low_overlap=bool(overlap),
            warnings=tuple(ranges + overlap),
            summary=summary,
            icon_counts=icons,
            notes=self._notes(),
            patients_like_this=self._patients_like_this(X),
            rmst_cart=r_cart,
            rmst_tec=r_tec,
            coherence=coherence,
            joint_support=joint_detail,
        )

    def _notes(self) -> dict:
        b = self.bundle
        notes = {
            f"{t}_difference": f"{s.estimator}; interval: {s.interval}; chosen: {s.choice}"
            if s.constant is None
            else f"average effect: {s.choice}"
            for t, s in b.sources.items()
        }
        notes["arm_survival"] = (
            "per-arm prognosis model (ridge Cox per arm, bootstrap percentile band), each arm's "
            "cumulative hazard scaled so that the curves agree with the survival and RMST "
            "differences shown (the pair closest to the prognosis model's)"
        )
        notes["arm_crs"] = (
            "per-arm prognosis model (ridge logistic per arm, bootstrap percentile interval), "
            "moved to the closest pair whose difference is the CRS difference shown"
        )
        notes["propensity"] = (
            "boosted-tree propensity model fitted on the analysed cohort; support = range of "
            "in-sample scores where both arms have patients"
        )
        return notes

    # -- explanation
    def _target(self, target: str) -> None:
        if target not in self.bundle.sources:
            raise ProfileError(
                "target", f"unknown target {target!r}; this run has {', '.join(self.targets())}"
            )

    def waterfall(self, profile: Mapping[str, object], target: str) -> dict:
        """SHAP waterfall of the target's shown effect for one profile, ending exactly at the
        effect the cards show (``base_value + sum(contributions) == total == model_effect``).

        Contributions are exact TreeSHAP values of the bundle's surrogate (boosted trees fitted
        to the chosen model's CATE), summed per clinical field, plus one ``approximation`` entry:
        the chosen model's effect minus the surrogate's prediction (what the surrogate does not
        explain). When the run chose the constant (average) effect, nothing moves it: no
        contributions, base = total = the average effect."""
        self._target(target)
        row, _ = coerce_profile(self.bundle.fields, self.bundle.default, profile)
        with self._single_thread():
            return self._waterfall(row, target)

    def _waterfall(self, row: dict, target: str) -> dict:
        b = self.bundle
        X = self._encode(row)
        source = b.sources[target]
        effect = float(self._effect(target, X)[0][0])
        out = {
            "target": target,
            "description": TARGET_WORDS[target].format(h=source.horizon or 0),
            "estimator": "average effect (DR)" if source.constant is not None else source.estimator,
            "model_effect": effect,
            "total": effect,
        }
        if source.constant is not None:
            return out | {
                "base_value": effect,
                "contributions": [],
                "approximation": 0.0,
                "surrogate_prediction": effect,
                "fidelity_r2": None,
                "fidelity_r2_in_sample": None,
                "fidelity": "the run shows the average effect for every patient: no covariate "
                "moves it",
            }
        surrogate = b.surrogates[target]
        base, contributions, prediction = self._shap(row, X, target)
        return out | {
            "base_value": base,
            "contributions": contributions,
            "approximation": effect - prediction,
            "surrogate_prediction": prediction,
            "fidelity_r2": surrogate.r2_cv,
            "fidelity_r2_in_sample": surrogate.r2_in_sample,
            "fidelity": (
                f"surrogate fidelity R^2 = {surrogate.r2_cv:.3f} ({SURROGATE_FOLDS}-fold "
                f"cross-validated on {surrogate.n} patients); the last bar is what it leaves "
                "unexplained"
            ),
        }

    def _shap(self, row: dict, X: pd.DataFrame, target: str) -> tuple[float, list, float]:
        """(base value, per-field TreeSHAP contributions sorted by size, surrogate prediction)."""
        import shap

        b = self.bundle
        arr = X.to_numpy(dtype=float)
        surrogate = b.surrogates[target]
        if target not in self._explainers:
            self._explainers[target] = shap.TreeExplainer(
                surrogate.model, feature_perturbation="tree_path_dependent"
            )
        explainer = self._explainers[target]
        values = np.asarray(explainer.shap_values(arr, check_additivity=False))[0]
        base = float(np.ravel(explainer.expected_value)[0])
        by_field: dict[str, float] = {}
        for name, value in zip(X.columns, values, strict=True):
            key = b.feature_fields.get(str(name), str(name))
            by_field[key] = by_field.get(key, 0.0) + float(value)
        contributions = [
            {
                "field": name,
                "label": self._fields[name].label if name in self._fields else name,
                "value": _plain(row[name]) if name in row else None,
                "text": self._fields[name].describe(row[name]) if name in self._fields else name,
                "contribution": c,
            }
            for name, c in by_field.items()
        ]
        contributions.sort(key=lambda c: -abs(c["contribution"]))
        return base, contributions, float(surrogate.model.predict(arr)[0])

    def what_moves_it(
        self, profile: Mapping[str, object], field: str, target: str, n_points: int = 25
    ) -> pd.DataFrame:
        """The target's effect and interval as ``field`` varies over its observed range, the
        other fields held: ``n_points`` values for a number (integers: every whole value when
        there are at most ``n_points``), both values of a yes/no field, each category."""
        self._target(target)
        if field not in self._fields:
            raise ProfileError(field, f"unknown field; the models use {', '.join(self._fields)}")
        if int(n_points) < 2:
            raise ProfileError("n_points", f"must be >= 2; got {n_points}")
        f = self._fields[field]
        row, _ = coerce_profile(self.bundle.fields, self.bundle.default, profile)
        values = _sweep_values(f, int(n_points))
        with self._single_thread():
            if self._fast_encoding:  # one encoded row per value, no DataFrame per query
                X = pd.DataFrame(
                    np.vstack([encode_row(self.bundle.encoder, row | {field: v}) for v in values]),
                    columns=self._columns,
                )
            else:
                rows = pd.concat([profile_frame(self.bundle.fields, row)] * len(values),
                                 ignore_index=True)  # fmt: skip
                rows[field] = pd.Series(values, dtype=object if f.kind == "category" else None)
                X = self._design(rows)
            point, lower, upper = self._effect(target, X)
        return pd.DataFrame(
            {
                field: values,
                "effect": point,
                "lower": lower,
                "upper": upper,
                "target": target,
                "estimator": self.bundle.sources[target].estimator,
            }
        )


def encode_row(encoder, row: Mapping[str, object]) -> np.ndarray:
    """(1, p) design row of one complete profile, as ``DesignEncoder.transform`` encodes it
    (numbers and yes/no as floats, categories one-hot without the reference level; an unknown
    value (None) as the encoder's fill with its missingness indicator 1), without building
    DataFrames: a query spends microseconds here, not ~20 ms."""
    values: list[float] = []
    indicator_at: dict[str, int] = {}
    for enc in encoder.encodings_:
        v = row[enc.name]
        unknown = v is None  # only where the encoding has a missing-value path (checked before)
        if enc.kind == "categorical":
            values.extend(0.0 if unknown else float(str(v) == level) for level in enc.levels[1:])
        else:
            values.append(float(enc.fill_value) if unknown else float(v))
        if enc.indicator:  # columns missing together at fit share one indicator
            if enc.indicator not in indicator_at:
                indicator_at[enc.indicator] = len(values)
                values.append(0.0)
            if unknown:
                values[indicator_at[enc.indicator]] = 1.0
    return np.asarray([values], dtype=float)


def _sweep_values(f: ProfileField, n_points: int) -> list:
    if f.kind == "boolean":
        return [False, True]
    if f.kind == "category":
        return list(f.choices)
    if f.kind == "integer":
        lo, hi = int(np.rint(f.minimum)), int(np.rint(f.maximum))
        if hi - lo + 1 <= n_points:
            return list(range(lo, hi + 1))
        return sorted({int(np.rint(v)) for v in np.linspace(lo, hi, n_points)})
    # continuous: the cohort's 1st-99th percentiles, so a skewed field (ferritin 25-7,000) is not
    # squashed by its outliers; the observed extremes are still reachable through the form
    lo = f.p01 if f.p01 is not None else f.minimum
    hi = f.p99 if f.p99 is not None else f.maximum
    if not hi > lo:
        lo, hi = f.minimum, f.maximum
    return [float(v) for v in np.linspace(lo, hi, n_points)]


def _horizon(source: EffectSource | None) -> float | None:
    return None if source is None or source.horizon is None else float(source.horizon)


def _banded(value: float, members: np.ndarray, alpha: float, source: str) -> Estimate:
    """An adjusted value with the percentile band of its bootstrap members (widened to hold
    the value)."""
    lower, upper = np.quantile(np.asarray(members, float), [alpha / 2, 1 - alpha / 2])
    return Estimate(float(value), float(min(lower, value)), float(max(upper, value)), source)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _plain(v: object) -> object:
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _count(p: float) -> int:
    return int(np.clip(round(100 * p), 0, 100))


def _summary(h, s_cart, s_tec, crs_cart, crs_tec, overlap) -> tuple[str, dict]:
    """The plain-language summary and the icon-array counts (out of 100), both from the per-arm
    numbers (which agree with the effect estimates by construction)."""
    parts, icons = [], {}
    if s_cart is not None and s_tec is not None:
        a, b = _count(s_cart.value), _count(s_tec.value)
        parts.append(
            f"Out of 100 patients like this, about {a} would be alive at {h:g} months with CAR-T "
            f"and {b} with teclistamab"
        )
        icons["survival"] = {
            "horizon_months": h,
            "cart": {"alive": a, "dead": 100 - a},
            "tec": {"alive": b, "dead": 100 - b},
        }
    if crs_cart is not None and crs_tec is not None:
        a, b = _count(crs_cart.value), _count(crs_tec.value)
        icons["crs"] = {"cart": {"crs": a, "no_crs": 100 - a}, "tec": {"crs": b, "no_crs": 100 - b}}
        z = abs(a - b)
        more = "more" if a > b else "fewer"
        crs_text = (
            f"about {z} {more} would have CRS with CAR-T than with teclistamab ({a} vs {b})"
            if z
            else f"about as many would have CRS with either treatment ({a} vs {b})"
        )
        parts.append(crs_text if parts else crs_text[0].upper() + crs_text[1:])
    text = "; ".join(parts) + "." if parts else "No outcome model is available for this analysis."
    if overlap:
        text += " Caution: few patients like this received both treatments in the cohort."
    return text, icons
