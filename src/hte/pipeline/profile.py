"""Per-patient answers for the profile explorer (the Gradio app's one modelling entry point).

Query time: ``ProfileExplorer.from_run(run_dir)`` and its methods ``fields``, ``examples``,
``default_profile``, ``validate``, ``effects``, ``waterfall``, ``what_moves_it``. The pieces:

- ``hte.pipeline.profile_bundle``: run time, ``fit_profile_bundle`` (inside ``hte run``) and what it
  stores (``ProfileBundle``: fields, propensity, per-arm prognosis models, effect sources,
  SHAP surrogates);
- ``hte.pipeline.profile_fields``: the covariate fields, validation, example profiles, encoding;
- ``hte.pipeline.profile_effects``: what one query answers (``ProfileEffects``) and per-arm
  numbers that agree with the effect estimates (``hte.pipeline.profile_arms``);
- ``hte.pipeline.profile_support``: joint covariate support;
- the models under ``hte.estimators``: ``prognosis`` (ridge Cox / logistic bootstrap ensembles)
  and ``grf_reader`` (a fast reading of the run's forests).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte.array_checks import feature_names_match
from hte.estimators.boosting_reader import boosting_reader
from hte.estimators.grf_reader import grf_reader
from hte.estimators.survival_curves import CounterfactualSurvivalEstimator
from hte.pipeline.profile_bundle import (
    PROFILE_FILE,
    SURROGATE_FOLDS,
    EffectSource,
    ProfileBundle,
    fit_profile_bundle,
)
from hte.pipeline.profile_effects import (
    Estimate,
    ProfileEffects,
    arm_risks,
    coherent_survival,
    finite_or_none,
    plain_value,
    summary_text,
)
from hte.pipeline.profile_fields import (
    ProfileError,
    ProfileField,
    coerce_profile,
    encode_row,
    out_of_range,
    profile_frame,
    sweep_values,
    validate_profile,
)
from hte.pipeline.profile_support import support_flags
from hte.vocabulary import target as target_info

__all__ = [
    "Estimate",
    "ProfileBundle",
    "ProfileEffects",
    "ProfileError",
    "ProfileExplorer",
    "ProfileField",
    "encode_row",
    "fit_profile_bundle",
]

OVERLAP_BOUNDS = (0.05, 0.95)
TARGET_WORDS = {
    "survival": "difference in {h:g}-month survival probability (CAR-T minus teclistamab)",
    "rmst": "difference in restricted mean survival up to {h:g} months, in months",
    "crs": "difference in risk of CRS, any grade (CAR-T minus teclistamab)",
    "crs_g3": "difference in risk of grade >= 3 CRS (CAR-T minus teclistamab)",
}


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
        # survival models whose fitted feature names are the design's, checked once here: a query
        # hands them the design row as an array (checking a frame's names and dtypes on every
        # call cost ~0.3 ms each, four calls per answer)
        self._array_models = {
            target
            for target, model in models.items()
            if isinstance(model, CounterfactualSurvivalEstimator)
            and feature_names_match(self._columns, model)
        }
        self._threads = None
        # the propensity model read in numpy (bit for bit its own numbers, ~10x faster per row)
        self._propensity_reader = boosting_reader(bundle.propensity_model.model_)
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
        if self._propensity_reader is not None:
            p = float(self._propensity_reader.predict_proba(X.to_numpy(dtype=float))[0])
        else:
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
        model = self.models[target]
        if isinstance(model, CounterfactualSurvivalEstimator):  # its estimate() draws curves too
            rows = X.to_numpy(dtype=float) if target in self._array_models else X
            lower, upper = model.predict_interval(rows, alpha)
            return np.asarray(model.predict(rows)), np.asarray(lower), np.asarray(upper)
        est = model.estimate(X, alpha=alpha)
        return np.asarray(est.effect), np.asarray(est.lower), np.asarray(est.upper)

    def _effect_estimate(self, target: str, X: pd.DataFrame) -> Estimate | None:
        if target not in self.bundle.sources:
            return None
        point, lower, upper = (float(v[0]) for v in self._effect(target, X))
        source = self.bundle.sources[target]
        name = "average effect (DR)" if source.constant is not None else source.estimator
        return Estimate(point, finite_or_none(lower), finite_or_none(upper), name)

    def _patients_like_this(self, shown: dict[str, Estimate | None]) -> dict:
        """Per target with held-out groups: the group of the profile's predicted benefit (the
        shown estimate, ``shown[target]``) and that group's DR estimate (an interval for the
        group's mean effect, not one patient's)."""
        out = {}
        for target, source in self.bundle.sources.items():
            if not source.groups:
                continue
            if source.constant is not None:
                k = 0
            else:
                k = int(np.searchsorted(np.asarray(source.cuts), shown[target].value))
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
        curves, (s_cart, s_tec), (r_cart, r_tec), coherence = coherent_survival(
            b.curves, b.alpha, arr, h_surv, h_rmst, surv_diff, rmst_diff
        )
        crs_cart, crs_tec, own_crs = arm_risks(b.crs_risk.get("crs"), b.alpha, arr, crs_diff)
        g3_cart, g3_tec, own_g3 = arm_risks(b.crs_risk.get("crs_g3"), b.alpha, arr, g3_diff)
        if coherence:
            coherence["prognosis_model"].update(
                {k: v for k, v in (("crs", own_crs), ("crs_g3", own_g3)) if v is not None}
            )
        summary, icons = summary_text(h_surv, s_cart, s_tec, crs_cart, crs_tec, overlap)
        constant = [t for t, s in b.sources.items() if s.constant is not None]
        if constant:
            summary += (
                f" For {', '.join(target_info(t).plain for t in constant)}: this cohort does not "
                "support individual differences; showing the average effect."
            )
        return ProfileEffects(
            analysis=b.analysis,
            alpha=b.alpha,
            profile={k: plain_value(v) for k, v in row.items()},
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
            patients_like_this=self._patients_like_this(
                {"survival": surv_diff, "rmst": rmst_diff, "crs": crs_diff, "crs_g3": g3_diff}
            ),
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
                "value": plain_value(row[name]) if name in row else None,
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
        values = sweep_values(f, int(n_points))
        with self._single_thread():
            if self._fast_encoding:  # one encoded row per value, no DataFrame per query
                X = pd.DataFrame(
                    np.vstack([encode_row(self.bundle.encoder, row | {field: v}) for v in values]),
                    columns=self._columns,
                )
            else:
                rows = pd.concat(
                    [profile_frame(self.bundle.fields, row)] * len(values), ignore_index=True
                )
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


def _horizon(source: EffectSource | None) -> float | None:
    return None if source is None or source.horizon is None else float(source.horizon)
