"""One analysis prepared from a config text as the run's first stages leave it (cohort, time zero
and design, the shared nuisances when asked, the design diagnostics): shared by pipeline tests."""

from __future__ import annotations

from pathlib import Path

from hte.config import ExperimentConfig, load_config
from hte.pipeline.stages import (
    AnalysisData,
    design_diagnostics,
    fit_analysis_nuisances,
    prepare_analysis,
    prepare_cohort,
)


def prepared_analysis(
    path: Path, config_text: str, *, shared_nuisances: bool = True
) -> tuple[AnalysisData, ExperimentConfig]:
    """The config written to ``path`` and loaded, and its first analysis prepared."""
    path.write_text(config_text, encoding="utf-8")
    config = load_config(path)
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    if shared_nuisances:
        fit_analysis_nuisances(data, config)
    design_diagnostics(data, config.seed)
    return data, config
