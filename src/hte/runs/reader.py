"""The one reader of a finished run folder: the typed summary, the effects table, figures,
attributions and the resolved config, for the report, the app and ``hte predict``.

``RunReader.open(path)`` checks that ``path`` is a finished run folder (``complete.json``) and
reads its metrics.json as a ``RunSummary`` of this hte's schema: a folder written by an older
(or newer) hte is refused with ``OlderRunFolderError``, whose message says how to rerun it.
Everything else is read lazily, on first use; nothing is fitted and no model file is opened
(models go through ``hte.runs.store.load_model``, behind the signed manifest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from hte.errors import HteError
from hte.runs.folders import is_complete_run, run_state
from hte.runs.layout import (
    ANALYSIS_COLUMN,
    COMPLETE_FILE,
    CONFIG_FILE,
    EFFECTS_FILE,
    FIGURES_DIR,
    METRICS_FILE,
    REPORT_FILE,
    TREATMENT_COLUMN,
    attribution_path,
    fit_columns,
    interval_level,
    shap_figure_name,
)
from hte.runs.summary import SCHEMA_VERSION, RunSummary, schema_of


class RunFolderError(HteError, ValueError):
    """A folder that is not a finished run folder of ``hte run`` (or whose metrics.json cannot be
    read as a run summary)."""


class OlderRunFolderError(RunFolderError):
    """A run folder written by another version of hte (its metrics.json has another schema)."""


def rerun_command(run_dir: Path) -> str:
    """The command that writes this run again with the installed hte."""
    return f"hte run {Path(run_dir) / CONFIG_FILE}"


def check_run_folder(run_dir: Path) -> Path:
    """``run_dir`` as a Path when it is a finished run folder with metrics.json; otherwise
    ``RunFolderError`` saying what is missing."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunFolderError(f"{path} is not a folder: give a run folder written by `hte run`")
    if not is_complete_run(path):
        raise RunFolderError(
            f"{path} is not a finished run (state: {run_state(path)}; no {COMPLETE_FILE}: "
            "interrupted, still running or failed); `hte runs` lists run folders with their state"
        )
    if not (path / METRICS_FILE).is_file():
        raise RunFolderError(
            f"{path} has no {METRICS_FILE}: it is not a finished run folder of `hte run`"
        )
    return path


def read_summary(run_dir: Path) -> RunSummary:
    """The run summary of a finished run folder, checked against this hte's schema."""
    path = Path(run_dir)
    raw = _metrics_of_this_schema(path)
    try:
        return RunSummary.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise RunFolderError(
            f"{path / METRICS_FILE} does not match the run summary of schema {SCHEMA_VERSION} "
            f"(edited or damaged?): {problems}; rerun it: {rerun_command(path)}"
        ) from None


def check_schema(run_dir: Path) -> None:
    """``check_run_folder`` and the schema version of its metrics.json, without parsing the
    rest (``hte predict`` needs the models and the config, not the summary)."""
    _metrics_of_this_schema(Path(run_dir))


def _metrics_of_this_schema(path: Path) -> dict:
    check_run_folder(path)
    metrics_path = path / METRICS_FILE
    try:
        raw = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{metrics_path} is not readable JSON ({exc})") from None
    version = schema_of(raw)
    if version is None:
        raise RunFolderError(
            f"{metrics_path} is not a run summary of hte (not a JSON object with an integer "
            "schema_version)"
        )
    if version != SCHEMA_VERSION:
        age = "an older" if version < SCHEMA_VERSION else "a newer"
        hint = "" if version < SCHEMA_VERSION else " (or install the hte that wrote it)"
        raise OlderRunFolderError(
            f"this run folder was written by {age} hte (schema {version}; this hte reads schema "
            f"{SCHEMA_VERSION}); rerun it with this version: {rerun_command(path)}{hint}"
        )
    return raw


@dataclass
class RunReader:
    """A finished run folder, read lazily (open with ``RunReader.open``)."""

    path: Path
    summary: RunSummary
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunReader:
        """Check the folder and read its summary (``RunFolderError``, ``OlderRunFolderError``)."""
        path = Path(run_dir)
        return cls(path, read_summary(path))

    # ---------------------------------------------------------------------------------------------
    # The run

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def name(self) -> str:
        return self.summary.experiment.name

    @property
    def alpha(self) -> float:
        return self.summary.alpha

    @property
    def level(self) -> str:
        """The level of every interval of this run as a label, "90%" at alpha 0.10."""
        return interval_level(self.summary.alpha)

    @property
    def labels(self) -> list[str]:
        return self.summary.labels

    def file(self, name: str) -> Path | None:
        """A file of the run folder (a ``hte.runs.layout`` name), None when absent."""
        path = self.path / name
        return path if path.is_file() else None

    @property
    def report(self) -> Path | None:
        return self.file(REPORT_FILE)

    @cached_property
    def config_text(self) -> str | None:
        path = self.file(CONFIG_FILE)
        return None if path is None else path.read_text(encoding="utf-8")

    # ---------------------------------------------------------------------------------------------
    # Per-patient effects

    @cached_property
    def effects(self) -> pd.DataFrame | None:
        """effects.parquet, None when the run wrote none."""
        path = self.file(EFFECTS_FILE)
        return None if path is None else pd.read_parquet(path)

    def analysis_effects(self, label: str | None = None) -> pd.DataFrame | None:
        """The rows of effects.parquet of one analysis (default: the first)."""
        effects = self.effects
        if effects is None:
            return None
        label = self.labels[0] if label is None else label
        if ANALYSIS_COLUMN not in effects.columns:
            return effects
        return effects[effects[ANALYSIS_COLUMN] == label]

    def effects_of(self, key: str, label: str | None = None) -> pd.DataFrame | None:
        """One fit's columns (``effect``, ``lower``, ``upper`` and per-arm predictions where
        present), one row a patient of the analysis, after a ``treatment`` column."""
        rows = self.analysis_effects(label)
        if rows is None:
            return None
        columns = fit_columns(rows.columns, key)
        if not columns:
            return None
        out = rows[list(columns.values())].set_axis(list(columns), axis=1)
        treatment = rows[TREATMENT_COLUMN].to_numpy() if TREATMENT_COLUMN in rows else None
        out.insert(0, TREATMENT_COLUMN, treatment)
        return out.reset_index(drop=True)

    # ---------------------------------------------------------------------------------------------
    # Figures and attributions

    def figure(self, name: str) -> Path | None:
        """A figure of ``figures/`` by name (``hte.runs.layout.cate_figure_name`` ...), or None."""
        return self.file(f"{FIGURES_DIR}/{name}")

    def figures(self) -> dict[str, Path]:
        """Every PNG of ``figures/`` by name."""
        folder = self.path / FIGURES_DIR
        return {p.name: p for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}

    def beeswarm(self, key: str, label: str | None = None) -> Path | None:
        return self.figure(shap_figure_name(self.labels[0] if label is None else label, key))

    def attribution_file(self, key: str, label: str | None = None) -> Path | None:
        label = self.labels[0] if label is None else label
        return self.file(attribution_path(label, key))

    def attributions(self, key: str, label: str | None = None) -> pd.DataFrame | None:
        """One fit's SHAP table (``shap__<feature>`` columns and ``row``), or None."""
        path = self.attribution_file(key, label)
        if path is None:
            return None
        if str(path) not in self._cache:
            self._cache[str(path)] = pd.read_parquet(path)
        return self._cache[str(path)]
