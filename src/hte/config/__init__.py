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

from hte.config.base import ConfigError
from hte.config.data_sources import FileData, OmopData, SyntheticData
from hte.config.loading import load_config, safe_yaml
from hte.config.preflight import (
    DataFacts,
    check_config_against_data,
    check_output_root,
    inspect_data,
    main,
    preflight,
)
from hte.config.schema import (
    ESTIMATOR_KINDS,
    EstimatorSpec,
    ExperimentConfig,
    estimator_class,
    estimator_parameters,
    resolved_config_dict,
)
from hte.config.sections import (
    CRSOutcome,
    Evaluation,
    Explanation,
    OSOutcome,
    Outcomes,
    Output,
    Seeds,
    TimeZeroAnalysis,
)
from hte.config.sweep_spec import SweepSpec

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
    "check_output_root",
    "estimator_class",
    "estimator_parameters",
    "inspect_data",
    "load_config",
    "main",
    "preflight",
    "resolved_config_dict",
    "safe_yaml",
]
