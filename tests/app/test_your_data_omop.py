"""The "Your data" tab reads an OMOP CDM DuckDB file: cohort built with the attrition shown, a
non-DuckDB file refused before DuckDB opens it, database problems named, runs configured as omop."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from hte.app import your_data
from hte.data.omop.connection import connect
from hte.data.omop.synthesize import synthesize

SPEC = "configs/cohort_omop.yaml"


@pytest.fixture(scope="module")
def ehr(tmp_path_factory):
    path = tmp_path_factory.mktemp("upload") / "ehr.duckdb"
    synthesize(150, 2, "default", path)
    return path


def test_duckdb_upload_builds_the_cohort(ehr):
    check = your_data.check_upload(ehr)
    assert check.ok, check.message
    assert "Cohort built from the OMOP database" in check.message
    assert "persons in the database" in check.message and "150 patients" in check.message


def test_fake_duckdb_is_refused_unopened(tmp_path):
    path = tmp_path / "evil.duckdb"
    path.write_bytes(pickle.dumps({"x": 1}))
    check = your_data.check_upload(path)
    assert not check.ok and check.problems.iloc[0]["column"] == "(file)"
    assert "DUCK header" in check.problems.iloc[0]["rule"]


def test_database_problem_is_named(ehr, tmp_path):
    path = tmp_path / "broken.duckdb"
    path.write_bytes(ehr.read_bytes())
    with connect(f"duckdb:///{path}") as db:
        db.execute("DROP TABLE death")
    check = your_data.check_upload(path)
    assert not check.ok and check.problems.iloc[0]["column"] == "(database)"
    assert "table death is missing" in check.problems.iloc[0]["rule"]


def test_upload_config_points_at_the_database(ehr):
    config = your_data.upload_config(
        Path("configs/omop.yaml"),
        ehr,
        ("os_months", "death", "crs"),
        Path(SPEC),
    )
    assert config.data.source == "omop" and config.data.db.endswith("ehr.duckdb")
    assert config.name == "upload_omop"


SMALL_UPLOAD_CONFIG = """
name: upload_small
data: {source: file, path: placeholder.csv}
time_zero: [{mode: decision}]
outcomes:
  os: {enabled: true, survival_horizon: 12, rmst_horizon: 24}
  crs: {enabled: true, any_grade: true, grade3: false}
estimators:
  - {name: cox_interaction, kind: cox_interaction}
  - {name: logistic_interaction, kind: logistic_interaction, params: {penalty: 0.1}}
evaluation: {alpha: 0.05, truth_metrics: false, robustness: false}
explanation: {shap: false, subgroup_rules: false}
seeds: {global: 5}
"""


def test_an_upload_run_writes_its_report_and_reports_its_stages(tmp_path, monkeypatch):
    """A run from "Your data" writes report.html like `hte run`, says how many stages it has
    before it starts and names each stage as it starts it."""
    from hte.data.simulate import simulate_cohort
    from hte.runs import is_complete_run

    monkeypatch.setenv("HTE_HOME", str(tmp_path / "home"))
    cohort = tmp_path / "cohort.csv"
    frame = simulate_cohort(300, seed=4)
    frame[[c for c in frame.columns if not c.startswith("true_")]].to_csv(cohort, index=False)
    config = tmp_path / "small.yaml"
    config.write_text(SMALL_UPLOAD_CONFIG)
    stages, totals = [], []
    run_dir = your_data.run_on_upload(
        cohort, config, tmp_path / "runs", stages.append, totals.append
    )
    assert is_complete_run(run_dir) and (run_dir / "report.html").stat().st_size > 10_000
    assert len(totals) == 1 and totals[0] >= 5
    assert any("decision" in s for s in stages) and len(stages) >= totals[0] - 1
