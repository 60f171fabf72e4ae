"""The calibration check: packaged targets, every target met at a test-sized cohort, the report."""

from __future__ import annotations

import pytest
from rich.console import Console

from hte.evaluation.cohort_calibration import load_targets, render_calibration, run_calibration


@pytest.fixture(scope="module")
def report():
    # n = 5000: every target's synthetic value sits near the middle of its range at n = 20,000;
    # at 5000 the sampling SD of a share is <= 0.01 and of the HR difference ~0.03, well inside
    return run_calibration(n=5000, seed=2)


def test_packaged_targets_are_complete_and_consistent():
    targets = load_targets()
    assert {"population", "access", "overall_survival", "crs"} <= set(targets)
    for group, entries in targets.items():
        if group == "effect_modifiers":
            continue
        for name, spec in entries.items():
            low, high = spec["range"]
            assert low <= spec["value"] <= high, name
            assert spec["stat"] and spec["source"], name
    assert targets["overall_survival"]["hr_cart_vs_tec"]["value"] == 0.61


def test_every_target_passes_at_test_size(report):
    failed = [(r.name, r.synthetic, (r.low, r.high)) for r in report.rows if not r.passed]
    assert not failed
    assert report.all_pass
    assert len(report.rows) == 26


def test_immortal_time_bias_is_reported(report):
    it = report.immortal_time
    assert it.difference == pytest.approx(it.hr_infusion - it.hr_decision)
    assert it.difference < 0
    assert 0.4 < it.hr_truth < 0.8
    lo, hi = report.propensity_range
    assert 0 < lo < hi < 1


def test_render_has_the_table_and_the_bias_sentence(report):
    console = Console(width=200, record=True)
    console.print(render_calibration(report))
    text = console.export_text()
    assert "naive infusion-time analysis overstates the CAR-T advantage by" in text
    assert "hr_cart_vs_tec" in text and "26/26 targets" in text
