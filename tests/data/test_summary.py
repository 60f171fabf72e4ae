"""Cohort summary: counts per arm, reverse Kaplan-Meier follow-up on hand-computed cases, missingness."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from hte.data.schema import Problem, validate_cohort
from hte.data.summary import render_problems, render_summary, reverse_km_median, summarize_cohort


def test_reverse_km_all_censored_is_the_plain_median():
    # censoring curve after k of 5 censorings is (5 - k) / 5: first <= 0.5 at the 3rd time
    assert reverse_km_median(np.array([5.0, 1.0, 4.0, 2.0, 3.0]), np.zeros(5, bool)) == 3.0


def test_reverse_km_is_not_shortened_by_early_deaths():
    # deaths at 1, 2, 3 leave the risk set; censoring at 4 has 2 at risk -> curve 1/2 at t = 4,
    # whereas the plain median of follow-up would be 3
    time = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    death = np.array([True, True, True, False, False])
    assert reverse_km_median(time, death) == 4.0


def test_reverse_km_ties_keep_deaths_at_risk():
    # at t = 2 three are at risk (the death included), one censored: curve 2/3; at t = 3: 0
    time, death = np.array([2.0, 2.0, 3.0]), np.array([True, False, False])
    assert reverse_km_median(time, death) == 3.0


def test_reverse_km_not_reached():
    time, death = np.array([1.0, 2.0, 3.0]), np.array([False, True, True])
    # one censoring of three at risk: curve 2/3, never <= 1/2
    assert reverse_km_median(time, death) is None


def test_summary_counts(cohort):
    cohort.loc[[0, 3], "ferritin"] = np.nan
    summary = summarize_cohort(validate_cohort(cohort))
    cart = cohort["treatment"] == "cart"
    assert summary.n == 50 and summary.n_per_arm == {"cart": 25, "tec": 25}
    assert summary.deaths_per_arm == {
        "cart": int(cohort.loc[cart, "death"].sum()),
        "tec": int(cohort.loc[~cart, "death"].sum()),
    }
    assert summary.crs_per_arm["cart"] == int(cohort.loc[cart, "crs"].sum())
    assert summary.crs_grade3_per_arm["tec"] == int((cohort.loc[~cart, "crs_grade"] >= 3).sum())
    assert summary.outcomes == ["os", "crs"]
    assert "age" in summary.covariates and "true_cate_os_12" not in summary.covariates
    assert summary.missing["ferritin"] == (2, pytest.approx(0.04))
    assert summary.n_truth_columns == 2
    assert summary.median_followup_months == reverse_km_median(
        cohort["os_months"].to_numpy(), cohort["death"].to_numpy()
    )


def test_summary_of_crs_only_cohort(cohort):
    crs_only = validate_cohort(cohort.drop(columns=["os_months", "death", "infusion_day"]))
    summary = summarize_cohort(crs_only)
    assert summary.outcomes == ["crs"] and summary.deaths_per_arm is None
    text = _render(render_summary(summary))
    assert "CRS (any grade)" in text and "deaths" not in text


def test_rendered_summary_fits_one_screen(cohort):
    cohort[[f"lab_{i}" for i in range(30)]] = np.nan  # many columns with missing values
    cohort.loc[0, [f"lab_{i}" for i in range(30)]] = 1.0  # (a column missing for all is refused)
    text = _render(render_summary(summarize_cohort(validate_cohort(cohort))))
    assert len(text.splitlines()) <= 45
    # 31 columns with gaps (30 labs + infusion_day, missing off CAR-T), 12 shown
    assert "reverse Kaplan-Meier" in text and "and 19 more columns" in text
    assert "covariates (49)" in text and "and 24 more" in text


def test_rendered_problems_name_column_rule_and_rows():
    problems = [
        Problem("os_months", "os_months must be > 0", [2, 5], 2),
        Problem("treatment", "only one arm (50 cart, 0 tec): an effect needs both arms", [], 0),
    ]
    text = _render(render_problems(problems, source="x.csv"))
    assert "2 problem(s) in x.csv" in text
    assert "os_months must be > 0" in text and "rows 2, 5" in text
    assert "(whole table)" in text


def _render(renderable) -> str:
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()
