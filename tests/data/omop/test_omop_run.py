"""`hte run` with data.source: omop: the cohort is built from the database, the run folder records
the spec, the attrition and the cohort's fingerprint, and the average effects recover the truth."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hte.config import ConfigError, load_config
from hte.data.omop.synthesize import EHRRates, synthesize
from hte.pipeline import run_experiment

N, SEED = 1500, 11
CONFIG = """\
name: omop_small
data: {{source: omop, db: "duckdb:///{db}", spec: configs/cohort_omop.yaml}}
time_zero: [decision]
outcomes:
  os: {{survival_horizon: 12, rmst_horizon: 24}}
  crs: {{any_grade: true, grade3: false}}
estimators:  # (Cox with interactions fails here: the FISH flags' missing indicators coincide)
  - {{name: logit, kind: logistic_interaction, params: {{penalty: 1.0}}}}
evaluation: {{robustness: false}}
explanation: {{shap: false, subgroup_rules: false}}
seeds: {{global: 5}}
"""


@pytest.fixture(scope="module")
def omop_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("omop_run")
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(root / "home"))
    synthesis = synthesize(N, SEED, "default", root / "ehr.duckdb")
    path = root / "omop.yaml"
    path.write_text(CONFIG.format(db=root / "ehr.duckdb"), encoding="utf-8")
    result = run_experiment(load_config(path), output_root=root, progress=False, write_models=False)
    mp.undo()
    return result, synthesis, pd.read_parquet(synthesis.truth_path)


def test_run_folder_records_spec_attrition_and_fingerprint(omop_run):
    result, _, _ = omop_run
    ext = result.metrics["cohort_extraction"]
    att = ext["attrition"]
    assert att["n_out"] == N
    assert att["n_in"] - sum(s["excluded"] for s in att["steps"]) == att["n_out"]
    assert (result.run_dir / "cohort_spec.yaml").read_bytes() == open(
        "configs/cohort_omop.yaml", "rb"
    ).read()
    fingerprint = json.loads((result.run_dir / "fingerprint.json").read_text())
    assert fingerprint["n"] == N and fingerprint["source"].startswith("omop: duckdb:///")
    from hte.report import build_report

    html = build_report(result.run_dir)
    assert "Cohort from the database" in html and "excluded: not a myeloma diagnosis" in html


def test_average_effects_recover_the_truth(omop_run):
    result, _, truth = omop_run
    base = result.metrics["analyses"]["decision"]["baselines"]
    for target, column in (("survival", "true_cate_surv12"), ("rmst", "true_cate_rmst24")):
        ate = base[f"ate_{target}_iptw_km"]
        assert ate["lower"] <= truth[column].mean() <= ate["upper"], (target, ate)
    # CRS as the EHR holds it: a share crs_recorded of the episodes, so the recorded risk
    # difference is about crs_recorded times the true one
    crs = base["ate_crs_aipw"]
    expected = EHRRates().crs_recorded * truth["true_cate_crs"].mean()
    assert crs["lower"] <= expected <= crs["upper"], crs


def test_config_errors_name_the_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "missing.duckdb"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"data.db: no such DuckDB database"):
        run_experiment(load_config(path), output_root=tmp_path, progress=False)
