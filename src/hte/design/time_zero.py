"""Analysis time zero: the treatment decision (correct), the CAR-T infusion (naive) or a landmark.

A target-trial emulation starts every patient's clock at the treatment decision (apheresis for
CAR-T, first step-up dose for teclistamab): that is the ``decision`` mode and leaves the cohort as it
is. The ``infusion`` mode is the naive analysis many registries allow, kept to show its bias: CAR-T
patients who were never infused (died or dropped out while their cells were manufactured) vanish,
and the CAR-T clock starts weeks late, so the CAR-T arm is credited with "immortal" waiting time.
The ``landmark`` mode conditions both arms on being alive and followed at L days and restarts the
clock there: unbiased for "among patients alive at L", at the price of a different population.

Nobody is dropped silently: every excluded row is counted under a named reason. ``true_*`` columns
pass through unchanged (they remain the decision-time truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from hte.data.columns import CART, DAYS_PER_MONTH, DEATH, INFUSION_DAY, OS_MONTHS, TREATMENT

TimeZeroMode = Literal["decision", "infusion", "landmark"]

REASON_NEVER_INFUSED = "CAR-T never infused"
REASON_NO_TIME_AFTER_INFUSION = "no follow-up after infusion (time <= 0 from infusion)"
REASON_DIED_BEFORE_LANDMARK = "died before the landmark"
REASON_CENSORED_BEFORE_LANDMARK = "censored before the landmark"


@dataclass(frozen=True)
class TimeZeroResult:
    """The analysed rows (``os_months`` re-based on the new clock) and what was excluded, why."""

    cohort: pd.DataFrame
    mode: str
    n_excluded_by_reason: dict[str, int] = field(default_factory=dict)
    description: str = ""

    @property
    def n_excluded(self) -> int:
        return int(sum(self.n_excluded_by_reason.values()))


def apply_time_zero(
    cohort: pd.DataFrame,
    mode: TimeZeroMode,
    landmark_days: float | None = None,
) -> TimeZeroResult:
    """Re-base a decision-time cohort on another analysis time zero (see the module docstring)."""
    _check_columns(cohort, [TREATMENT, OS_MONTHS])
    if mode == "decision":
        if landmark_days is not None:
            raise ValueError("landmark_days is only used with mode='landmark'")
        return TimeZeroResult(
            cohort=cohort.copy(),
            mode=mode,
            n_excluded_by_reason={},
            description="time zero at the treatment decision (intention to treat); no rows excluded",
        )
    if mode == "infusion":
        if landmark_days is not None:
            raise ValueError("landmark_days is only used with mode='landmark'")
        return _infusion(cohort)
    if mode == "landmark":
        return _landmark(cohort, landmark_days)
    raise ValueError(f"mode must be 'decision', 'infusion' or 'landmark'; got {mode!r}")


def _check_columns(cohort: pd.DataFrame, needed: list[str]) -> None:
    missing = [c for c in needed if c not in cohort.columns]
    if missing:
        raise ValueError(f"time-zero transform needs column(s) {missing}; they are missing")


def _infusion(cohort: pd.DataFrame) -> TimeZeroResult:
    _check_columns(cohort, [INFUSION_DAY])
    on_cart = (cohort[TREATMENT] == CART).to_numpy()
    inf_day = cohort[INFUSION_DAY].to_numpy(dtype=float)
    bad = on_cart & (inf_day < 0)
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise ValueError(f"column {INFUSION_DAY!r} must be >= 0 days; negative in rows {rows}")
    never = on_cart & np.isnan(inf_day)
    new_time = cohort[OS_MONTHS].to_numpy(dtype=float).copy()
    shift = np.where(on_cart & ~never, inf_day / DAYS_PER_MONTH, 0.0)
    new_time = new_time - shift
    no_time = on_cart & ~never & (new_time <= 0)
    keep = ~never & ~no_time
    out = cohort.loc[keep].copy()
    out[OS_MONTHS] = new_time[keep]
    counts = {
        REASON_NEVER_INFUSED: int(never.sum()),
        REASON_NO_TIME_AFTER_INFUSION: int(no_time.sum()),
    }
    return TimeZeroResult(
        cohort=out,
        mode="infusion",
        n_excluded_by_reason=counts,
        description=(
            "naive: CAR-T clock starts at infusion and never-infused CAR-T patients are dropped "
            f"({counts[REASON_NEVER_INFUSED]} never infused, "
            f"{counts[REASON_NO_TIME_AFTER_INFUSION]} with no time after infusion); "
            "biased in favour of CAR-T (immortal time)"
        ),
    )


def _landmark(cohort: pd.DataFrame, landmark_days: float | None) -> TimeZeroResult:
    if landmark_days is None or not np.isfinite(landmark_days) or landmark_days <= 0:
        raise ValueError(f"landmark mode needs landmark_days > 0; got {landmark_days!r}")
    _check_columns(cohort, [DEATH])
    lm = float(landmark_days) / DAYS_PER_MONTH
    time = cohort[OS_MONTHS].to_numpy(dtype=float)
    died = cohort[DEATH].to_numpy(dtype=bool)
    at_risk = time > lm
    out = cohort.loc[at_risk].copy()
    out[OS_MONTHS] = time[at_risk] - lm
    counts = {
        REASON_DIED_BEFORE_LANDMARK: int((~at_risk & died).sum()),
        REASON_CENSORED_BEFORE_LANDMARK: int((~at_risk & ~died).sum()),
    }
    n_out = sum(counts.values())
    return TimeZeroResult(
        cohort=out,
        mode="landmark",
        n_excluded_by_reason=counts,
        description=(
            f"landmark at {landmark_days:g} days: both arms restricted to patients alive and followed "
            f"then, clock restarted at the landmark ({n_out} excluded)"
        ),
    )
