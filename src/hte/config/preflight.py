"""Pre-flight: the config against the data, before any fitting (file present and valid, column
map columns present, outcome columns present, every arm followed to every horizon, an output root
this user can write), and ``python -m hte.config CONFIG`` to check a config from the shell.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hte.config.base import ConfigError
from hte.config.data_sources import FileData, OmopData, SyntheticData
from hte.config.loading import dotted_key, load_config
from hte.config.schema import ExperimentConfig, KeyPath, resolved_config_dict
from hte.config.sections import SYSTEM_DIRS
from hte.data.columns import CRS, CRS_GRADE, DEATH, INFUSION_DAY, OS_MONTHS, TRUTH_PREFIX

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
            messages.append(f"{config.source_of(key)}: {dotted_key(key)}: {p.rule}")
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
            "\n".join(f"{config.source_of(p)}: {dotted_key(p)}: {msg}" for p, msg in problems)
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
    for system in SYSTEM_DIRS:
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
    return ConfigError(f"{config.source_of(path)}: {dotted_key(path)}: {message}")


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
