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
        Path("configs/omop.yaml"), ehr, ("os_months", "death", "crs"),
        Path(SPEC),
    )  # fmt: skip
    assert config.data.source == "omop" and config.data.db.endswith("ehr.duckdb")
    assert config.name == "upload_omop"
