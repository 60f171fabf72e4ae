"""Experiment config schema: the pydantic models of every section, checked as they are built.

Every section forbids unknown keys; estimator ``params`` are checked against the estimator's own
constructor (names, types, sane bounds). Reading YAML with line numbers is ``hte.config.loading``;
the checks against the data are ``hte.config.preflight``; ``hte.config`` gathers the public names.
"""

from __future__ import annotations

import difflib
import inspect
import math
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

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

from hte import vocabulary
from hte.data.column_map import ColumnMap, ColumnMapError
from hte.data.columns import DAYS_PER_MONTH
from hte.data.day_zero import DAY_ZERO_DAYS
from hte.data.load import MAX_FILE_MB
from hte.data.simulation_params import SCENARIO_DESCRIPTIONS
from hte.errors import HteError

SCENARIOS: tuple[str, ...] = tuple(SCENARIO_DESCRIPTIONS)  # the synthetic cohort's named scenarios

DEFAULT_SEED = 2024
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # usable as a folder name
MAX_NAME_LENGTH = 100  # folder names (the run id and the file system add to it)
MAX_SEED = 2**32 - 1  # numpy's legacy seed range, which scikit-learn's random_state takes
MAX_PATIENTS = 1_000_000  # synthetic draws and sweep sizes (100,000 takes ~15 min to fit)
# Seeds are whole numbers, never booleans (``true`` would silently become seed 1).
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
Name = Annotated[str, Field(pattern=_NAME_PATTERN, max_length=MAX_NAME_LENGTH)]


class ConfigError(HteError, ValueError):
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
        pairs = [
            (t, getattr(self, vocabulary.target(t).horizon_key)) for t in vocabulary.OS_TARGETS
        ]
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
                    {"param": key, "kind": kind, "hint": did_you_mean(key, allowed),
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


def did_you_mean(key: str, choices: Iterable[str]) -> str:
    """ "; did you mean ...?" with the closest of ``choices``, or nothing."""
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


SYSTEM_DIRS = ("/proc", "/sys", "/dev")


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
        for system in SYSTEM_DIRS:
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

    _source: KeySource | None = PrivateAttr(default=None)

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
                    {"index": i, "item": repr(name), "hint": did_you_mean(name, names),
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
