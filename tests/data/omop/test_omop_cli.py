"""`hte omop synthesize` and `hte cohort build` through the typer app."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from hte.cli import app
from hte.data.load import load_cohort
from hte.data.simulate import simulate_cohort

runner = CliRunner()


def test_synthesize_then_build(tmp_path):
    db = tmp_path / "ehr.duckdb"
    res = runner.invoke(app, ["omop", "synthesize", "--n", "120", "--seed", "4", "--out", str(db)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ehr.truth.parquet").exists()
    out = tmp_path / "cohort.parquet"
    res = runner.invoke(app, ["cohort", "build", "--db", f"duckdb:///{db}", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "in the cohort" in res.output and "thalidomide" in res.output  # unmatched code noted
    cohort = load_cohort(out)  # validates against hte's schema
    assert list(cohort["patient_id"]) == list(simulate_cohort(120, 4)["patient_id"])
    summary = json.loads((tmp_path / "cohort.attrition.json").read_text())
    assert summary["attrition"]["n_out"] == 120
    assert pd.read_parquet(tmp_path / "ehr.truth.parquet")["person_id"].tolist() == list(
        range(1, 121)
    )


def test_build_errors_exit_1_with_the_reason(tmp_path):
    res = runner.invoke(
        app,
        [
            "cohort",
            "build",
            "--db",
            f"duckdb:///{tmp_path}/none.duckdb",
            "--out",
            str(tmp_path / "c.parquet"),
        ],
    )
    assert res.exit_code == 1
    assert "no such DuckDB database" in res.output
    res = runner.invoke(
        app, ["cohort", "build", "--db", "x.duckdb", "--out", str(tmp_path / "c.txt")]
    )
    assert res.exit_code == 2
