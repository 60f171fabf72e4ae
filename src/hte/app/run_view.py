"""A read-only view of one run folder for the app: config, the typed run summary, effects,
attributions, figures, all read through ``hte.runs.RunReader``.

Everything here reads files that ``hte run`` wrote (JSON, YAML, Parquet, PNG); nothing is fitted
and no model file is opened (the what-if tab goes through ``hte.pipeline.profile``, which loads
models only through the signed manifest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from hte.errors import HteError
from hte.runs import (
    CONFIG_FILE,
    METRICS_FILE,
    AnalysisSummary,
    EstimatorSummary,
    RunFolderError,
    RunReader,
    RunSummary,
    fit_key,
    is_complete_run,
)
from hte.vocabulary import preference_rank

__all__ = ["EstimatorTarget", "RunFolderError", "RunView", "is_run_folder", "newest_run"]


def is_run_folder(path: Path) -> bool:
    """A finished run folder (renamed into place with its completion marker, ``hte.runs``)
    holding the resolved config and metrics.json."""
    path = Path(path)
    return (
        is_complete_run(path) and (path / CONFIG_FILE).is_file() and (path / METRICS_FILE).is_file()
    )


def newest_run(root: Path, name: str) -> Path | None:
    """The newest finished run folder ``root/name/<run-id>`` (run ids sort by time), or None."""
    base = Path(root) / name
    if not base.is_dir():
        return None
    runs = sorted((p for p in base.iterdir() if p.is_dir() and is_run_folder(p)), key=_run_key)
    return runs[-1] if runs else None


def _run_key(path: Path) -> tuple[str, int]:
    """Run ids sort by time; ``-2``, ``-3`` suffixes (same second) after the plain id."""
    head, _, tail = path.name.rpartition("-")
    if tail.isdigit() and len(tail) < 3:
        return head, int(tail)
    return path.name, 1


@dataclass(frozen=True)
class EstimatorTarget:
    """One fitted (estimator, target) pair of an analysis, with its kind."""

    estimator: str
    target: str
    kind: str

    @property
    def key(self) -> str:
        return fit_key(self.estimator, self.target)


@dataclass
class RunView:
    """The contents of one run folder, read lazily through ``hte.runs.RunReader``."""

    run_dir: Path
    reader: RunReader
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunView:
        """``RunFolderError`` (``OlderRunFolderError`` for a folder of an older hte) unless
        ``run_dir`` is a finished run folder this hte reads."""
        path = Path(run_dir).resolve()
        reader = RunReader.open(path)
        if reader.file(CONFIG_FILE) is None:
            raise RunFolderError(
                f"{path} has no {CONFIG_FILE}: it is not a run folder of `hte run`"
            )
        return cls(path, reader)

    # ---------------------------------------------------------------------------------------------
    # Files

    @property
    def run_summary(self) -> RunSummary:
        """metrics.json, typed."""
        return self.reader.summary

    @cached_property
    def config(self):
        from hte.pipeline.predict import load_run_config

        return load_run_config(self.run_dir)

    @property
    def effects(self) -> pd.DataFrame | None:
        return self.reader.effects

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def level(self) -> str:
        """The run's interval level as a label ("90%" at evaluation.alpha 0.10)."""
        return self.reader.level

    @property
    def report(self) -> Path | None:
        return self.reader.report

    def figure(self, name: str) -> Path | None:
        return self.reader.figure(name)

    # ---------------------------------------------------------------------------------------------
    # Analyses and fits

    @property
    def labels(self) -> list[str]:
        return self.reader.labels

    def analysis(self, label: str | None = None) -> AnalysisSummary:
        return self.reader.summary.analysis(label)

    def fits(self, label: str | None = None) -> list[EstimatorTarget]:
        return [
            EstimatorTarget(est, target, summary.kind)
            for est, target, summary in self.analysis(label).fits()
        ]

    def primary(self, target: str, label: str | None = None) -> EstimatorTarget | None:
        """The estimator shown first for ``target``: the run's held-out model choice when it
        chose an estimator, else by kind preference, then config order."""
        candidates = [f for f in self.fits(label) if f.target == target]
        if not candidates:
            return None
        choice = (self.analysis(label).model_choice or {}).get(target) or {}
        chosen = [f for f in candidates if f.estimator == choice.get("chosen")]
        if chosen:
            return chosen[0]
        # no recorded choice: the registry's preference (hte.vocabulary.preference)
        return sorted(candidates, key=lambda f: preference_rank(f.kind, target))[0]

    def summary(self, fit: EstimatorTarget, label: str | None = None) -> EstimatorSummary:
        return self.analysis(label).estimators[fit.estimator][fit.target]

    def effects_of(self, fit: EstimatorTarget, label: str | None = None) -> pd.DataFrame | None:
        """effect/lower/upper (and per-arm columns where present) of one fit, one row a patient."""
        return self.reader.effects_of(fit.key, label)

    # ---------------------------------------------------------------------------------------------
    # Optional sections (added by later stages of the pipeline; absent in older run folders)

    def subgroups(self, label: str | None = None) -> dict | None:
        """The subgroups section; None when absent or when it failed (see ``section_error``)."""
        return self.analysis(label).section("subgroups")

    def robustness(self, label: str | None = None) -> dict | None:
        return self.analysis(label).section("robustness")

    def section_error(self, name: str, label: str | None = None) -> str | None:
        """The pipeline's error message when an optional section failed in this run."""
        return self.analysis(label).section_error(name)

    def toc(self, fit: EstimatorTarget, label: str | None = None) -> dict | None:
        het = self.summary(fit, label).heterogeneity or {}
        toc = het.get("toc")
        return toc if isinstance(toc, dict) and toc.get("q") else None

    # ---------------------------------------------------------------------------------------------
    # Attributions

    def attribution_fits(self, label: str | None = None) -> list[EstimatorTarget]:
        label = label or self.labels[0]
        return [f for f in self.fits(label) if self.attribution_path(f, label) is not None]

    def attribution_path(self, fit: EstimatorTarget, label: str | None = None) -> Path | None:
        return self.reader.attribution_file(fit.key, label)

    def attributions(self, fit: EstimatorTarget, label: str | None = None) -> pd.DataFrame | None:
        return self.reader.attributions(fit.key, label)

    def design_matrix(self, label: str | None = None) -> pd.DataFrame | None:
        """The analysed cohort's design matrix, rebuilt by the pipeline from the run's config
        (the synthetic draw or the data file); None when the data cannot be read again."""
        label = label or self.labels[0]
        key = f"design:{label}"
        if key not in self._cache:
            from hte.pipeline import prepare_analysis, prepare_cohort

            try:
                analysis = next(a for a in self.config.time_zero if str(a.label) == label)
                cohort, _ = prepare_cohort(self.config)
                self._cache[key] = prepare_analysis(cohort, analysis).X
            except (HteError, OSError, ValueError):  # a moved or changed data file: no plots
                self._cache[key] = None
        return self._cache[key]

    def beeswarm(self, fit: EstimatorTarget, label: str | None = None) -> Path | None:
        return self.reader.beeswarm(fit.key, label)
