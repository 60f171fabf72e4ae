"""The report's model-choice section and summary cards, from the small real run and from a
metrics.json edited to show each branch (a learner shown, the constant shown, an error)."""

from __future__ import annotations

import json
import re

from hte.report import build_report


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{re.escape(anchor)}">(.*?)</section>', html, re.S)
    assert match, f"no section #{anchor}"
    return match.group(1)


def test_small_run_has_the_choice_in_metrics_and_report(small_run):
    metrics = json.loads((small_run / "metrics.json").read_text(encoding="utf-8"))
    choice = metrics["analyses"]["decision"]["model_choice"]
    assert set(choice) == {"survival", "crs"}
    html = build_report(small_run)
    section = _section(html, "model-choice")
    for m in choice.values():
        names = {r["candidate"] for r in m["losses"]}
        assert {"constant", "stack"} < names
        assert m["shown"] == m["chosen"]
        for name in names:
            assert name in section
    assert "Calibration for benefit" in section and "data:image/png;base64," in section
    summary = _section(html, "summary")
    assert "the model shown per target" in summary


def _edited(small_run, tmp_path, chosen: str):
    import shutil

    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    m = metrics["analyses"]["decision"]["model_choice"]["survival"]
    m["chosen"] = m["shown"] = chosen
    m["statement"] = (
        "this cohort does not support individual differences; showing the average effect"
        if chosen == "constant"
        else None
    )
    metrics["analyses"]["decision"]["model_choice"]["crs"] = {"error": "ValueError: broken"}
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    return build_report(run)


def test_constant_shown_is_said_plainly(small_run, tmp_path):
    html = _edited(small_run, tmp_path, "constant")
    section = _section(html, "model-choice")
    assert "This cohort does not support individual differences; showing the average effect" in (
        section
    )
    assert "average effect shown" in _section(html, "summary")
    assert "ValueError: broken" in section  # an error is shown, not hidden
    # the per-patient spread of that target is labelled as the estimators', not a finding
    cate = _section(html, "cate")
    assert "held-out predictions ranked patients by benefit beyond chance" in cate
    assert "not a finding about patients" in cate


def test_learner_shown_is_named_in_the_summary(small_run, tmp_path):
    html = _edited(small_run, tmp_path, "cox_interaction")
    summary = _section(html, "summary")
    assert "individual effects shown" in summary and "cox_interaction" in summary
    assert "cox_interaction (shown)" in _section(html, "model-choice")


def test_a_preferred_average_is_named_with_the_reason_it_is_shown(small_run, tmp_path):
    # a run whose gate passed a learner and showed the prespecified average in its place
    import shutil

    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    m = metrics["analyses"]["decision"]["model_choice"]["survival"]
    m["chosen"] = m["shown"] = m["preferred"] = "cox_interaction"
    m["statement"], m["gate"], m["gate_z"] = None, "slope", 3.6
    m["gate_learner"] = "t_learner_rsf"  # another learner passed the gate
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    summary = _section(build_report(run), "summary")
    i = summary.find("held-out calibration slope is above 0 by 3.6 SE")
    assert i > 0, summary[-3000:]
    assert "the prespecified cox_interaction is shown" in summary[i : i + 300]


def test_a_preferred_average_that_passed_its_own_test_says_so(small_run, tmp_path):
    # the prespecified model passed its own share of the slope gate's level and is shown
    import shutil

    run = tmp_path / small_run.name
    shutil.copytree(small_run, run)
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    m = metrics["analyses"]["decision"]["model_choice"]["survival"]
    m["chosen"] = m["shown"] = m["preferred"] = m["gate_learner"] = "cox_interaction"
    m["statement"], m["gate"], m["gate_z"] = None, "slope", 2.4
    m["preferred_threshold_se"] = 2.054
    (run / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    summary = _section(build_report(run), "summary")
    assert "above 0 by 2.4 SE, more than the 2.05 SE its own test as the prespecified" in summary
