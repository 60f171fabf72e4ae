"""The day-zero rule: follow-up of exactly 0 counted as a small offset, nothing else touched,
every moved row counted."""

from __future__ import annotations

import numpy as np
import pytest

from hte.data.columns import DAYS_PER_MONTH
from hte.data.cui2023 import DAY_ZERO_OFFSET, generate_cui2023
from hte.data.day_zero import DAY_ZERO_DAYS, apply_day_zero, move_zero_times
from hte.data.schema import validate_cohort


def test_zero_follow_up_is_valid_and_moved_to_half_a_day(cohort):
    df = cohort.copy()
    df.loc[[3, 8], "os_months"] = 0.0
    df.loc[3, "death"], df.loc[8, "death"] = True, False
    df.loc[[3, 8], "infusion_day"] = np.nan  # nobody infused after the end of follow-up
    valid = validate_cohort(df)  # the schema accepts 0; the rule moves it before any fit
    out, moved = apply_day_zero(valid)
    assert moved.n_rows == 2 and moved.n_deaths == 1 and moved.n_censored == 1
    assert out.loc[3, "os_months"] == pytest.approx(DAY_ZERO_DAYS / DAYS_PER_MONTH)
    others = np.setdiff1d(np.arange(len(df)), [3, 8])
    np.testing.assert_array_equal(out["os_months"].to_numpy()[others], valid["os_months"][others])
    assert out["death"].tolist() == valid["death"].tolist()
    assert "2 row(s): 1 death(s), 1 censored" in moved.rule()


def test_no_zero_leaves_the_cohort_untouched(cohort):
    out, moved = apply_day_zero(cohort, offset_days=1.0)
    assert out is cohort and moved.n_rows == 0 and moved.offset_days == 1.0


@pytest.mark.parametrize("offset", [0.0, -1.0, np.nan, np.inf])
def test_offset_must_be_positive_and_finite(offset):
    with pytest.raises(ValueError, match="offset must be a finite number > 0"):
        move_zero_times(np.array([0.0, 1.0]), offset)


def test_offset_must_keep_the_order_of_times():
    with pytest.raises(ValueError, match="below the shortest positive follow-up"):
        move_zero_times(np.array([0.0, 0.01, 3.0]), 0.02)
    t, moved = move_zero_times(np.array([0.0, 0.01, 0.0]), 0.005)
    assert moved.tolist() == [True, False, True] and t.tolist() == [0.005, 0.01, 0.005]


def test_cui_poisson_design_has_zeros_and_the_rule_moves_only_them():
    raw = generate_cui2023(2000, 5, "type4", seed=3)
    zeros = raw.time == 0
    assert zeros.sum() > 100  # grf's type 4: T, C ~ Poisson with means near 1-3
    ruled = raw.with_day_zero()
    assert ruled.n_zero_moved == zeros.sum()
    np.testing.assert_array_equal(ruled.time[zeros], DAY_ZERO_OFFSET)
    np.testing.assert_array_equal(ruled.time[~zeros], raw.time[~zeros])
