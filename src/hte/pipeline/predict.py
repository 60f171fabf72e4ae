"""Scoring new patients with a run's fitted models (hash-checked)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte.config import ExperimentConfig, FileData
from hte.data.columns import CRS, CRS_GRADE, DEATH, INFUSION_DAY, OS_MONTHS, PATIENT_ID, TREATMENT
from hte.errors import HteError
from hte.pipeline.stages import ANALYSIS, arm_predictions
from hte.runs import (
    CONFIG_FILE,
    EFFECT,
    LOWER,
    UPPER,
    OlderRunFolderError,
    RunFolderError,
    check_schema,
    effects_column,
    fit_key,
    model_path,
)

# --------------------------------------------------------------------------------------------------
# Scoring new patients with a run's models


class PredictError(HteError, ValueError):
    """New patients that the run's models cannot score (schema, unseen levels, unknown analysis)."""


def check_finished_run(run_dir: Path) -> None:
    """``PredictError`` unless ``run_dir`` is a finished run folder of this hte's run summary
    schema (``hte.runs.check_schema``; ``OlderRunFolderError`` says how to rerun an older one)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise PredictError(f"{run_dir} is not a run folder written by `hte run` (no {CONFIG_FILE})")
    try:
        check_schema(Path(run_dir))
    except OlderRunFolderError:
        raise  # its own message: rerun the folder with this hte
    except RunFolderError as exc:
        raise PredictError(str(exc)) from exc


def load_run_config(run_dir: Path) -> ExperimentConfig:
    """The resolved config a finished run folder was written with (not checked against the
    signed manifest: ``read_manifest`` does that, before any model is used)."""
    import yaml

    check_finished_run(run_dir)
    path = Path(run_dir) / CONFIG_FILE
    return ExperimentConfig.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


def read_new_patients(path: Path, config: ExperimentConfig) -> pd.DataFrame:
    """New patients' covariates validated by hte.data's schema (types, ranges, codes), through the
    run's column map when the run was on a file. Treatment, outcomes and infusion_day are not
    used for scoring: they are dropped, and placeholders stand in for the schema's table rules
    (both arms, an outcome) during validation only."""
    from hte.data.load import CohortFileError, read_table
    from hte.data.schema import CohortValidationError, validate_cohort

    column_map = config.data.columns if isinstance(config.data, FileData) else None
    id_column = PATIENT_ID
    if column_map is not None:
        id_column = next((k for k, v in column_map.columns.items() if v == PATIENT_ID), id_column)
    unused = [TREATMENT, OS_MONTHS, DEATH, CRS, CRS_GRADE, INFUSION_DAY]
    try:
        raw = read_table(path, text_columns=(id_column,))
        if column_map is not None:
            present = set(map(str, raw.columns))
            # columns the scoring does not use may be absent from new data
            kept = {s: t for s, t in column_map.columns.items() if s in present or t not in unused}
            named = present | set(kept.values())
            raw = column_map.model_copy(
                update={
                    "columns": kept,
                    "exclude": [c for c in column_map.exclude if c in named],
                    **{
                        key: {c: v for c, v in getattr(column_map, key).items() if c in named}
                        for key in ("values", "units")
                    },
                }
            ).apply(raw)
        raw = raw.drop(columns=[c for c in unused if c in raw.columns])
        n = len(raw)
        frame = raw
        if n == 1 and PATIENT_ID in raw.columns:  # a second row, so both arms can be present
            twin = raw.assign(**{PATIENT_ID: raw[PATIENT_ID].astype(str) + " (copy)"})
            frame = pd.concat([raw, twin], ignore_index=True)
        frame = frame.assign(
            **{TREATMENT: np.where(np.arange(len(frame)) % 2 == 0, "cart", "tec"), CRS: False}
        )
        rules = {}
        if column_map is not None:  # the run's own ranges and text-level limit
            rules = {"ranges": column_map.range_bounds(), "max_levels": column_map.max_levels}
        cohort = validate_cohort(frame, **rules).iloc[:n]
    except CohortFileError as exc:
        raise PredictError(f"cannot read {path}: {exc}") from None
    except CohortValidationError as exc:
        raise PredictError(f"{path} does not fit the cohort schema:\n{exc}") from None
    return cohort.drop(columns=[TREATMENT, CRS]).reset_index(drop=True)


def predict_run(
    run_dir: Path, data_path: Path, *, analysis: str | None = None, alpha: float | None = None
) -> pd.DataFrame:
    """Score new patients with a run's fitted models (hash-checked, see ``hte.runs.load_model``).

    Returns one row per patient: patient_id, analysis, and per fitted model
    ``<estimator>__<target>__effect/lower/upper`` plus per-arm predictions where the model offers
    them (``s_cart``/``s_tec`` at the horizon, ``risk_cart``/``risk_tec``), as in effects.parquet.
    ``analysis`` picks the time-zero analysis (default: the run's first one).
    """
    from hte.runs import load_model, read_manifest

    run_dir = Path(run_dir)
    check_finished_run(run_dir)  # a plain "not a run folder" before any manifest message
    manifest = read_manifest(run_dir)  # also checks the config is this run's (signed)
    config = load_run_config(run_dir)
    labels = [str(a.label) for a in config.time_zero]
    label = labels[0] if analysis is None else analysis
    if label not in labels:
        raise PredictError(f"the run has no analysis {label!r}; choose one of {', '.join(labels)}")
    entries = {p: e for p, e in manifest["files"].items() if e.get("analysis") == label}
    encoder_path = model_path(label, "encoder")
    if encoder_path not in entries:
        raise PredictError(f"the run folder has no saved encoding for analysis {label!r}")
    cohort = read_new_patients(Path(data_path), config)
    encoder = load_model(run_dir, encoder_path, manifest)
    try:
        X = encoder.transform(cohort)
    except ValueError as exc:
        raise PredictError(f"{data_path}: {exc}") from None
    alpha = config.evaluation.alpha if alpha is None else alpha
    out: dict[str, Any] = {
        PATIENT_ID: cohort[PATIENT_ID].astype(str).to_numpy(),
        ANALYSIS: np.full(len(cohort), label, dtype=object),
    }
    order = {spec.name: i for i, spec in enumerate(config.estimators)}
    for path, entry in sorted(
        entries.items(), key=lambda kv: (order.get(kv[1].get("estimator"), -1), kv[0])
    ):
        if entry.get("role") != "estimator":
            continue
        model = load_model(run_dir, path, manifest)
        key = fit_key(entry["estimator"], entry["target"])
        est = model.estimate(X, alpha=alpha)
        out[effects_column(key, EFFECT)] = np.asarray(est.effect, dtype=float)
        out[effects_column(key, LOWER)] = np.asarray(est.lower, dtype=float)
        out[effects_column(key, UPPER)] = np.asarray(est.upper, dtype=float)
        for name, values in arm_predictions(model, X, entry["target"], entry["horizon"]).items():
            out[effects_column(key, name)] = np.asarray(values, dtype=float)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------------
# Writing the scores

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what spreadsheets read as a formula (OWASP)


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells that a spreadsheet would run as a formula (starting with ``=``,
    ``+``, ``-``, ``@``, tab or carriage return, e.g. an id ``=cmd|' /C calc'!A0``) are prefixed
    with a single quote, so they open as text. Numbers are left alone."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v
            )
    return out


def write_effects(effects: pd.DataFrame, out: Path) -> Path:
    """Write scored patients to ``out``: CSV with formula-like text cells quoted
    (``neutralize_formulas``), or Parquet as it is (typed; not opened as a formula sheet)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        neutralize_formulas(effects).to_csv(out, index=False)
    else:
        effects.to_parquet(out, index=False)
    return out
