"""One small real run of configs/default.yaml for the report tests (session-scoped: fitted once).

The overrides keep it cheap (n = 400, few trees, the 12-month survival and any-grade CRS targets,
four estimators, SHAP on 30 patients, 90% intervals) while still writing every file a report reads: metrics with
balance, overlap, baselines, truth metrics, heterogeneity tests and attributions; effects.parquet;
attribution parquet files and beeswarm figures; config, fingerprint, versions, seeds and log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hte.config import load_config
from hte.pipeline import run_experiment

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
SMALL = [
    "data.n=400",
    "outcomes.os.rmst_horizon=null",
    "outcomes.crs.grade3=false",
    "evaluation.model_average=null",  # its members (BCF, S-learner, Cox) are not fitted here
    "estimators=[{name: causal_survival_forest, kind: causal_survival_forest, "
    "params: {n_estimators: 40, min_samples_leaf: 10}}, "
    "{name: cox_interaction, kind: cox_interaction}, "
    "{name: crs_causal_forest, kind: crs_causal_forest, params: {n_estimators: 40}}, "
    "{name: logistic_interaction, kind: logistic_interaction, params: {penalty: 1.0}}]",
    "explanation.shap=true",
    "explanation.n_patients_shap=30",
    "seeds.global=11",
    # not the default 0.05: every interval label of the report must follow the run's level (90%)
    "evaluation.alpha=0.10",
]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """The run folder of a small real run of the default experiment."""
    root = tmp_path_factory.mktemp("report_runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(root / "hte_home"))  # models are not written; no key is touched
    try:
        config = load_config(DEFAULT_CONFIG, SMALL)
        result = run_experiment(config, output_root=root, progress=False, write_models=False)
    finally:
        mp.undo()
    assert result.run_dir is not None
    return result.run_dir


@pytest.fixture(scope="session")
def small_report(small_run, tmp_path_factory) -> Path:
    """The report of the small run, written once to a separate folder."""
    from hte.report import write_report

    return write_report(small_run, tmp_path_factory.mktemp("report") / "report.html")
