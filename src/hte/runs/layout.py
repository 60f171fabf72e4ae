"""The run folder's vocabulary: file and folder names, effects.parquet column names, figure names
and the interval label of a run's ``evaluation.alpha``. Every writer (hte.pipeline) and reader
(report, app, ``hte predict``) takes the names from here, so a name is spelled in one place.

A run folder ``<root>/<name>/<run-id>/`` holds (see docs/run_folder.md):

    config.resolved.yaml   the config with every default filled in
    fingerprint.json       sha256 of the cohort (input file bytes, or canonical CSV of a draw), n, columns
    versions.json          python and package versions
    seeds.json             the seeds used
    metrics.json           the run summary (hte.runs.summary; sorted keys, rounded floats)
    timings.json           seconds per stage (kept out of metrics.json so that stays reproducible)
    effects.parquet        per-patient effects with intervals, one row per patient x analysis
    attributions/          SHAP tables, one parquet per analysis x fit (``attribution_path``)
    nuisances/             <analysis>.npz: the shared cross-fitted nuisances (no pickle)
    models/                joblib files + manifest.json (sha256 of each file, signed)
    figures/               PNG diagnostics (``cate_figure_name``, ``overlap_figure_name``, ``shap_figure_name``)
    cohort_spec.yaml       the OMOP cohort spec, when the cohort came from an OMOP database
    report.html            the self-contained report
    run.log                the log of the run
    complete.json          written last: the run finished
"""

from __future__ import annotations

import math
from typing import Any

# --------------------------------------------------------------------------------------------------
# Files and folders

CONFIG_FILE = "config.resolved.yaml"
FINGERPRINT_FILE = "fingerprint.json"
VERSIONS_FILE = "versions.json"
SEEDS_FILE = "seeds.json"
METRICS_FILE = "metrics.json"
TIMINGS_FILE = "timings.json"
EFFECTS_FILE = "effects.parquet"
LOG_FILE = "run.log"
COHORT_SPEC_FILE = "cohort_spec.yaml"  # the OMOP cohort spec a run extracted its cohort with
MODELS_DIR = "models"
FIGURES_DIR = "figures"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"
ATTRIBUTIONS_DIR = "attributions"
NUISANCES_DIR = "nuisances"  # <analysis>.npz: the shared cross-fitted nuisances (no pickle)
SHAP_PREFIX = "shap__"  # attribution tables: one ``shap__<feature>`` column per feature
COMPLETE_FILE = "complete.json"  # written last: the run finished (see ``run_state``)
PARTIAL_SUFFIX = ".partial"
FAILED_FILE = "failed.json"  # in a partial folder: the run stopped with an error (kept to debug)
# the run's files that drive prediction with its models; their sha256 is in the signed manifest
RUN_FILES = (CONFIG_FILE, FINGERPRINT_FILE)


def attribution_path(analysis: str, fit_key: str, arm: str | None = None) -> str:
    """Where a run folder keeps one fit's SHAP table, relative to the folder:
    ``attributions/<analysis>__<estimator>__<target>[__arm_<arm>].parquet`` (``fit_key`` is
    ``<estimator>__<target>``; ``arm`` for the attributions of one arm's prediction)."""
    suffix = "" if arm is None else f"__arm_{arm}"
    return f"{ATTRIBUTIONS_DIR}/{analysis}__{fit_key}{suffix}.parquet"


def nuisances_path(analysis: str) -> str:
    """The shared nuisances of one analysis, relative to the run folder."""
    return f"{NUISANCES_DIR}/{analysis}.npz"


def model_path(analysis: str, name: str) -> str:
    """A model file of one analysis, relative to ``models/`` (``name``: a fit key, ``encoder``
    or ``profile``)."""
    return f"{analysis}/{name}.joblib"


# --------------------------------------------------------------------------------------------------
# Figures (in figures/)


def cate_figure_name(analysis: str) -> str:
    return f"cate_{analysis}.png"


def overlap_figure_name(analysis: str) -> str:
    return f"overlap_{analysis}.png"


def shap_figure_name(analysis: str, fit_key: str) -> str:
    """The SHAP beeswarm of one fit."""
    return f"shap_{analysis}__{fit_key}.png"


# --------------------------------------------------------------------------------------------------
# effects.parquet (and the scores of ``hte predict``): one row per patient x analysis

PATIENT_COLUMN = "patient_id"  # hte.data.columns.PATIENT_ID
ANALYSIS_COLUMN = "analysis"
TREATMENT_COLUMN = "treatment"  # hte.data.columns.TREATMENT
EFFECT, LOWER, UPPER = "effect", "lower", "upper"  # per fit: the effect and its interval
ARM_PARTS = ("s_cart", "s_tec", "risk_cart", "risk_tec")  # per-arm predictions, where offered
KEY_SEP = "__"


def fit_key(estimator: str, target: str) -> str:
    """``<estimator>__<target>``: names one fit in effects.parquet, attributions and models."""
    return f"{estimator}{KEY_SEP}{target}"


def effects_column(key: str, part: str) -> str:
    """The effects.parquet column of one fit's ``part`` (``EFFECT``, ``LOWER``, ``UPPER`` or one
    of ``ARM_PARTS``): ``<estimator>__<target>__<part>``."""
    return f"{key}{KEY_SEP}{part}"


def fit_columns(columns: Any, key: str) -> dict[str, str]:
    """The columns of one fit among ``columns``, as {part: column}."""
    prefix = f"{key}{KEY_SEP}"
    return {str(c)[len(prefix) :]: str(c) for c in columns if str(c).startswith(prefix)}


def effect_keys(columns: Any) -> list[str]:
    """The fit keys of the effect columns among ``columns``, in column order."""
    tail = f"{KEY_SEP}{EFFECT}"
    return [str(c)[: -len(tail)] for c in columns if str(c).endswith(tail)]


# --------------------------------------------------------------------------------------------------
# Interval labels

DEFAULT_ALPHA = 0.05  # the config's default (evaluation.alpha)


def interval_level(alpha: Any) -> str:
    """The (1 - alpha) level of a run's intervals as a label: 0.05 -> "95%", 0.1 -> "90%" (the
    default level for anything that is not an alpha in (0, 1))."""
    ok = isinstance(alpha, int | float) and not isinstance(alpha, bool)
    a = float(alpha) if ok and math.isfinite(alpha) and 0 < float(alpha) < 1 else DEFAULT_ALPHA
    return f"{100 * (1 - a):g}%"
