"""The refutation-hazard benchmark's table: bias, RMSE, coverage and CPU from per-seed rows."""

from benchmarks.refutation_hazard import LEARNERS, report


def test_the_table_summarises_the_rows():
    hgb, lgbm = LEARNERS
    rows = [
        {"seed": 1, "truth": 0.10, hgb: (0.12, 0.01, 3.0), lgbm: (0.11, 0.01, 1.0)},
        {"seed": 2, "truth": 0.10, hgb: (0.10, 0.01, 4.0), lgbm: (0.13, 0.01, 2.0)},
    ]
    text = report(rows, 2000, (1.0, 1.5))
    # HGB: errors 0.02 and 0 (one outside 1.96 SE); LightGBM: 0.01 and 0.03 (one inside)
    assert f"| {hgb} | +0.0100 | 0.0141 | 0.0100 | 1 of 2 | 3.50 |" in text
    assert f"| {lgbm} | +0.0200 | 0.0224 | 0.0100 | 1 of 2 | 1.50 |" in text
    assert "seeds 1-2" in text and "load average 1.00 -> 1.50" in text
