"""The typed run summary (metrics.json) and its one reader, ``hte.runs.RunReader``: round trips,
the schema version, the message for a run folder of an older hte, and the run folder's names
(effects columns, figures, interval labels)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from hte.cli import app
from hte.errors import HteError
from hte.runs import (
    SCHEMA_VERSION,
    OlderRunFolderError,
    RunFolderError,
    RunReader,
    RunSummary,
    effect_keys,
    effects_column,
    fit_columns,
    fit_key,
    interval_level,
    read_summary,
)

# A summary with one analysis, two fits (one failed) and no optional sections: the smallest
# metrics.json the pipeline writes, in the shape it writes it.
SUMMARY = {
    "schema_version": SCHEMA_VERSION,
    "experiment": {"name": "tiny", "config_sha256": "ab" * 32, "seed": 3, "alpha": 0.1},
    "data": {"sha256": "cd" * 32, "hashed": "canonical CSV", "n": 4, "columns": ["age"]},
    "data_rules": {"day_zero": {"n_rows": 0, "rule": "follow-up of 0 counted as 1 day(s)"}},
    "analyses": {
        "decision": {
            "mode": "decision",
            "description": "time zero at the treatment decision",
            "n_analysed": 4,
            "n_by_arm": {"cart": 2, "tec": 2},
            "n_excluded_by_reason": {},
            "design": {"features": ["age"], "missing": {}},
            "baselines": {},
            "estimators": {
                "cox": {
                    "survival": {
                        "kind": "cox_interaction",
                        "target": "survival",
                        "horizon": 12.0,
                        "mean_effect": 0.1,
                        "sd_effect": 0.02,
                        "quantiles": {"q10": 0.08, "q50": 0.1, "q90": 0.12},
                        "share_excluding_zero": None,  # no interval: written as null
                        "share_with_interval": 0.0,
                        "average": {"estimate": 0.1, "lower": 0.0, "upper": 0.2, "method": "x"},
                    }
                },
                "logit": {
                    "crs": {
                        "kind": "logistic_interaction",
                        "target": "crs",
                        "horizon": None,
                        "error": "ValueError: only one arm",
                        "fix": "the analysed cohort needs patients in both arms",
                    }
                },
            },
        }
    },
    "truth_metrics": False,
    "failures": ["decision/logit__crs: ValueError: only one arm (fix: ...)"],
}


def _text(obj: dict) -> str:
    return json.dumps(obj, sort_keys=True, indent=2) + "\n"


def _run_folder(tmp_path: Path, metrics: dict | None) -> Path:
    """A finished run folder holding ``metrics`` (and the other files a reader needs)."""
    run = tmp_path / "tiny" / "20260101T000000Z-abcdef12"
    (run / "figures").mkdir(parents=True)
    (run / "config.resolved.yaml").write_text("name: tiny\n", encoding="utf-8")
    if metrics is not None:
        (run / "metrics.json").write_text(_text(metrics), encoding="utf-8")
    (run / "complete.json").write_text("{}", encoding="utf-8")
    return run


# --------------------------------------------------------------------------------------------------
# The typed summary


def test_summary_round_trips_byte_for_byte():
    text = _text(SUMMARY)
    summary = RunSummary.from_json(text)
    assert summary.to_json() == text
    assert RunSummary.from_json(summary.to_json()) == summary


def test_summary_types_what_readers_use():
    summary = RunSummary.model_validate(SUMMARY)
    analysis = summary.analysis()
    assert summary.labels == ["decision"] and summary.alpha == 0.1
    cox = analysis.estimators["cox"]["survival"]
    assert cox.average.upper == 0.2 and cox.horizon == 12.0 and not cox.failed
    assert analysis.estimators["logit"]["crs"].failed
    assert [(e, t) for e, t, _ in analysis.fits()] == [("cox", "survival"), ("logit", "crs")]
    assert analysis.subgroups is None and analysis.section("subgroups") is None


def test_absent_sections_stay_absent_and_set_ones_are_written():
    """A key is written when the pipeline set it (even to null), never because a model has it."""
    summary = RunSummary.model_validate(SUMMARY)
    written = json.loads(summary.to_json())
    analysis = written["analyses"]["decision"]
    assert "subgroups" not in analysis and "decision_truth" not in written
    assert analysis["estimators"]["logit"]["crs"]["horizon"] is None  # set, so written
    summary.analysis().robustness = {"error": "RuntimeError: boom"}
    assert json.loads(summary.to_json())["analyses"]["decision"]["robustness"] == {
        "error": "RuntimeError: boom"
    }
    assert summary.analysis().section_error("robustness") == "RuntimeError: boom"


def test_summary_refuses_unknown_or_missing_keys():
    unknown = copy.deepcopy(SUMMARY)
    unknown["analyses"]["decision"]["estimators"]["cox"]["survival"]["mean_efect"] = 0.1
    with pytest.raises(ValidationError, match="mean_efect"):
        RunSummary.model_validate(unknown)
    missing = copy.deepcopy(SUMMARY)
    del missing["experiment"]["alpha"]
    with pytest.raises(ValidationError, match="alpha"):
        RunSummary.model_validate(missing)


def test_summary_writes_the_schema_version_set_or_not():
    fields = {k: v for k, v in SUMMARY.items() if k != "schema_version"}
    built = RunSummary(**copy.deepcopy(fields))  # as the pipeline builds it
    assert json.loads(built.to_json())["schema_version"] == SCHEMA_VERSION
    assert built.to_json() == _text(SUMMARY)


# --------------------------------------------------------------------------------------------------
# The reader and run folders of other versions


def test_reader_reads_a_run_folder(tmp_path):
    run = _run_folder(tmp_path, SUMMARY)
    effects = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c"],
            "analysis": ["decision", "decision", "infusion"],
            "treatment": ["cart", "tec", "cart"],
            "cox__survival__effect": [0.1, 0.2, 0.3],
            "cox__survival__lower": [0.0, 0.1, 0.2],
            "cox__survival__upper": [0.2, 0.3, 0.4],
            "cox__survival__s_cart": [0.7, 0.6, 0.5],
        }
    )
    effects.to_parquet(run / "effects.parquet", index=False)
    reader = RunReader.open(run)
    assert reader.summary == RunSummary.model_validate(SUMMARY)
    assert reader.level == "90%" and reader.name == "tiny" and reader.labels == ["decision"]
    one = reader.effects_of(fit_key("cox", "survival"))
    assert list(one.columns) == ["treatment", "effect", "lower", "upper", "s_cart"]
    assert one["effect"].tolist() == [0.1, 0.2]  # the decision analysis only
    assert reader.effects_of("cox__crs") is None
    assert reader.figure("cate_decision.png") is None and reader.report is None


def test_an_older_run_folder_is_refused_with_the_rerun_command(tmp_path):
    old = {k: v for k, v in SUMMARY.items() if k != "schema_version"}  # hte before versions
    run = _run_folder(tmp_path, old)
    with pytest.raises(OlderRunFolderError) as caught:
        RunReader.open(run)
    message = str(caught.value)
    assert message.startswith("this run folder was written by an older hte (schema 0")
    assert f"rerun it with this version: hte run {run / 'config.resolved.yaml'}" in message
    assert isinstance(caught.value, HteError) and isinstance(caught.value, RunFolderError)


def test_a_newer_run_folder_is_refused_too(tmp_path):
    run = _run_folder(tmp_path, SUMMARY | {"schema_version": SCHEMA_VERSION + 1})
    with pytest.raises(OlderRunFolderError, match=r"a newer hte \(schema 2"):
        read_summary(run)


def test_a_damaged_summary_names_the_key(tmp_path):
    damaged = copy.deepcopy(SUMMARY)
    damaged["analyses"]["decision"]["n_analysed"] = "four"
    run = _run_folder(tmp_path, damaged)
    with pytest.raises(RunFolderError, match=r"analyses\.decision\.n_analysed"):
        RunReader.open(run)
    (run / "metrics.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(RunFolderError, match="not a run summary"):
        RunReader.open(run)


def test_unfinished_and_empty_folders_are_not_run_folders(tmp_path):
    with pytest.raises(RunFolderError, match="not a folder"):
        RunReader.open(tmp_path / "absent")
    with pytest.raises(RunFolderError, match=r"not a finished run \(state: incomplete"):
        RunReader.open(tmp_path)
    run = _run_folder(tmp_path, None)
    with pytest.raises(RunFolderError, match=r"no metrics\.json"):
        RunReader.open(run)


@pytest.mark.parametrize("command", ["report", "predict", "app"])
def test_every_face_gives_the_older_run_message(tmp_path, command):
    run = _run_folder(tmp_path, {k: v for k, v in SUMMARY.items() if k != "schema_version"})
    if command == "app":
        from hte.app.launch import main

        with pytest.raises(OlderRunFolderError, match="older hte"):
            from hte.app.run_view import RunView

            RunView.open(run)
        assert main([str(run), "--port", "1"]) == 1
        return
    args = [command, str(run)]
    if command == "predict":
        (tmp_path / "new.csv").write_text("patient_id,age\np1,60\n", encoding="utf-8")
        args += [str(tmp_path / "new.csv"), "--out", str(tmp_path / "out.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    words = " ".join(result.output.split())  # rich wraps long lines
    assert "written by an older hte (schema 0" in words and "rerun it with this version" in words


# --------------------------------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("alpha", "label"), [(0.05, "95%"), (0.1, "90%"), (0.2, "80%"), (0.01, "99%"), (0.025, "97.5%")]
)
def test_interval_labels_come_from_alpha(alpha, label, tmp_path):
    assert interval_level(alpha) == label
    metrics = copy.deepcopy(SUMMARY)
    metrics["experiment"]["alpha"] = alpha
    assert RunReader.open(_run_folder(tmp_path, metrics)).level == label


def test_effects_column_names():
    key = fit_key("csf", "rmst")
    assert key == "csf__rmst" and effects_column(key, "lower") == "csf__rmst__lower"
    columns = ["patient_id", "csf__rmst__effect", "csf__rmst__lower", "cox__crs__effect"]
    assert effect_keys(columns) == ["csf__rmst", "cox__crs"]
    assert fit_columns(columns, key) == {"effect": "csf__rmst__effect", "lower": "csf__rmst__lower"}
