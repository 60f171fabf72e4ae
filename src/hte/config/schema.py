"""Experiment config schema: the pydantic models of every section, checked as they are built.

Every section forbids unknown keys; estimator ``params`` are checked against the estimator's own
constructor (names, types, sane bounds). This module holds the whole experiment and its
estimators section; the other sections are ``hte.config.data_sources``, ``hte.config.sections``
and ``hte.config.sweep_spec``, what they share ``hte.config.base``. Reading YAML with line numbers
is ``hte.config.loading``; the checks against the data are ``hte.config.preflight``;
``hte.config`` gathers the public names.
"""

from __future__ import annotations

import inspect
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hte import vocabulary
from hte.config.base import ConfigError, Name, StrictModel, did_you_mean, require_unique
from hte.config.data_sources import DataConfig, FileData, OmopData, SyntheticData
from hte.config.sections import (
    Evaluation,
    Explanation,
    Outcomes,
    Output,
    Seeds,
    TimeZeroAnalysis,
)
from hte.config.sweep_spec import SweepSpec

# The sections' names, read from here by hte.config and the pre-flight checks
__all__ = [
    "ConfigError",
    "DataConfig",
    "Evaluation",
    "ExperimentConfig",
    "Explanation",
    "FileData",
    "OmopData",
    "Outcomes",
    "Output",
    "Seeds",
    "SweepSpec",
    "SyntheticData",
    "TimeZeroAnalysis",
    "did_you_mean",
]

# --------------------------------------------------------------------------------------------------
# Estimators

# kind -> (class name in hte.estimators, outcome it estimates), from the registry (hte.vocabulary)
ESTIMATOR_KINDS: dict[str, tuple[str, str]] = {
    k.name: (k.class_name, k.outcome) for k in vocabulary.ESTIMATOR_KINDS
}
EstimatorKind = Literal[vocabulary.KIND_NAMES]
# Parameters the pipeline sets from other sections, never from params.
_MANAGED_PARAMS = {
    "target": "outcomes.os (each OS estimator is fitted for every horizon)",
    "horizon": "outcomes.os (survival_horizon, rmst_horizon)",
    "outcome": "outcomes.crs (any_grade, grade3)",
    "random_state": "seeds.global",
}


def estimator_class(kind: str) -> type:
    """The estimator class of a config ``kind`` (imports hte.estimators on first use)."""
    from hte.estimators.registry import estimator_class as registered

    return registered(kind)


@cache
def estimator_parameters(kind: str) -> dict[str, Any]:
    """Constructor parameters of a kind: name -> type hint (``Any`` where the class has none)."""
    cls = estimator_class(kind)
    hints = typing.get_type_hints(cls.__init__)
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    return {name: hints.get(name, Any) for name in names}


class EstimatorSpec(StrictModel):
    """One estimator of the experiment: a unique ``name``, its ``kind`` and constructor ``params``.

    ``params`` are checked against the class's ``__init__``: an unknown name, a value of the wrong
    type, or a parameter another section controls (target, horizon, outcome, random_state) is an
    error. Values are stored as written.
    """

    name: Name | None = None
    kind: EstimatorKind
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    @field_validator("params")
    @classmethod
    def _known_params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself is wrong: reported there
            return params
        known = estimator_parameters(kind)
        for key, value in params.items():
            if key in _MANAGED_PARAMS and key in known:
                raise PydanticCustomError(
                    "managed_parameter",
                    "{param} is set by {where}, not in params",
                    {"param": key, "where": _MANAGED_PARAMS[key]},
                )
            if key not in known:
                allowed = [p for p in known if p not in _MANAGED_PARAMS]
                raise PydanticCustomError(
                    "unknown_parameter",
                    "unknown parameter for {kind}{hint} (parameters: {allowed})",
                    {
                        "param": key,
                        "kind": kind,
                        "hint": did_you_mean(key, allowed),
                        "allowed": ", ".join(allowed),
                    },
                )
            _check_param_type(kind, key, value, known[key])
            _check_param_bounds(kind, key, value)
        return params

    @model_validator(mode="after")
    def _default_name(self) -> EstimatorSpec:
        if self.name is None:
            self.name = self.kind
        return self

    @property
    def outcome(self) -> str:
        """The outcome this estimator estimates effects on: "os" or "crs"."""
        return ESTIMATOR_KINDS[self.kind][1]

    def build(
        self,
        *,
        target: str | None = None,
        horizon: float | None = None,
        crs_outcome: str | None = None,
        random_state: int | None = None,
    ):
        """An unfitted estimator: ``params`` plus the managed parameters the class accepts."""
        cls = estimator_class(self.kind)
        known = estimator_parameters(self.kind)
        managed = {
            "target": target,
            "horizon": horizon,
            "outcome": crs_outcome,
            "random_state": random_state,
        }
        kwargs = {k: v for k, v in managed.items() if k in known and v is not None}
        return cls(**kwargs, **self.params)


def _check_param_type(kind: str, key: str, value: object, hint: object) -> None:
    if hint is Any:
        return
    try:
        TypeAdapter(hint).validate_python(value, strict=True)
    except ValidationError:
        expected = getattr(hint, "__name__", None) or str(hint)
        raise PydanticCustomError(
            "parameter_type",
            "{kind} parameter {param} must be {expected}; got {value}",
            {"param": key, "kind": kind, "expected": expected, "value": repr(value)},
        ) from None


# Sane bounds of numeric estimator parameters (inclusive; None = open), whatever the kind.
_PARAM_BOUNDS: dict[str, tuple[float | None, float | None]] = {
    "penalizer": (0, 1e6),
    "penalty": (0, 1e6),
    "n_estimators": (1, 100_000),
    "n_bootstrap": (0, 10_000),
    "min_samples_leaf": (1, 100_000),
    "max_samples": (0, 1),
    "grid_size": (2, 1_000),
    "n_folds": (2, 100),
    "cv": (2, 100),
    "n_jobs": (-1, 256),
    "subforest_size": (1, 1_000),
    "censoring_floor": (0, 1),
    "propensity_clip": (0, 0.5),
    "min_balancedness_tol": (0, 0.5),
    "num_gfr": (1, 1_000),
    "num_burnin": (0, 100_000),
    "num_mcmc": (20, 100_000),
    "mu_trees": (1, 10_000),
    "tau_trees": (1, 10_000),
}


def _check_param_bounds(kind: str, key: str, value: object) -> None:
    bounds = _PARAM_BOUNDS.get(key)
    if bounds is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    lo, hi = bounds
    if (
        not math.isfinite(value)
        or (lo is not None and value < lo)
        or (hi is not None and value > hi)
    ):
        raise PydanticCustomError(
            "parameter_type",
            "{kind} parameter {param} must be {expected}; got {value}",
            {
                "param": key,
                "kind": kind,
                "expected": f"between {lo:g} and {hi:g}",
                "value": repr(value),
            },
        )


KeyPath = tuple[str | int, ...]


@dataclass
class KeySource:
    """Where each key came from: the file's line per key path, and the overrides' key paths."""

    file: str
    lines: dict[KeyPath, int]
    overrides: list[tuple[KeyPath, str]]

    def where(self, path: KeyPath) -> str:
        for opath, text in reversed(self.overrides):
            n = min(len(opath), len(path))
            if n and opath[:n] == path[:n]:
                return f"--set {text}"
        for k in range(len(path), -1, -1):
            if path[:k] in self.lines:
                return f"{self.file} line {self.lines[path[:k]]}"
        return self.file


# --------------------------------------------------------------------------------------------------
# The experiment


class ExperimentConfig(StrictModel):
    """A whole experiment; see configs/default.yaml for every section with comments."""

    name: Name
    description: str = Field("", max_length=10_000)
    data: DataConfig = Field(default_factory=SyntheticData)
    time_zero: list[TimeZeroAnalysis] = Field(
        default_factory=lambda: [TimeZeroAnalysis()], min_length=1
    )
    outcomes: Outcomes = Field(default_factory=Outcomes)
    estimators: list[EstimatorSpec] = Field(min_length=1)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    explanation: Explanation = Field(default_factory=Explanation)
    seeds: Seeds = Field(default_factory=Seeds)
    output: Output = Field(default_factory=Output)
    sweep: SweepSpec | None = None

    _source: KeySource | None = PrivateAttr(default=None)

    @field_validator("time_zero", mode="before")
    @classmethod
    def _single_time_zero(cls, value: object) -> object:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("time_zero")
    @classmethod
    def _unique_labels(cls, value: list[TimeZeroAnalysis]) -> list[TimeZeroAnalysis]:
        require_unique([a.label for a in value], "time-zero label", "give each analysis a label")
        return value

    @field_validator("estimators")
    @classmethod
    def _unique_names(cls, value: list[EstimatorSpec]) -> list[EstimatorSpec]:
        require_unique([e.name for e in value], "estimator name", "give each one a name")
        return value

    @field_validator("estimators")
    @classmethod
    def _outcome_enabled(cls, value: list[EstimatorSpec], info: ValidationInfo) -> list:
        outcomes = info.data.get("outcomes")
        for i, est in enumerate(value if outcomes is not None else []):
            if not getattr(outcomes, est.outcome).enabled:
                raise PydanticCustomError(
                    "outcome_disabled",
                    "{name} estimates {label} effects, but outcomes.{outcome} is disabled; "
                    "remove the estimator or enable the outcome",
                    {
                        "index": i,
                        "name": est.name,
                        "outcome": est.outcome,
                        "label": est.outcome.upper(),
                    },
                )
        return value

    @model_validator(mode="after")
    def _model_average_members(self) -> ExperimentConfig:
        """The model average names configured estimators of one outcome, and no estimator
        carries its name."""
        spec = self.evaluation.model_average
        if spec is None:
            return self
        outcomes = {e.name: e.outcome for e in self.estimators}
        if spec.name in outcomes:
            raise ValueError(
                f"evaluation.model_average.name {spec.name!r} is also an estimator's name; "
                "give the average another name"
            )
        for member in spec.members:
            if member not in outcomes:
                raise ValueError(
                    f"evaluation.model_average member {member!r} is not in the estimators "
                    f"section{did_you_mean(member, list(outcomes))} (names: "
                    f"{', '.join(outcomes)}); name configured estimators, or set "
                    "evaluation.model_average=null"
                )
        kinds = {outcomes[m] for m in spec.members}
        if len(kinds) > 1:
            raise ValueError(
                "evaluation.model_average members must estimate effects on one outcome; got "
                + ", ".join(f"{m} ({outcomes[m]})" for m in spec.members)
            )
        return self

    @model_validator(mode="after")
    def _data_seed(self) -> ExperimentConfig:
        """A synthetic draw without its own seed uses the global seed (written out resolved)."""
        if isinstance(self.data, SyntheticData) and self.data.seed is None:
            self.data = self.data.model_copy(update={"seed": self.seeds.global_seed})
        return self

    @field_validator("sweep")
    @classmethod
    def _sweep_on_this_config(cls, value: SweepSpec | None, info: ValidationInfo) -> object:
        """Sweep estimators name configured estimators; null lists take this config's values."""
        if value is None:
            return value
        data, estimators = info.data.get("data"), info.data.get("estimators")
        if data is not None and not isinstance(data, SyntheticData):
            raise ValueError(
                "a sweep draws synthetic cohorts (scenarios x sizes); set data.source: synthetic"
            )
        if estimators is None:  # the estimators section itself is wrong: reported there
            return value
        names = [e.name for e in estimators]
        for i, name in enumerate(value.estimators or []):
            if name not in names:
                raise PydanticCustomError(
                    "unknown_sweep_item",
                    "{item} is not in the estimators section{hint} (names: {choices})",
                    {
                        "index": i,
                        "item": repr(name),
                        "hint": did_you_mean(name, names),
                        "choices": ", ".join(names),
                        "field": "estimators",
                    },
                )
        defaults = {"estimators": names}
        if data is not None:
            defaults |= {"scenarios": [data.scenario], "sizes": [data.n]}
        seeds = info.data.get("seeds")
        if seeds is not None:
            defaults["seeds"] = [seeds.global_seed]
        fill = {k: v for k, v in defaults.items() if getattr(value, k) is None}
        return value.model_copy(update=fill)

    @property
    def seed(self) -> int:
        """The global seed (``seeds.global``)."""
        return self.seeds.global_seed

    def source_of(self, path: Sequence[str | int]) -> str:
        """Where a key came from, for messages: "file line N", "--set ..." or "config"."""
        return self._source.where(tuple(path)) if self._source else "config"


def resolved_config_dict(config: ExperimentConfig) -> dict:
    """The config with every default filled in, JSON-ready (for run folders); validating it again
    gives the same config."""
    return config.model_dump(mode="json", by_alias=True)
