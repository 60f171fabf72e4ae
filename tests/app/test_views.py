"""The cohort, subgroup and diagnostics views on a run folder that carries the optional sections
(subgroups, policy trees, TOC, robustness) in the shapes hte.pipeline writes, and on one without
them ("not in this run folder")."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from hte.app import cohort as views
from hte.app.run_view import RunView
from hte.app.tables import NOT_IN_RUN

WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)


def _interval(x):
    return {"estimate": x, "lower": x - 0.05, "upper": x + 0.05}


def _subgroups() -> dict:
    """A subgroups section in the shape documented by hte.pipeline.subgroups.subgroup_evidence."""
    leaves = [
        {
            "rule": "extramedullary = yes",
            "n": 60,
            "share": 0.15,
            "mean_cate": 0.2,
            **_interval(0.21),
        },
        {
            "rule": "extramedullary = no",
            "n": 340,
            "share": 0.85,
            "mean_cate": 0.08,
            **_interval(0.07),
        },
    ]
    trees = [
        {
            "crs_weight": w,
            "share_cart": 1.0 - w / 2,
            "leaves": [
                {
                    "rule": "ferritin <= 500",
                    "n": 300,
                    "action": "cart",
                    "net_benefit": 0.1 - w * 0.1,
                    "lower": 0.0,
                    "upper": 0.2,
                }
            ],
            "value": {
                "policy": _interval(0.1 - w / 10),
                "all_cart": _interval(0.08),
                "all_tec": _interval(0.0),
            },
        }
        for w in WEIGHTS
    ]
    pre = [
        {
            "subgroup": name,
            "target": target,
            "n": 100,
            "n_cart": 50,
            "n_tec": 50,
            **_interval(x),
            "note": "",
        }
        for name, x in (("age >= 70", 0.05), ("extramedullary", 0.2), ("ECOG >= 2", 0.1))
        for target in ("survival", "crs")
    ]
    return {
        "rules": {
            "survival": {
                "estimator": "causal_survival_forest",
                "max_depth": 2,
                "fidelity_r2": 0.8,
                "leaves": leaves,
            }
        },
        "policy": {"os_target": "survival", "crs_target": "crs", "units": "", "trees": trees},
        "prespecified": pre,
    }


@pytest.fixture(scope="module")
def full_view(small_run, tmp_path_factory) -> RunView:
    """A copy of the small run's files with the optional sections added to metrics.json."""
    folder = tmp_path_factory.mktemp("full") / "default" / "20260101T000000Z-abcdef12"
    folder.mkdir(parents=True)
    for name in ("config.resolved.yaml", "effects.parquet", "complete.json"):
        shutil.copy(small_run / name, folder / name)
    metrics = json.loads((small_run / "metrics.json").read_text())
    analysis = metrics["analyses"]["decision"]
    analysis["subgroups"] = _subgroups()
    analysis["robustness"] = {
        "refutations": [
            {
                "target": "survival",
                "refuter": "placebo treatment",
                "original": 0.1,
                "estimate": 0.001,
                "lower": -0.02,
                "upper": 0.02,
                "expected": "0",
                "passed": True,
                "description": "treatment permuted",
            }
        ],
        "evalues": [
            {
                "target": "survival",
                "measure": "RR",
                "estimate": 1.8,
                "lower": 1.2,
                "upper": 2.5,
                "evalue": 3.0,
                "evalue_ci": 1.7,
                "note": "",
            }
        ],
    }
    q = np.linspace(0.1, 1.0, 10)
    toc = {
        "q": q.tolist(),
        "toc": (0.1 * (1 - q)).tolist(),
        "lower": (0.05 * (1 - q)).tolist(),
        "upper": (0.15 * (1 - q)).tolist(),
    }
    analysis["estimators"]["causal_survival_forest"]["survival"].setdefault("heterogeneity", {})[
        "toc"
    ] = toc
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return RunView.open(folder)


def test_policy_tree_follows_the_crs_weight_slider(full_view):
    for slider, expected in ((0.0, 0.0), (0.3, 0.25), (0.4, 0.5), (0.9, 1.0)):
        text, leaves = views.policy_for_weight(full_view.subgroups(), slider, full_view.level)
        assert f"CRS weight {expected:g}" in text
        assert f"CAR-T for {1 - expected / 2:.0%}" in text
        assert list(leaves["rule"]) == ["ferritin <= 500"]


def test_rules_prespecified_toc_and_robustness_are_shown(full_view):
    tab = views.cohort_tab(full_view, 0.25)
    assert list(tab.rules["rule"]) == ["extramedullary = yes", "extramedullary = no"]
    assert set(tab.rules["target"]) == {"survival"}
    ticks = [t.get_text() for t in tab.prespecified_plot.axes[0].get_yticklabels()]
    assert sorted(ticks) == sorted(["age >= 70", "extramedullary", "ECOG >= 2"])  # OS target only
    assert len(tab.prespecified) == 6
    toc_axes = tab.toc.axes[0]
    assert toc_axes.lines and "TOC" in toc_axes.get_title(loc="left")
    refutations, evalues = views.robustness_tables(full_view)
    assert refutations.iloc[0]["refuter"] == "placebo treatment"
    assert refutations.iloc[0]["refuted estimate (95% CI)"] == "0.001 (-0.02 to 0.02)"
    assert evalues.iloc[0]["E-value"] == "3" and evalues.iloc[0]["E-value of the CI bound"] == "1.7"


def test_absent_sections_say_not_in_this_run_folder(small_run):
    view = RunView.open(small_run)
    tab = views.cohort_tab(view, 0.25)
    analysis = view.analysis()
    if analysis.subgroups is None:
        assert NOT_IN_RUN in tab.policy_text
        assert tab.rules.iloc[0, 0] == NOT_IN_RUN
    if analysis.robustness is None:
        assert all(t.iloc[0, 0] == NOT_IN_RUN for t in views.robustness_tables(view))
    # the effects plots come from effects.parquet, always present
    assert len(tab.distributions.axes) == 2


def test_real_run_sections_render(small_run):
    """The small run's own subgroups/robustness sections (as this pipeline writes them) render as
    tables, not as "not in this run folder"."""
    view = RunView.open(small_run)
    tab = views.cohort_tab(view, 0.5)
    if view.subgroups() is not None and view.subgroups().get("rules"):
        assert "rule" in tab.rules.columns
    if view.subgroups() is not None and (view.subgroups().get("policy") or {}).get("trees"):
        assert "Policy tree at CRS weight" in tab.policy_text
    if view.robustness() is not None:
        refutations, evalues = views.robustness_tables(view)
        assert "refuter" in refutations.columns and "E-value" in evalues.columns
