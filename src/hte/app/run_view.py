"""A read-only view of one run folder for the app: config, metrics, effects, attributions, figures.

Everything here reads files that ``hte run`` wrote (JSON, YAML, Parquet, PNG); nothing is fitted
and no model file is opened (the what-if tab goes through ``hte.pipeline.profile``, which loads
models only through the signed manifest).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from hte.errors import HteError
from hte.runs import (
    COMPLETE_FILE,
    CONFIG_FILE,
    EFFECTS_FILE,
    FIGURES_DIR,
    METRICS_FILE,
    REPORT_FILE,
    attribution_path,
    is_complete_run,
    run_state,
)
from hte.vocabulary import preference_rank


class RunFolderError(HteError, ValueError):
    """A folder that is not a run folder written by ``hte run``."""


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
        return f"{self.estimator}__{self.target}"


@dataclass
class RunView:
    """The contents of one run folder, read lazily."""

    run_dir: Path
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, run_dir: str | Path) -> RunView:
        path = Path(run_dir).resolve()
        if not is_run_folder(path):
            raise RunFolderError(
                f"{path} is not a finished run folder of `hte run` (needs {COMPLETE_FILE}, "
                f"{CONFIG_FILE} and {METRICS_FILE}; state: {run_state(path)}); `hte runs` lists "
                "run folders with their state"
            )
        return cls(path)

    # ---------------------------------------------------------------------------------------------
    # Files

    @cached_property
    def metrics(self) -> dict:
        return json.loads((self.run_dir / METRICS_FILE).read_text(encoding="utf-8"))

    @cached_property
    def config(self):
        from hte.pipeline.predict import load_run_config

        return load_run_config(self.run_dir)

    @cached_property
    def effects(self) -> pd.DataFrame | None:
        path = self.run_dir / EFFECTS_FILE
        return pd.read_parquet(path) if path.is_file() else None

    @property
    def name(self) -> str:
        return str(self.metrics.get("experiment", {}).get("name", self.run_dir.parent.name))

    @property
    def report(self) -> Path | None:
        path = self.run_dir / REPORT_FILE
        return path if path.is_file() else None

    def figure(self, name: str) -> Path | None:
        path = self.run_dir / FIGURES_DIR / name
        return path if path.is_file() else None

    # ---------------------------------------------------------------------------------------------
    # Analyses and fits

    @property
    def labels(self) -> list[str]:
        return list(self.metrics.get("analyses", {}))

    def analysis(self, label: str | None = None) -> dict:
        label = label or self.labels[0]
        return self.metrics["analyses"][label]

    def fits(self, label: str | None = None) -> list[EstimatorTarget]:
        out = []
        for est, by_target in self.analysis(label).get("estimators", {}).items():
            for target, summary in by_target.items():
                out.append(EstimatorTarget(est, target, str(summary.get("kind", est))))
        return out

    def primary(self, target: str, label: str | None = None) -> EstimatorTarget | None:
        """The estimator shown first for ``target``: the run's held-out model choice when it
        chose an estimator, else by kind preference, then config order."""
        candidates = [f for f in self.fits(label) if f.target == target]
        if not candidates:
            return None
        choice = (self.analysis(label).get("model_choice") or {}).get(target) or {}
        chosen = [f for f in candidates if f.estimator == choice.get("chosen")]
        if chosen:
            return chosen[0]
        # no recorded choice: the registry's preference (hte.vocabulary.preference)
        return sorted(candidates, key=lambda f: preference_rank(f.kind, target))[0]

    def summary(self, fit: EstimatorTarget, label: str | None = None) -> dict:
        return self.analysis(label)["estimators"][fit.estimator][fit.target]

    def effects_of(self, fit: EstimatorTarget, label: str | None = None) -> pd.DataFrame | None:
        """effect/lower/upper (and per-arm columns where present) of one fit, one row a patient."""
        effects = self.effects
        if effects is None:
            return None
        label = label or self.labels[0]
        rows = effects[effects["analysis"] == label] if "analysis" in effects else effects
        prefix = f"{fit.key}__"
        cols = [c for c in rows.columns if c.startswith(prefix)]
        if not cols:
            return None
        out = rows[cols].rename(columns=lambda c: c[len(prefix) :])
        out.insert(0, "treatment", rows["treatment"].to_numpy() if "treatment" in rows else None)
        return out.reset_index(drop=True)

    # ---------------------------------------------------------------------------------------------
    # Optional sections (added by later stages of the pipeline; absent in older run folders)

    def subgroups(self, label: str | None = None) -> dict | None:
        """The subgroups section; None when absent or when it failed (see ``section_error``)."""
        section = self.analysis(label).get("subgroups")
        return section if isinstance(section, dict) and "error" not in section else None

    def robustness(self, label: str | None = None) -> dict | None:
        section = self.analysis(label).get("robustness")
        return section if isinstance(section, dict) and "error" not in section else None

    def section_error(self, name: str, label: str | None = None) -> str | None:
        """The pipeline's error message when an optional section failed in this run."""
        section = self.analysis(label).get(name)
        return str(section["error"]) if isinstance(section, dict) and "error" in section else None

    def toc(self, fit: EstimatorTarget, label: str | None = None) -> dict | None:
        het = self.summary(fit, label).get("heterogeneity") or {}
        toc = het.get("toc")
        return toc if isinstance(toc, dict) and toc.get("q") else None

    # ---------------------------------------------------------------------------------------------
    # Attributions

    def attribution_fits(self, label: str | None = None) -> list[EstimatorTarget]:
        label = label or self.labels[0]
        return [f for f in self.fits(label) if self.attribution_path(f, label) is not None]

    def attribution_path(self, fit: EstimatorTarget, label: str | None = None) -> Path | None:
        label = label or self.labels[0]
        path = self.run_dir / attribution_path(label, fit.key)
        return path if path.is_file() else None

    def attributions(self, fit: EstimatorTarget, label: str | None = None) -> pd.DataFrame | None:
        path = self.attribution_path(fit, label)
        if path is None:
            return None
        key = f"attr:{path}"
        if key not in self._cache:
            self._cache[key] = pd.read_parquet(path)
        return self._cache[key]

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
        label = label or self.labels[0]
        return self.figure(f"shap_{label}__{fit.key}.png")
