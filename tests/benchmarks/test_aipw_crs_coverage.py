"""The AIPW CRS coverage benchmark (benchmarks.aipw_crs_coverage): its seed ranges and one small
cohort's rows."""

from __future__ import annotations

import numpy as np

from benchmarks.aipw_crs_coverage import cohort_rows, seed_range


def test_seed_ranges():
    assert seed_range("3") == [3]
    assert seed_range("1-4") == [1, 2, 3, 4]


def test_a_cohort_gives_both_outcomes_with_the_truth_inside_the_scale():
    rows = cohort_rows(seed=5, n=400)
    assert [r["outcome"] for r in rows] == ["crs", "crs_g3"]
    for r in rows:
        assert r["lower"] < r["estimate"] < r["upper"]
        assert -1 < r["truth"] < 1 and np.isfinite(r["z"])
        assert r["covered"] == (r["lower"] <= r["truth"] <= r["upper"])
