"""Experiment configs: pydantic models, a YAML loader that keeps line numbers, overrides, checks.

An experiment config (``configs/*.yaml``) says which cohort to analyse (a synthetic scenario or a
user's file with its column map), at which analysis time zero(s), for which outcomes and horizons,
with which estimators and parameters, and how to evaluate, explain, seed and store the run.

Every section forbids unknown keys. ``load_config`` turns any problem into one ``ConfigError``
whose message names the file, the line and the key (``configs/x.yaml line 12:
estimators[1].params.n_trees: unknown parameter for causal_survival_forest``); ``--set key=value``
overrides are applied to the YAML before validation and are named in errors the same way.
``preflight`` then checks the config against the data (file present and valid, column map columns
present, outcome columns present, horizons within follow-up), so nothing is fitted on a bad config.
Relative paths (data file, column map, output root) are relative to the working directory.
"""

from __future__ import annotations

import difflib
import inspect
import json
import math
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hte.data.column_map import ColumnMap, ColumnMapError
from hte.data.columns import (
    CRS,
    CRS_GRADE,
    DAYS_PER_MONTH,
    DEATH,
    INFUSION_DAY,
    OS_MONTHS,
    TRUTH_PREFIX,
)
from hte.data.day_zero import DAY_ZERO_DAYS
from hte.data.load import MAX_FILE_MB
from hte.data.simulate import SCENARIOS

__all__ = [
    "ESTIMATOR_KINDS",
    "CRSOutcome",
    "ConfigError",
    "DataFacts",
    "EstimatorSpec",
    "Evaluation",
    "ExperimentConfig",
    "Explanation",
    "FileData",
    "OSOutcome",
    "OmopData",
    "Outcomes",
    "Output",
    "Seeds",
    "SweepSpec",
    "SyntheticData",
    "TimeZeroAnalysis",
    "check_config_against_data",
    "estimator_class",
    "estimator_parameters",
    "inspect_data",
    "load_config",
    "main",
    "preflight",
    "resolved_config_dict",
]

DEFAULT_SEED = 2024
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # usable as a folder name
MAX_NAME_LENGTH = 100  # folder names (the run id and the file system add to it)
MAX_SEED = 2**32 - 1  # numpy's legacy seed range, which scikit-learn's random_state takes
MAX_PATIENTS = 1_000_000  # synthetic draws and sweep sizes (100,000 takes ~15 min to fit)
# Seeds are whole numbers, never booleans (``true`` would silently become seed 1).
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
Name = Annotated[str, Field(pattern=_NAME_PATTERN, max_length=MAX_NAME_LENGTH)]
# YAML configs are small: refuse big or alias-expanding ones before building them.
MAX_CONFIG_BYTES = 1_000_000
MAX_YAML_NODES = 100_000  # scalars, lists and mappings after aliases are expanded
MAX_YAML_DEPTH = 40


class ConfigError(ValueError):
    """A config that cannot be used: the message names the file, line and key of every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# --------------------------------------------------------------------------------------------------
# Data


class SyntheticData(_Strict):
    """The embedded synthetic cohort: a named scenario, a size and a seed (default: seeds.global)."""

    source: Literal["synthetic"] = "synthetic"
    scenario: str = "default"
    n: int = Field(2000, ge=50, le=MAX_PATIENTS, description="number of patients to draw")
    seed: Seed | None = Field(None, description="draw seed; null uses seeds.global")

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, value: str) -> str:
        if value not in SCENARIOS:
            raise PydanticCustomError(
                "unknown_scenario",
                "unknown scenario {scenario}; choose one of {choices}",
                {"scenario": repr(value), "choices": ", ".join(SCENARIOS)},
            )
        return value


class FileData(_Strict):
    """A user's cohort file (.csv/.parquet) and its column map (inline, or a path to a YAML file)."""

    source: Literal["file"]
    path: Path
    columns: ColumnMap = ColumnMap()
    max_file_mb: float | None = Field(
        MAX_FILE_MB, gt=0, description="refuse larger files before reading (null: no limit)"
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _map_from_file(cls, value: object) -> object:
        """A string is the path of a column-map YAML file (see hte.data.column_map)."""
        if isinstance(value, str | Path):
            try:
                return ColumnMap.from_yaml(value)
            except ColumnMapError as exc:
                raise PydanticCustomError(
                    "column_map_file", "{problem}", {"problem": str(exc)}
                ) from None
        return {} if value is None else value


class OmopData(_Strict):
    """A cohort built from an OMOP CDM database by target-trial emulation (hte.data.omop): the
    connection (duckdb:///file.duckdb or postgresql://user@host/db) and the cohort spec YAML."""

    source: Literal["omop"]
    db: str = Field(description="duckdb:///ehr.duckdb or postgresql://user@host:port/dbname")
    spec: Path = Path("configs/cohort_omop.yaml")


DataConfig = Annotated[SyntheticData | FileData | OmopData, Field(discriminator="source")]


# --------------------------------------------------------------------------------------------------
# Design, outcomes


class TimeZeroAnalysis(_Strict):
    """One analysis time zero (hte.design.time_zero); ``label`` names it in the run folder."""

    mode: Literal["decision", "infusion", "landmark"] = "decision"
    landmark_days: float | None = Field(None, gt=0, le=3650)
    label: Name | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """``- decision`` is short for ``- mode: decision``."""
        return {"mode": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _landmark_days_with_landmark(self) -> TimeZeroAnalysis:
        if self.mode == "landmark" and self.landmark_days is None:
            raise ValueError("mode landmark needs landmark_days (days from the decision, > 0)")
        if self.mode != "landmark" and self.landmark_days is not None:
            raise ValueError(f"landmark_days is only used with mode landmark, not {self.mode}")
        if self.label is None:
            days = self.landmark_days
            self.label = self.mode if days is None else f"landmark_{days:g}d"
        return self

    @property
    def landmark_months(self) -> float:
        """Follow-up lost to the landmark (0 for decision and infusion), in months."""
        return 0.0 if self.landmark_days is None else self.landmark_days / DAYS_PER_MONTH


class OSOutcome(_Strict):
    """Overall survival: survival difference at one horizon and RMST difference up to another
    (months); a horizon set to null is not estimated."""

    enabled: bool = True
    survival_horizon: float | None = Field(12.0, gt=0, le=1200)
    rmst_horizon: float | None = Field(24.0, gt=0, le=1200)
    day_zero_days: float = Field(
        DAY_ZERO_DAYS, gt=0, le=7, description="follow-up of 0 counts as this many days"
    )

    @model_validator(mode="after")
    def _some_horizon(self) -> OSOutcome:
        if self.enabled and self.survival_horizon is None and self.rmst_horizon is None:
            raise ValueError("OS is enabled but both horizons are null; set one, or enabled: false")
        return self

    def targets(self) -> list[tuple[str, float]]:
        """(target, horizon) pairs the OS estimators fit: ("survival", 12.0), ("rmst", 24.0)."""
        if not self.enabled:
            return []
        pairs = [("survival", self.survival_horizon), ("rmst", self.rmst_horizon)]
        return [(target, float(h)) for target, h in pairs if h is not None]


class CRSOutcome(_Strict):
    """CRS risk difference: any grade, and grade >= 3 (``auto``: when the cohort has crs_grade)."""

    enabled: bool = True
    any_grade: bool = True
    grade3: Literal[True, False, "auto"] = "auto"

    @model_validator(mode="after")
    def _some_outcome(self) -> CRSOutcome:
        if self.enabled and not self.any_grade and self.grade3 is False:
            raise ValueError("CRS is enabled but any_grade and grade3 are both off")
        return self

    def outcomes(self, has_grade: bool) -> list[str]:
        """CRS outcome names the CRS estimators fit ("crs", "crs_g3"), given the cohort."""
        if not self.enabled:
            return []
        out = ["crs"] if self.any_grade else []
        if self.grade3 is True or (self.grade3 == "auto" and has_grade):
            out.append("crs_g3")
        return out


class Outcomes(_Strict):
    os: OSOutcome = Field(default_factory=OSOutcome)
    crs: CRSOutcome = Field(default_factory=CRSOutcome)

    @model_validator(mode="after")
    def _one_enabled(self) -> Outcomes:
        if not (self.os.enabled or self.crs.enabled):
            raise ValueError("both outcomes are disabled; enable os or crs")
        return self


# --------------------------------------------------------------------------------------------------
# Estimators

# kind -> (class name in hte.estimators, outcome it estimates)
ESTIMATOR_KINDS: dict[str, tuple[str, str]] = {
    "causal_survival_forest": ("CausalSurvivalForest", "os"),
    "dr_learner": ("SurvivalDRLearner", "os"),
    "t_learner": ("TLearnerSurvival", "os"),
    "s_learner": ("SLearnerSurvival", "os"),
    "cox_interaction": ("CoxInteractionModel", "os"),
    "bcf": ("BayesianCausalForest", "os"),
    "crs_causal_forest": ("CRSCausalForest", "crs"),
    "logistic_interaction": ("LogisticInteractionModel", "crs"),
    "crs_bcf": ("CRSBayesianCausalForest", "crs"),
}
EstimatorKind = Literal[
    "causal_survival_forest",
    "dr_learner",
    "t_learner",
    "s_learner",
    "cox_interaction",
    "bcf",
    "crs_causal_forest",
    "logistic_interaction",
    "crs_bcf",
]
# Parameters the pipeline sets from other sections, never from params.
_MANAGED_PARAMS = {
    "target": "outcomes.os (each OS estimator is fitted for every horizon)",
    "horizon": "outcomes.os (survival_horizon, rmst_horizon)",
    "outcome": "outcomes.crs (any_grade, grade3)",
    "random_state": "seeds.global",
}


def estimator_class(kind: str) -> type:
    """The estimator class of a config ``kind`` (imports hte.estimators on first use)."""
    import hte.estimators

    return getattr(hte.estimators, ESTIMATOR_KINDS[kind][0])


@cache
def estimator_parameters(kind: str) -> dict[str, Any]:
    """Constructor parameters of a kind: name -> type hint (``Any`` where the class has none)."""
    cls = estimator_class(kind)
    hints = typing.get_type_hints(cls.__init__)
    names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    return {name: hints.get(name, Any) for name in names}


class EstimatorSpec(_Strict):
    """One estimator of the experiment: a unique ``name``, its ``kind`` and constructor ``params``.

    ``params`` are checked against the class's ``__init__``: an unknown name, a value of the wrong
    type, or a parameter another section controls (target, horizon, outcome, random_state) is an
    error. Values are stored as written.
    """

    name: Name | None = None
    kind: EstimatorKind
    params: dict[str, Any] = {}

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
                    {"param": key, "kind": kind, "hint": _did_you_mean(key, allowed),
                     "allowed": ", ".join(allowed)},
                )  # fmt: skip
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
            {"param": key, "kind": kind, "expected": f"between {lo:g} and {hi:g}",
             "value": repr(value)},
        )  # fmt: skip


def _did_you_mean(key: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# --------------------------------------------------------------------------------------------------
# Evaluation, explanation, seeds, output


class Evaluation(_Strict):
    """Interval level, truth metrics (``auto``: on when the cohort carries true_* columns), an
    optional propensity-matched comparison (1:1, caliper in SDs of the logit propensity), as
    published real-world studies report it, and the robustness checks (refutations, E-values)."""

    alpha: float = Field(0.05, gt=0, lt=0.5)
    truth_metrics: Literal[True, False, "auto"] = "auto"
    matching: bool = False
    matching_caliper: float = Field(0.2, gt=0, le=10)
    robustness: bool = True  # refutations of the average effects and E-values


class Explanation(_Strict):
    """SHAP attributions of the CATE and shallow subgroup-rule trees."""

    shap: bool = True
    n_patients_shap: int = Field(200, ge=1, le=100_000)
    subgroup_rules: bool = True
    max_rule_depth: int = Field(2, ge=1, le=6)


class Seeds(_Strict):
    """One global seed for every random draw (synthetic cohort, folds, forests)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    global_seed: Seed = Field(DEFAULT_SEED, alias="global")


_SYSTEM_DIRS = ("/proc", "/sys", "/dev")


class Output(_Strict):
    """Where run folders go (``<root>/<name>/...``); no ".." parts, not under /proc, /sys, /dev
    (``check_output_root`` checks at run time that it is a folder this user can write)."""

    root: Path = Path("experiments")

    @field_validator("root")
    @classmethod
    def _plain_root(cls, value: Path) -> Path:
        if ".." in value.parts:
            raise ValueError(f"{str(value)!r} climbs out with '..'; write the folder plainly")
        text = value.as_posix()
        for system in _SYSTEM_DIRS:
            if text == system or text.startswith(system + "/"):
                raise ValueError(f"{text!r} is under {system}; choose a normal folder")
        return value


class SweepSpec(_Strict):
    """A grid of synthetic runs for ``hte sweep``: scenarios x sizes x estimators x seeds.

    Each cell draws its own cohort (scenario, size, seed) and fits one estimator seeded with the
    cell seed. ``estimators`` names entries of the config's ``estimators`` list (null: all of
    them); null ``scenarios``/``sizes``/``seeds`` use data.scenario, data.n and seeds.global.
    """

    scenarios: list[str] | None = Field(None, min_length=1)
    sizes: list[Annotated[int, Field(ge=50, le=MAX_PATIENTS)]] | None = Field(None, min_length=1)
    estimators: list[str] | None = Field(None, min_length=1)
    seeds: list[Seed] | None = Field(None, min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, value: list[str] | None) -> list[str] | None:
        for i, name in enumerate(value or []):
            if name not in SCENARIOS:
                raise PydanticCustomError(
                    "unknown_sweep_item",
                    "unknown scenario {item}; choose from {choices}",
                    {"index": i, "item": repr(name), "choices": ", ".join(SCENARIOS)},
                )
        return value

    @field_validator("scenarios", "sizes", "estimators", "seeds")
    @classmethod
    def _no_repeats(cls, value: list | None, info: ValidationInfo) -> list | None:
        if value is not None:
            _require_unique(value, f"sweep {info.field_name} entry", "list each once")
        return value

    @property
    def n_cells(self) -> int:
        """Cells in the grid (after the config has filled in the defaults)."""
        lists = (self.scenarios, self.sizes, self.estimators, self.seeds)
        return math.prod(len(x or []) for x in lists)


KeyPath = tuple[str | int, ...]


@dataclass
class _Source:
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


class ExperimentConfig(_Strict):
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

    _source: _Source | None = PrivateAttr(default=None)

    @field_validator("time_zero", mode="before")
    @classmethod
    def _single_time_zero(cls, value: object) -> object:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("time_zero")
    @classmethod
    def _unique_labels(cls, value: list[TimeZeroAnalysis]) -> list[TimeZeroAnalysis]:
        _require_unique([a.label for a in value], "time-zero label", "give each analysis a label")
        return value

    @field_validator("estimators")
    @classmethod
    def _unique_names(cls, value: list[EstimatorSpec]) -> list[EstimatorSpec]:
        _require_unique([e.name for e in value], "estimator name", "give each one a name")
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
                    {"index": i, "item": repr(name), "hint": _did_you_mean(name, names),
                     "choices": ", ".join(names), "field": "estimators"},
                )  # fmt: skip
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


def _require_unique(names: list, what: str, fix: str) -> None:
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"{what} {', '.join(map(str, doubled))} appears more than once; {fix}")


def resolved_config_dict(config: ExperimentConfig) -> dict:
    """The config with every default filled in, JSON-ready (for run folders); validating it again
    gives the same config."""
    return config.model_dump(mode="json", by_alias=True)


# --------------------------------------------------------------------------------------------------
# Loading: YAML with line numbers, overrides, readable errors


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read, override and validate an experiment config; any problem raises one ``ConfigError``.

    ``overrides`` are ``key.sub=value`` strings (value parsed as YAML; list entries by index or
    by estimator name, e.g. ``estimators.0.params.n_estimators=500``).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{path}: the config is {size:,} bytes; a config is at most "
                f"{MAX_CONFIG_BYTES:,} bytes (is this the right file?)"
            )
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: the config is not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
            f"position {exc.start}); save it as UTF-8"
        ) from None
    raw, lines = _parse_yaml(text, str(path))
    source = _Source(str(path), lines, [])
    for item in overrides:
        source.overrides.append((_apply_override(raw, item), item))
    try:
        config = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw, source)) from None
    config._source = source
    return config


def safe_yaml(text: str, name: str) -> tuple[Any, yaml.Node | None]:
    """YAML text as Python data (safe types only) and its node tree, refused with a ConfigError
    when it is invalid, nests deeper than ``MAX_YAML_DEPTH`` or expands (aliases counted every
    time they are used: a "billion laughs" config) beyond ``MAX_YAML_NODES`` nodes."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_yaml_size(node, name)
        return (loader.construct_document(node) if node is not None else None), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "constructor for the tag" in problem:
            problem += " (tags such as !!python/... are never run; use plain values)"
        raise ConfigError(f"{name}{where}: not valid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(
            f"{name}: nested too deeply (a config is at most {MAX_YAML_DEPTH} levels deep)"
        ) from None
    finally:
        loader.dispose()


def _check_yaml_size(root: yaml.Node, name: str) -> None:
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            line = node.start_mark.line + 1
            raise ConfigError(
                f"{name} line {line}: nested too deeply (a config is at most {MAX_YAML_DEPTH} "
                "levels deep; a self-referencing alias nests without end)"
            )
        if id(node) in sizes:
            return sizes[id(node)]
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(v, depth + 1) for v in node.value)
        if total > MAX_YAML_NODES:
            raise ConfigError(
                f"{name}: the YAML expands to more than {MAX_YAML_NODES:,} values (aliases "
                "repeating aliases, a 'billion laughs'); write the config out plainly"
            )
        sizes[id(node)] = total
        return total

    size(root, 0)


def _parse_yaml(text: str, name: str) -> tuple[dict, dict[KeyPath, int]]:
    raw, node = safe_yaml(text, name)
    if raw is None:
        raw, node = {}, None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{name}: a config must be a mapping of sections; got {type(raw).__name__}"
        )
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines, name)
    return raw, lines


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], name: str) -> None:
    """Line (1-based) of every key and list entry; a key given twice is an error, not last-wins."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = _scalar_key(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                where = _dotted((*path, key))
                raise ConfigError(
                    f"{name} line {line}: {where}: key given twice (also on line {seen[key]})"
                )
            seen[key] = line
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), lines, name)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _record_lines(item, (*path, i), lines, name)


def _scalar_key(node: yaml.Node) -> str | int:
    """A mapping key as the loader builds it (ints stay ints so paths match the parsed dict)."""
    value = yaml.SafeLoader("").construct_object(node, deep=True)
    return value if isinstance(value, int | str) and not isinstance(value, bool) else str(value)


def _apply_override(raw: dict, item: str) -> KeyPath:
    """Set ``key.sub=value`` in the raw YAML dict; returns the key path set."""
    key, sep, value_text = item.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(f"--set {item}: expected key.sub=value, e.g. data.n=500")
    try:
        value = safe_yaml(value_text, "value")[0] if value_text.strip() else None
    except ConfigError as exc:
        detail = str(exc).removeprefix("value")
        raise ConfigError(
            f"--set {item}: the value {value_text!r} is not valid YAML ({detail.strip(' :')})"
        ) from None
    node: Any = raw
    path: list[str | int] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            index = _list_index(node, part, item, path)
            path.append(index)
            if last:
                node[index] = value
            else:
                node = node[index]
            continue
        if not isinstance(node, dict):
            raise ConfigError(
                f"--set {item}: {_dotted(path)} is a value ({node!r}), not a section with keys"
            )
        path.append(part)
        if last:
            node[part] = value
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
    return tuple(path)


def _list_index(items: list, part: str, item: str, path: list) -> int:
    """A list entry by position (0-based) or, for estimators, by name."""
    if part.lstrip("-").isdigit():
        index = int(part)
        if not -len(items) <= index < len(items):
            raise ConfigError(
                f"--set {item}: {_dotted(path)} has {len(items)} entries; no entry {index}"
            )
        return index % len(items)
    names = [e.get("name") or e.get("kind") if isinstance(e, dict) else None for e in items]
    if part in names:
        return names.index(part)
    raise ConfigError(
        f"--set {item}: {_dotted(path)} has no entry named {part!r} "
        f"(use an index 0-{len(items) - 1} or one of: {', '.join(map(str, filter(None, names)))})"
    )


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(exc: ValidationError, raw: dict, source: _Source) -> str:
    """Pydantic errors as one message, a line per problem: "<file> line N: <key>: <what>"."""
    seen: set[str] = set()
    lines = []
    for err in exc.errors():
        path = _clean_path(err["loc"], raw)
        ctx = err.get("ctx") or {}
        if err["type"] in ("unknown_parameter", "managed_parameter", "parameter_type"):
            path = (*path, ctx["param"])
        elif err["type"] == "outcome_disabled":
            path = (*path, ctx["index"])
        elif err["type"] == "unknown_sweep_item":
            path = (*path, ctx["field"], ctx["index"]) if "field" in ctx else (*path, ctx["index"])
        line = f"{source.where(path)}: {_dotted(path)}: {_message(err, path, raw)}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return "\n".join(lines)


def _clean_path(loc: tuple, raw: object) -> KeyPath:
    """The key path of an error location without pydantic's union tags and validator names."""
    path: list[str | int] = []
    node = raw
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        elif isinstance(part, str) and (
            "[" in part or (part in ("synthetic", "file") and not last)
        ):
            continue
        else:
            node = None
        path.append(part)
    return tuple(path)


def _message(err: dict, path: KeyPath, raw: dict) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(path[:-1], raw)
        hint = _did_you_mean(str(path[-1]), allowed) if allowed else ""
        return f"unknown key{hint}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if kind == "missing":
        return "required key is missing"
    if kind == "union_tag_not_found":
        return "missing key 'source': synthetic, file or omop"
    if kind == "string_pattern_mismatch":
        return f"{err.get('input')!r} cannot name a folder: use letters, digits, _ . - only"
    if kind == "union_tag_invalid":
        return f"source must be synthetic, file or omop; got {err['ctx']['tag']!r}"
    msg = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if kind not in _SELF_DESCRIBED and isinstance(value, str | int | float | bool | None):
        msg += f" (got {value!r})"
    return msg


# Error types whose message already says what was given.
_SELF_DESCRIBED = {
    "value_error",
    "unknown_scenario",
    "unknown_parameter",
    "managed_parameter",
    "parameter_type",
    "outcome_disabled",
    "column_map_file",
    "unknown_sweep_item",
}


def _allowed_keys(path: KeyPath, raw: dict) -> list[str]:
    """Keys the section at ``path`` accepts (by walking the model classes along the path)."""
    model: Any = ExperimentConfig
    node: Any = raw
    for part in path:
        node = node[part] if isinstance(node, dict | list) else None
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if field is None:
            return []
        model = _model_in(field.annotation, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [f.alias or name for name, f in model.model_fields.items()]
    return []


def _model_in(annotation: Any, node: Any) -> Any:
    """The BaseModel class inside list[...] / X | None / discriminated unions, chosen by source."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _model_in(args[0], node)
    if origin is list:
        return _model_in(args[0], node)
    if args:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        tag = node.get("source") if isinstance(node, dict) else None
        for m in models:
            field = m.model_fields.get("source")
            if field is not None and tag in typing.get_args(field.annotation):
                return m
        return models[0] if len(models) == 1 else None
    return annotation


# --------------------------------------------------------------------------------------------------
# Pre-flight: the config against the data, before any fitting


@dataclass(frozen=True)
class DataFacts:
    """What the pre-flight learnt about the cohort: its columns (after the column map), the longest
    decision-time follow-up in months (an upper bound for synthetic data), for a file the longest
    follow-up after each analysis's time zero (by label) and the validated cohort itself (so the
    pipeline need not read it again); for an OMOP database also the extraction record (attrition,
    data cut, unmatched concepts, spec hash: ``hte.data.omop.build.BuildResult.summary``)."""

    columns: tuple[str, ...]
    max_follow_up_months: float | None
    cohort: pd.DataFrame | None = None
    follow_up_by_analysis: dict[str, float] | None = None
    # file data: per analysis label and arm, (patients, deaths, longest follow-up in months)
    arms_by_analysis: dict[str, dict[str, tuple[int, int, float]]] | None = None
    extraction: dict | None = None


def inspect_data(config: ExperimentConfig) -> DataFacts:
    """Columns and follow-up of the configured cohort; a file is read and validated here.

    Synthetic data: columns from a 20-patient draw, follow-up bound = the scenario's data cut.
    File data: a missing/unreadable file, a column-map column the file lacks, or a schema problem
    raises ``ConfigError`` naming the key (data.path or data.columns.columns.<name>) and its line.
    """
    from hte.data.simulate import simulate_cohort
    from hte.data.simulation_params import scenario_params

    data = config.data
    if isinstance(data, SyntheticData):
        columns = tuple(simulate_cohort(20, 0, data.scenario).columns)
        cut = scenario_params(data.scenario).censoring.data_cut_months
        return DataFacts(columns=columns, max_follow_up_months=float(cut))
    extraction = None
    if isinstance(data, OmopData):
        cohort, extraction = _build_omop(config, data)
    else:
        cohort = _load_file(config, data)
    follow_up = float(cohort[OS_MONTHS].max()) if OS_MONTHS in cohort.columns else None
    by_analysis = arms = None
    if follow_up is not None:
        by_analysis, arms = _follow_up_by_analysis(config, cohort)
    return DataFacts(
        tuple(map(str, cohort.columns)), follow_up, cohort, by_analysis, arms, extraction
    )


def _build_omop(config: ExperimentConfig, data: OmopData) -> tuple[pd.DataFrame, dict]:
    """The cohort built from the OMOP database and its extraction record; problems name data.db
    (the database) or data.spec (the cohort spec)."""
    from hte.data.omop.build import build_cohort
    from hte.data.omop.connection import OmopError
    from hte.data.omop.spec import load_spec

    try:
        spec = load_spec(data.spec)
    except OmopError as exc:
        raise _error(config, ("data", "spec"), str(exc)) from None
    from hte.data.schema import CohortValidationError

    try:
        result = build_cohort(data.db, spec)
    except (OmopError, CohortValidationError) as exc:
        raise _error(config, ("data", "db"), str(exc)) from None
    summary = result.summary()
    summary["spec_sha256"] = _sha256_of(data.spec)
    summary["spec"] = str(data.spec)
    return result.cohort, summary


def _sha256_of(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _follow_up_by_analysis(
    config: ExperimentConfig, cohort: pd.DataFrame
) -> tuple[dict[str, float], dict[str, dict[str, tuple[int, int, float]]]]:
    """Longest follow-up left after each time zero (exact: the transform the pipeline applies),
    and per arm the patients, deaths and longest follow-up. Analyses the cohort cannot support
    (no infusion_day, no death) are left to the column checks."""
    from hte.data.columns import TREATMENT_CODES
    from hte.design.time_zero import apply_time_zero

    out, arms = {}, {}
    for analysis in config.time_zero:
        try:
            moved = apply_time_zero(cohort, analysis.mode, analysis.landmark_days).cohort
        except ValueError:
            continue
        out[analysis.label] = float(moved[OS_MONTHS].max()) if len(moved) else 0.0
        per_arm = {}
        for arm in TREATMENT_CODES:
            rows = moved[moved["treatment"] == arm]
            longest = float(rows[OS_MONTHS].max()) if len(rows) else 0.0
            per_arm[arm] = (len(rows), int(rows[DEATH].astype(bool).sum()), longest)
        arms[analysis.label] = per_arm
    return out, arms


def _load_file(config: ExperimentConfig, data: FileData) -> pd.DataFrame:
    from hte.data.load import CohortFileError, load_cohort
    from hte.data.schema import CohortValidationError

    try:
        return load_cohort(data.path, column_map=data.columns, max_file_mb=data.max_file_mb)
    except CohortFileError as exc:
        text = str(exc) if str(data.path) in str(exc) else f"{data.path}: {exc}"
        raise _error(config, ("data", "path"), text) from None
    except CohortValidationError as exc:
        renames = data.columns.columns
        by_target = {target: source for source, target in renames.items()}
        messages, others = [], []
        for p in exc.problems:
            # a column-map problem names the user's column, or (rename clash) the canonical one
            source = p.column if p.column in renames else by_target.get(p.column)
            if source is None or "column map" not in p.rule:
                others.append(p)
                continue
            key = ("data", "columns", "columns", source)
            messages.append(f"{config.source_of(key)}: {_dotted(key)}: {p.rule}")
        if others:
            listing = "\n".join(f"  - {p}" for p in others)
            where = config.source_of(("data", "path"))
            messages.append(
                f"{where}: data.path: the cohort {data.path} breaks the schema:\n{listing}"
            )
        raise ConfigError("\n".join(messages)) from None


def check_config_against_data(
    config: ExperimentConfig,
    cohort_columns: Iterable[str],
    max_follow_up_months: float | Mapping[str, float] | None,
    arms: Mapping[str, Mapping[str, tuple[int, int, float]]] | None = None,
) -> None:
    """Raise one ``ConfigError`` listing every way the config does not fit the cohort.

    Checks: outcome columns for each enabled outcome (os_months/death, crs, crs_grade when grade3
    is true), infusion_day for an infusion analysis, true_* columns when truth metrics are on,
    and every OS horizon within the longest follow-up left after each analysis's time zero (the
    estimators refuse horizons beyond follow-up). ``max_follow_up_months`` is either the
    decision-time longest follow-up (a landmark then removes its days; an infusion time zero is
    taken to leave it, as the teclistamab clock does not move) or, exactly, a mapping from
    analysis label to the longest follow-up after that time zero. ``arms`` (file data: per
    analysis and arm, patients, deaths and longest follow-up) adds the per-arm rules: every arm
    needs a death and follow-up reaching each horizon (a one-arm shortfall would otherwise pass
    on the other arm's follow-up and fail mid-run).
    """
    columns = set(cohort_columns)
    problems: list[tuple[KeyPath, str]] = []
    os_, crs = config.outcomes.os, config.outcomes.crs
    if os_.enabled and not {OS_MONTHS, DEATH} <= columns:
        missing = sorted({OS_MONTHS, DEATH} - columns)
        problems.append(
            (
                ("outcomes", "os", "enabled"),
                f"OS needs column(s) {', '.join(missing)}, which the cohort lacks "
                "(map them in data.columns, or set outcomes.os.enabled: false)",
            )
        )
    if crs.enabled and crs.any_grade and CRS not in columns:
        problems.append(
            (
                ("outcomes", "crs", "any_grade"),
                "any-grade CRS needs column crs, which the cohort lacks "
                "(map it in data.columns, or set outcomes.crs.enabled: false)",
            )
        )
    if crs.enabled and crs.grade3 is True and CRS_GRADE not in columns:
        problems.append(
            (
                ("outcomes", "crs", "grade3"),
                "grade >= 3 CRS needs column crs_grade, which the cohort lacks (use grade3: auto)",
            )
        )
    for i, analysis in enumerate(config.time_zero):
        if analysis.mode == "infusion" and INFUSION_DAY not in columns:
            problems.append(
                ((("time_zero", i, "mode")), "infusion time zero needs column infusion_day")
            )
    if config.evaluation.truth_metrics is True and not any(
        c.startswith(TRUTH_PREFIX) for c in columns
    ):
        problems.append(
            (
                ("evaluation", "truth_metrics"),
                "truth metrics need the simulated true_* columns, which this cohort lacks "
                "(use truth_metrics: auto or false for real data)",
            )
        )
    if max_follow_up_months is not None:
        problems += _horizon_problems(config, max_follow_up_months)
    if arms is not None and not problems:
        problems += _arm_problems(config, arms)
    if problems:
        raise ConfigError(
            "\n".join(f"{config.source_of(p)}: {_dotted(p)}: {msg}" for p, msg in problems)
        )


def _horizon_problems(
    config: ExperimentConfig, max_follow_up: float | Mapping[str, float]
) -> list[tuple[KeyPath, str]]:
    os_ = config.outcomes.os
    if not os_.enabled:
        return []
    problems = []
    for key in ("survival_horizon", "rmst_horizon"):
        horizon = getattr(os_, key)
        if horizon is None:
            continue
        for analysis in config.time_zero:
            if isinstance(max_follow_up, Mapping):
                left = max_follow_up.get(analysis.label)
                if left is None:
                    continue
            else:
                left = max_follow_up - analysis.landmark_months
            if horizon > left:
                after = (
                    "" if analysis.mode == "decision" else f" after the {analysis.label} time zero"
                )
                problems.append(
                    (
                        ("outcomes", "os", key),
                        f"horizon {horizon:g} months is beyond the longest follow-up{after} "
                        f"({left:.2f} months); choose a horizon within follow-up",
                    )
                )
                break
    return problems


def _arm_problems(
    config: ExperimentConfig, arms: Mapping[str, Mapping[str, tuple[int, int, float]]]
) -> list[tuple[KeyPath, str]]:
    """Per analysis and arm: at least one death, and follow-up reaching every OS horizon."""
    os_ = config.outcomes.os
    if not os_.enabled:
        return []
    problems = []
    for analysis in config.time_zero:
        per_arm = arms.get(str(analysis.label))
        if per_arm is None:
            continue
        after = "" if analysis.mode == "decision" else f" after the {analysis.label} time zero"
        for arm, (n, deaths, longest) in per_arm.items():
            if n and not deaths:
                problems.append(
                    (
                        ("outcomes", "os", "enabled"),
                        f"no deaths in the {arm} arm{after} (0 of {n} patients): OS effects are "
                        "not estimable (the hazard ratio would be unbounded); set "
                        "outcomes.os.enabled: false to analyse CRS only",
                    )
                )
                continue
            for key in ("survival_horizon", "rmst_horizon"):
                horizon = getattr(os_, key)
                if horizon is not None and n and horizon > longest:
                    problems.append(
                        (
                            ("outcomes", "os", key),
                            f"horizon {horizon:g} months is beyond the longest follow-up in the "
                            f"{arm} arm{after} ({longest:.2f} months); every arm must be "
                            "followed to the horizon: choose a shorter horizon",
                        )
                    )
    return problems


def check_output_root(root: Path, where: str = "output.root") -> None:
    """The run folders' root must be a folder this user can write (or be creatable in one),
    outside the system's virtual file systems (/proc, /sys, /dev)."""
    import os

    resolved = Path(root).expanduser().resolve()
    for system in _SYSTEM_DIRS:
        if resolved == Path(system) or Path(system) in resolved.parents:
            raise ConfigError(f"{where}: {root} is under {system}; choose a normal folder")
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"{where}: {root} is a file, not a folder")
    existing = resolved
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where}: {root} cannot be created ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{where}: cannot write in {existing} (permission denied)")


def preflight(config: ExperimentConfig) -> DataFacts:
    """Every check that needs the data, before any fitting: ``inspect_data`` then
    ``check_config_against_data``. Returns the facts (with the loaded cohort for file data)."""
    facts = inspect_data(config)
    follow_up = facts.follow_up_by_analysis or facts.max_follow_up_months
    check_config_against_data(config, facts.columns, follow_up, facts.arms_by_analysis)
    return facts


def _error(config: ExperimentConfig, path: KeyPath, message: str) -> ConfigError:
    return ConfigError(f"{config.source_of(path)}: {_dotted(path)}: {message}")


# --------------------------------------------------------------------------------------------------
# Checking a config from the shell (until `hte run` exists):  python -m hte.config CONFIG --set k=v


def main(argv: Sequence[str] | None = None) -> int:
    """Load, override and pre-flight a config; print the resolved config or the error.

    Returns the exit status: 0 for a usable config, 1 (one message on stderr) otherwise.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m hte.config", description="Check an experiment config against its data."
    )
    parser.add_argument("config", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-data", action="store_true", help="skip the checks against the data")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        if not args.no_data:
            preflight(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(resolved_config_dict(config), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
