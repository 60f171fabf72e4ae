"""The HTML report of a run folder: every section anchor, offline, numbers taken from the run
folder, "not run" text where a part is absent, shapes other stages add rendered, analyses side by
side, and no estimator imports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hte.report import build_report, write_report
from hte.report.format import NOT_RUN, effect, num, pvalue, signed
from hte.report.loader import load_run_folder

ANCHORS = (
    "summary",
    "cohort",
    "averages",
    "cate",
    "benefit-harm",
    "subgroups",
    "heterogeneity",
    "robustness",
    "attributions",
    "provenance",
)


class _Tags(HTMLParser):
    """Collects ids, href/src values and <script>/<link> tags."""

    def __init__(self):
        super().__init__()
        self.ids: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.append(value)
            if name in ("href", "src", "action", "data", "poster") and value is not None:
                self.urls.append(value)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def _section(html: str, anchor: str) -> str:
    match = re.search(rf'<section id="{re.escape(anchor)}">(.*?)</section>', html, re.S)
    assert match, f"no section #{anchor}"
    return match.group(1)


def metrics_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


def _copy_run(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def _edit_metrics(run_dir: Path, edit) -> None:
    path = run_dir / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    edit(metrics)
    path.write_text(json.dumps(metrics), encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# The real small run


def test_every_section_has_its_anchor_and_a_contents_link(small_report):
    html = small_report.read_text(encoding="utf-8")
    tags = _parse(html)
    for anchor in ANCHORS:
        assert tags.ids.count(anchor) == 1, anchor
        assert f"#{anchor}" in tags.urls, f"contents lacks a link to #{anchor}"
    assert "not a treatment recommendation" in html


def test_report_is_self_contained_and_opens_offline(small_report):
    html = small_report.read_text(encoding="utf-8")
    tags = _parse(html)
    assert "script" not in tags.tags and "link" not in tags.tags and "iframe" not in tags.tags
    for url in tags.urls:
        # only in-page anchors and embedded images: no http(s), protocol-relative or file links
        assert url.startswith("#") or url.startswith("data:image/png;base64,"), url[:80]
    assert not re.search(r"url\(|@import|https?://", html.split("</style>")[0])
    assert tags.tags.count("img") >= 4  # overlap, balance, CATE, benefit-harm at least


def test_headline_numbers_are_the_run_folders(small_run, small_report):
    html = small_report.read_text(encoding="utf-8")
    metrics = json.loads((small_run / "metrics.json").read_text(encoding="utf-8"))
    base = metrics["analyses"]["decision"]["baselines"]
    summary = _section(html, "summary")
    assert f"{base['hazard_ratio_iptw']['hr']:.2f}" in summary
    assert effect(base["ate_survival_iptw_km"]["estimate"], "survival") in summary
    truth = metrics["decision_truth"]
    assert f"truth (decision time) {truth['hazard_ratio']:.2f}" in summary
    averages = _section(html, "averages")
    assert "802MO" in averages  # published figures with their sources
    assert f"{metrics['analyses']['decision']['n_analysed']}" in _section(html, "cohort")


def test_sections_show_what_the_small_run_holds(small_run, small_report):
    html = small_report.read_text(encoding="utf-8")
    cate = _section(html, "cate")
    for name in ("causal_survival_forest", "cox_interaction", "crs_causal_forest", "NMSE"):
        assert name in cate
    assert "data:image/png" in _section(html, "benefit-harm")
    heterogeneity = _section(html, "heterogeneity")
    assert "AUTOC (90% CI)" in heterogeneity  # the run's alpha = 0.10
    tests = metrics_of(small_run)["analyses"]["decision"]["estimators"]["cox_interaction"]
    in_sample = tests["survival"]["heterogeneity"]["in_sample"]
    # the in-sample caution is shown exactly when the run ranked patients in-sample
    assert ("in-sample predictions" in heterogeneity) == bool(in_sample)
    assert ("held-out" in heterogeneity) == (not in_sample)
    attributions = _section(html, "attributions")
    assert attributions.count("fidelity R²") >= 4  # one per estimator x target card
    provenance = _section(html, "provenance")
    fingerprint = json.loads((small_run / "fingerprint.json").read_text(encoding="utf-8"))
    assert fingerprint["sha256"] in provenance and small_run.name in provenance
    assert "scikit-survival" in provenance and "n_patients_shap: 30" in provenance
    # parts other stages have not (yet) wired into hte run are said to be absent, else shown
    analysis = metrics_of(small_run)["analyses"]["decision"]
    for key in ("subgroups", "robustness"):
        assert (NOT_RUN in _section(html, key)) == (key not in analysis), key


def test_write_report_defaults_to_the_run_folder(small_run, tmp_path):
    run = _copy_run(small_run, tmp_path)
    path = write_report(run)
    assert path == run / "report.html" and path.stat().st_size > 10_000


def test_sections_drawn_in_worker_processes_give_the_same_report(small_run, monkeypatch):
    # hte run draws the report's sections in its worker processes: the same HTML as here (the
    # generation time aside)
    monkeypatch.delenv("HTE_MAX_PROCESSES", raising=False)
    stamp = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
    here = stamp.sub("", build_report(small_run))
    there = stamp.sub("", build_report(small_run, n_jobs=2))
    assert here == there and len(here) > 10_000


def test_build_refuses_a_folder_without_metrics(tmp_path):
    from hte.runs import RunFolderError

    with pytest.raises(RunFolderError, match=r"not a finished run \(state: incomplete"):
        build_report(tmp_path)  # not a finished run: no completion marker
    (tmp_path / "complete.json").write_text("{}")
    with pytest.raises(RunFolderError, match=r"metrics\.json"):
        build_report(tmp_path)
    with pytest.raises(RunFolderError, match="not a folder"):
        build_report(tmp_path / "absent")


# --------------------------------------------------------------------------------------------------
# Absent parts and the shapes other stages add


def test_absent_parts_say_not_run_and_never_crash(small_run, tmp_path):
    run = _copy_run(small_run, tmp_path)

    def strip(m):
        for a in m["analyses"].values():
            for key in (
                "balance",
                "overlap",
                "baselines",
                "heterogeneity_scores",
                "subgroups",
                "robustness",
            ):
                a.pop(key, None)
            for by_target in a["estimators"].values():
                for s in by_target.values():
                    s.pop("heterogeneity", None)
                    s.pop("attributions", None)

    _edit_metrics(run, strip)
    for name in ("effects.parquet", "seeds.json", "versions.json", "run.log", "timings.json"):
        (run / name).unlink()
    shutil.rmtree(run / "attributions")
    html = build_report(run)
    expected = {
        "cohort": ("propensity overlap", "covariate balance"),
        "cate": (),
        "benefit-harm": ("benefit-harm scatter",),
        "subgroups": ("subgroup rules, policy trees and prespecified subgroups",),
        "heterogeneity": ("heterogeneity tests", "TOC curves"),
        "robustness": ("refutation tests and E-values",),
        "attributions": ("SHAP attributions of the decision analysis",),
        "provenance": ("seeds.json", "versions.json", "run.log"),
    }
    for anchor, parts in expected.items():
        section = _section(html, anchor)
        for part in parts:
            assert f"{part}: {NOT_RUN}" in section, (anchor, part)
    assert "average effects" in _section(html, "summary")  # headline cards say so too


def _add_other_stages(m: dict) -> None:
    """The metrics shapes the subgroup, heterogeneity and robustness stages add."""
    a = m["analyses"]["decision"]
    leaf = {
        "rule": "extramedullary > 0.5",
        "n": 60,
        "share": 0.15,
        "mean_cate": 0.21,
        "estimate": 0.19,
        "lower": 0.05,
        "upper": 0.33,
    }
    value = {"estimate": 0.4, "lower": 0.3, "upper": 0.5}
    a["subgroups"] = {
        "rules": {
            "survival": {
                "estimator": "causal_survival_forest",
                "max_depth": 2,
                "fidelity_r2": 0.71,
                "leaves": [leaf],
            }
        },
        "policy": {
            "os_target": "survival",
            "crs_target": "crs",
            "units": "(survival probability)",
            "trees": [
                {
                    "crs_weight": 0.5,
                    "share_cart": 0.62,
                    "leaves": [
                        {
                            "rule": "age <= 70",
                            "n": 250,
                            "action": "cart",
                            "net_benefit": 0.07,
                            "lower": 0.01,
                            "upper": 0.13,
                        }
                    ],
                    "value": {"policy": value, "all_cart": value, "all_tec": value},
                }
            ],
        },
        "prespecified": [
            {
                "subgroup": "age >= 75",
                "target": "survival",
                "n": 40,
                "n_cart": 10,
                "n_tec": 30,
                "estimate": 0.02,
                "lower": -0.2,
                "upper": 0.24,
                "complement_estimate": 0.11,
                "difference": -0.09,
                "difference_lower": -0.3,
                "difference_upper": 0.12,
                "difference_p_value": 0.41,
                "mean_cate": {"causal_survival_forest": 0.05},
                "truth": 0.06,
                "note": "small subgroup",
            }
        ],
    }
    het = a["estimators"]["causal_survival_forest"]["survival"]["heterogeneity"]
    het["in_sample"] = False
    het["toc"] = {
        "q": [0.1, 0.5, 1.0],
        "toc": [0.2, 0.1, 0.0],
        "lower": [0.1, 0.05, 0.0],
        "upper": [0.3, 0.15, 0.0],
    }
    a["robustness"] = {
        "refutations": [
            {
                "target": "survival",
                "refuter": "placebo_treatment",
                "description": "treatment permuted",
                "original": 0.1,
                "estimate": 0.004,
                "lower": -0.05,
                "upper": 0.06,
                "expected": 0.0,
                "passed": True,
                "detail": "interval covers 0",
            }
        ],
        "evalues": [
            {
                "target": "survival",
                "measure": "risk ratio",
                "estimate": 1.31,
                "lower": 1.1,
                "upper": 1.5,
                "evalue": 1.94,
                "evalue_ci": 1.43,
                "note": "",
            }
        ],
    }


def test_shapes_other_stages_add_are_rendered(small_run, tmp_path):
    run = _copy_run(small_run, tmp_path)
    _edit_metrics(run, _add_other_stages)
    html = build_report(run)
    subgroups = _section(html, "subgroups")
    assert "extramedullary &gt; 0.5" in subgroups and "age &gt;= 75" in subgroups
    assert "age &lt;= 70" in subgroups and "CAR-T for 62% of patients" in subgroups
    assert "read it loosely" in subgroups  # rule-tree fidelity 0.71 < 0.8
    assert NOT_RUN not in subgroups
    robustness = _section(html, "robustness")
    assert "placebo_treatment" in robustness and "passed" in robustness
    assert "1.94" in robustness and "1.43" in robustness and NOT_RUN not in robustness
    heterogeneity = _section(html, "heterogeneity")
    assert 'alt="TOC curves"' in heterogeneity and "held-out" in heterogeneity


def test_analyses_are_side_by_side(small_run, tmp_path):
    run = _copy_run(small_run, tmp_path)
    hr_dec = json.loads((run / "metrics.json").read_text())["analyses"]["decision"]["baselines"][
        "hazard_ratio_iptw"
    ]["hr"]

    def duplicate(m):
        infusion = json.loads(json.dumps(m["analyses"]["decision"]))
        infusion["mode"] = "infusion"
        infusion["baselines"]["hazard_ratio_iptw"]["hr"] = hr_dec - 0.123
        infusion["n_excluded_by_reason"] = {"CAR-T never infused": 17}
        m["analyses"]["infusion"] = infusion

    _edit_metrics(run, duplicate)
    html = build_report(run)
    averages = _section(html, "averages")
    assert '<th class="num">decision</th>' in averages
    assert '<th class="num">infusion</th>' in averages
    assert f"{hr_dec - 0.123:.2f}" in averages
    assert num(-0.123) in averages  # the immortal-time gap beside the published -0.10
    cohort = _section(html, "cohort")
    assert "CAR-T never infused" in cohort and ">17<" in cohort
    assert "infusion time zero: headline effects" in _section(html, "summary")


# --------------------------------------------------------------------------------------------------
# Formatting and layering


def test_formatting_rounds_for_a_reader():
    assert num(-0.0004) == "0.00" and num(1234.567, 1) == "1,234.6" and num(None) == "–"
    assert signed(0.1234) == "+0.12" and signed(-0.5) == "−0.50" and signed(-0.001) == "0.00"
    assert effect(0.1, "survival") == "+10.0" and effect(2.187, "rmst") == "+2.19"
    assert pvalue(1e-9) == "< 0.001" and pvalue(0.0123) == "0.012" and pvalue(0.5) == "0.50"


def test_report_reads_a_run_folder_without_estimators_or_pipeline():
    code = (
        "import sys, hte.report\n"
        "print(','.join(sorted(m for m in sys.modules "
        "if m.startswith(('hte.estimators', 'hte.pipeline', 'hte.evaluation')))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""


def test_loader_tolerates_an_unreadable_file(small_run, tmp_path):
    run = _copy_run(small_run, tmp_path)
    (run / "seeds.json").write_text("{not json", encoding="utf-8")
    folder = load_run_folder(run)
    assert folder.seeds is None and any("seeds.json" in p for p in folder.problems)
    assert "Unreadable files in the run folder" in build_report(run)


# --------------------------------------------------------------------------------------------------
# Interval labels follow the run's alpha

# an interval label: "95% CI", "95% interval(s)", "95% band(s)", "95% confidence", "(95% is the aim)"
_LABEL = r"{}%\s+(?:CI|intervals?|bands?|confidence|is the aim)"


def test_interval_labels_follow_the_runs_alpha(small_run, small_report):
    """The small run is at alpha = 0.10: every section that shows intervals says 90%, and no
    interval anywhere is labelled 95% (the old hard-coded level)."""
    assert metrics_of(small_run)["experiment"]["alpha"] == pytest.approx(0.10)
    html = small_report.read_text(encoding="utf-8")
    assert not re.search(_LABEL.format(95), html), re.search(_LABEL.format(95), html)
    for anchor in (
        "summary",
        "averages",
        "cate",
        "model-choice",
        "subgroups",
        "heterogeneity",
        "robustness",
    ):
        assert re.search(_LABEL.format(90), _section(html, anchor)), anchor
    subgroups = _section(html, "subgroups")
    assert re.search(r"doubly robust estimate \([^)]*, 90% CI\)", subgroups)  # rule trees
    assert re.search(r"net benefit [^<]*\(90% CI\)", subgroups)  # policy trees
    assert "effect (90% CI)" in subgroups and "difference (90% CI)" in subgroups  # prespecified
    # the explorer's tables, its what-if cards and the console summary follow the same alpha
    _app_and_console_labels_follow_the_runs_alpha(small_run)


def _app_and_console_labels_follow_the_runs_alpha(run_dir: Path) -> None:
    from rich.console import Console

    from hte.app import cohort as views
    from hte.app.run_view import RunView
    from hte.app.whatif import effect_cards
    from hte.pipeline.summary import render_summary

    view = RunView.open(run_dir)
    assert view.level == "90%"
    tab = views.cohort_tab(view, 0.5)
    refutations, evalues = views.robustness_tables(view)
    tables = (tab.rules, tab.policy_leaves, views.averages_table(view), refutations, evalues)
    headers = [str(c) for table in tables for c in table.columns]
    assert not [h for h in headers if "95%" in h], headers
    for label in (
        "effect in the leaf (90% CI)",
        "net benefit (90% CI)",
        "90% interval",
        "refuted estimate (90% CI)",
        "estimate (90% CI)",
    ):
        assert label in headers, (label, headers)
    cards = effect_cards(
        {
            "alpha": 0.1,
            "survival_horizon": 12.0,
            "survival_difference": {"value": 0.1, "lower": 0.02, "upper": 0.18},
        }
    )
    assert "90% interval" in cards and "95%" not in cards
    console = Console(record=True, width=200)
    console.print(render_summary(metrics_of(run_dir)))
    text = console.export_text()
    assert "90% CI of mean" in text and "95%" not in text


def test_caterpillar_legend_says_the_runs_level():
    import pandas as pd
    from matplotlib.figure import Figure

    from hte.report import figures as fig

    effects = pd.DataFrame(
        {"cf__crs__effect": [0.1, 0.2], "cf__crs__lower": [0.0, 0.1], "cf__crs__upper": [0.2, 0.3]}
    )
    ax = Figure().add_subplot()
    fig._caterpillar(ax, effects, {"interval_estimator": "cf", "target": "crs"}, 100.0, "90%")
    assert "90% interval" in ax.get_legend_handles_labels()[1]


@pytest.mark.parametrize(
    ("alpha", "label"), [(0.05, "95%"), (0.1, "90%"), (0.025, "97.5%"), (None, "95%"), ("x", "95%")]
)
def test_interval_level_label(alpha, label):
    from hte.runs import interval_level

    assert interval_level(alpha) == label


def test_the_level_is_the_recorded_alpha(small_run, tmp_path):
    """Every run summary records its alpha (the level has no other source): a summary without
    it is refused, naming the key."""
    from hte.runs import RunFolderError

    assert load_run_folder(small_run).level == "90%"
    run = _copy_run(small_run, tmp_path)
    _edit_metrics(run, lambda m: m["experiment"].pop("alpha"))
    with pytest.raises(RunFolderError, match=r"experiment\.alpha"):
        load_run_folder(run)
