"""The day-zero rule: follow-up of 0 (death or censoring on the day of the treatment decision).

Registries record deaths on the day of the decision, and grf's Poisson designs produce time 0;
survival estimators need follow-up > 0 (a Kaplan-Meier or Cox risk set starts just after 0).
hte's rule, applied in one place (the pipeline's cohort stage, ``hte.pipeline.stages``), is:

    a follow-up of exactly 0 is counted as ``offset`` (default half a day, ``DAY_ZERO_DAYS``),
    keeping its event indicator; every other time is unchanged.

Half a day is below the resolution of any registry that records dates, so order and ties with
day-1 events are kept; the effect on an RMST is at most ``offset`` x the share of day-0 rows. The
number of rows moved (deaths and censorings) is recorded in metrics.json (``data_rules``) and the
report. Negative follow-up is never moved: the schema refuses it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from hte.data.columns import DAYS_PER_MONTH, DEATH, OS_MONTHS

DAY_ZERO_DAYS = 0.5


@dataclass(frozen=True)
class DayZero:
    """What the rule did: the offset (days and months) and how many rows it moved."""

    offset_days: float
    offset_months: float
    n_rows: int
    n_deaths: int
    n_censored: int

    def as_dict(self) -> dict:
        return asdict(self) | {"rule": self.rule()}

    def rule(self) -> str:
        return (
            f"follow-up of 0 counted as {self.offset_days:g} day(s) "
            f"({self.n_rows} row(s): {self.n_deaths} death(s), {self.n_censored} censored)"
        )


def move_zero_times(time: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Times with every exact 0 replaced by ``offset`` (same unit as ``time``), and the mask of
    the rows moved. ``offset`` must be > 0 and below the smallest positive time (so order is
    kept, checked only when there is a 0 to move); negative or missing times are left for the
    caller's checks."""
    t = np.asarray(time, dtype=float)
    if not (np.isfinite(offset) and offset > 0):
        raise ValueError(f"the day-zero offset must be a finite number > 0; got {offset!r}")
    moved = t == 0
    positive = t[t > 0]
    if moved.any() and positive.size and offset >= positive.min():
        raise ValueError(
            f"the day-zero offset ({offset:g}) must be below the shortest positive follow-up "
            f"({positive.min():g}), so that the order of times is kept"
        )
    return np.where(moved, offset, t), moved


def apply_day_zero(
    cohort: pd.DataFrame, offset_days: float = DAY_ZERO_DAYS
) -> tuple[pd.DataFrame, DayZero]:
    """The cohort with os_months of 0 set to ``offset_days`` (in months), and what was moved.

    A cohort without os_months comes back unchanged (``n_rows`` 0).
    """
    offset_months = float(offset_days) / DAYS_PER_MONTH
    if OS_MONTHS not in cohort.columns:
        return cohort, DayZero(float(offset_days), offset_months, 0, 0, 0)
    time, moved = move_zero_times(cohort[OS_MONTHS].to_numpy(dtype=float), offset_months)
    deaths = (
        cohort[DEATH].to_numpy(dtype=bool)
        if DEATH in cohort.columns
        else np.zeros(len(cohort), bool)
    )
    n_deaths = int((moved & deaths).sum())
    out = cohort if not moved.any() else cohort.assign(**{OS_MONTHS: time})
    return out, DayZero(
        float(offset_days), offset_months, int(moved.sum()), n_deaths, int(moved.sum()) - n_deaths
    )
