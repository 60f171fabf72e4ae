"""`hte run` and `hte predict` from the command line: bad configs stop with one clear message and
exit 1 before anything is fitted; a small run prints its summary and run folder; predict writes a
CSV of effects for new patients."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from hte.cli import app
from hte.data.columns import DAYS_PER_MONTH
from hte.data.simulate import simulate_cohort

runner = CliRunner()


@pytest.fixture(autouse=True)
def _own_key(tmp_path, monkeypatch):
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "hte_home"))


@pytest.fixture(scope="module")
def user_export(tmp_path_factory) -> Path:
    """A small cohort as a user's export: own column names, 1/0 codes, follow-up in days."""
    df = simulate_cohort(200, seed=3)
    df = df[[c for c in df.columns if not c.startswith("true_")]]
    df = df.rename(columns={"patient_id": "PID", "treatment": "arm", "os_months": "os_days"})
    df["arm"] = df["arm"].map({"cart": 1, "tec": 0})
    df["os_days"] = df["os_days"] * DAYS_PER_MONTH
    path = tmp_path_factory.mktemp("export") / "cohort.csv"
    df.to_csv(path, index=False)
    return path


def _file_config(tmp_path: Path, csv: Path) -> Path:
    path = tmp_path / "real.yaml"
    path.write_text(
        f"""\
name: real
data:
  source: file
  path: {csv}
  columns:
    columns: {{PID: patient_id, arm: treatment, os_days: os_months}}
    treatment_codes: {{1: cart, 0: tec}}
    time_unit: days
outcomes:
  os: {{survival_horizon: 12, rmst_horizon: null}}
  crs: {{grade3: false}}
estimators:
  - {{name: cox, kind: cox_interaction}}
  - {{name: logit, kind: logistic_interaction, params: {{penalty: 1.0}}}}
explanation: {{shap: false, subgroup_rules: false}}
output: {{root: {tmp_path / "runs"}}}
""",
        encoding="utf-8",
    )
    return path


BAD = {
    "unknown key": (["--set", "data.columns.time_units=days"], "unknown key"),
    "wrong type": (["--set", "seeds.global=abc"], "seeds.global"),
    "missing data file": (["--set", "data.path=gone.csv"], "no such file: gone.csv"),
    "column map naming a missing column": (
        ["--set", "data.columns.columns.Hb=hemoglobin"],
        "column 'Hb' of the column map (-> hemoglobin) is not in the file",
    ),
    "horizon beyond follow-up": (
        ["--set", "outcomes.os.survival_horizon=120"],
        "is beyond the longest follow-up",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_stops_before_fitting_with_one_message(tmp_path, user_export, case):
    config = _file_config(tmp_path, user_export)
    overrides, expected = BAD[case]
    result = runner.invoke(app, ["run", str(config), *overrides])
    assert result.exit_code == 1
    message = " ".join(result.output.split())  # rich may wrap long lines
    assert message.startswith("config error: ") and expected in message
    assert message.count("config error") == 1
    assert not (tmp_path / "runs").exists()  # nothing written, nothing fitted


def test_run_prints_summary_and_folder_then_predict_scores_new_patients(tmp_path, user_export):
    config = _file_config(tmp_path, user_export)
    result = runner.invoke(app, ["run", str(config), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "decision time zero: 200 patients" in result.output
    run_dirs = list((tmp_path / "runs" / "real").iterdir())
    assert len(run_dirs) == 1
    assert f"run folder: {run_dirs[0]}\n" in result.output
    report = run_dirs[0] / "report.html"
    assert f"report: {report}\n" in result.output and report.stat().st_size > 10_000
    # hte report rebuilds it anywhere asked
    again = tmp_path / "again.html"
    result_report = runner.invoke(app, ["report", str(run_dirs[0]), "--out", str(again)])
    assert result_report.exit_code == 0, result_report.output
    assert 'id="provenance"' in again.read_text(encoding="utf-8")
    fingerprint = json.loads((run_dirs[0] / "fingerprint.json").read_text())
    assert fingerprint["sha256"] == hashlib.sha256(user_export.read_bytes()).hexdigest()
    assert fingerprint["n"] == 200 and "patient_id" in fingerprint["columns"]  # after the map

    # new patients in the user's own export format (the run's column map), without outcomes
    new = pd.read_csv(user_export).head(8).drop(columns=["arm", "os_days", "death", "crs"])
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    out = tmp_path / "scored.csv"
    result = runner.invoke(app, ["predict", str(run_dirs[0]), str(new_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out, dtype={"patient_id": str})
    effects = pd.read_parquet(run_dirs[0] / "effects.parquet").head(8)
    assert scored["patient_id"].tolist() == effects["patient_id"].tolist()
    for column in ("cox__survival__effect", "cox__survival__s_cart", "logit__crs__lower"):
        pd.testing.assert_series_equal(scored[column], effects[column], rtol=1e-9)


def test_report_refuses_a_folder_hte_did_not_write(tmp_path):
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a finished run (state: incomplete" in " ".join(result.output.split())


def test_predict_refuses_a_folder_hte_did_not_write(tmp_path, user_export):
    result = runner.invoke(app, ["predict", str(tmp_path), str(user_export), "--out", "x.csv"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())  # rich wraps long paths
    assert "cannot predict" in message and "is not a run folder written by `hte run`" in message
