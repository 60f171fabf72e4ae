"""A one-screen summary of a cohort (n per arm, events, follow-up, missingness), and the problem list
of a cohort that failed validation, as rich tables for the command line."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text

from hte.data.columns import (
    CART,
    CRS,
    CRS_GRADE,
    DEATH,
    INFUSION_DAY,
    OS_MONTHS,
    TEC,
    TREATMENT,
    TRUTH_PREFIX,
    covariate_columns,
)
from hte.data.problems import Problem, describe_rows

ARMS = (CART, TEC)
FOLLOWUP_METHOD = "reverse Kaplan-Meier"
MAX_MISSING_SHOWN = 12
MAX_NAMES_SHOWN = 25


@dataclass(frozen=True)
class CohortSummary:
    """What a cohort holds. Per-arm dicts are keyed "cart" and "tec"; outcome fields are None
    when the outcome is absent. ``missing`` maps every column to (count, share) of missing values."""

    n: int
    n_per_arm: dict[str, int]
    outcomes: list[str]
    covariates: list[str]
    missing: dict[str, tuple[int, float]]
    deaths_per_arm: dict[str, int] | None = None
    median_followup_months: float | None = None
    median_followup_per_arm: dict[str, float | None] | None = None
    followup_method: str = FOLLOWUP_METHOD
    crs_per_arm: dict[str, int] | None = None
    crs_grade3_per_arm: dict[str, int] | None = None
    n_truth_columns: int = 0


def reverse_km_median(time: np.ndarray, event: np.ndarray) -> float | None:
    """Median follow-up by reverse Kaplan-Meier: censoring is the "event", deaths are censored.

    Unlike the median of all follow-up times, it is not shortened by early deaths. Returns None
    when the censoring-survival curve never falls to 0.5 (too few censored patients).
    At tied times the usual Kaplan-Meier convention holds with roles swapped: a death at t still
    counts in the risk set of a censoring at t.
    """
    time = np.asarray(time, dtype=float)
    censored = ~np.asarray(event, dtype=bool)
    if time.size == 0:
        return None
    order = np.argsort(time, kind="stable")
    time, censored = time[order], censored[order]
    uniq, first = np.unique(time, return_index=True)
    at_risk = time.size - first
    n_censored = np.add.reduceat(censored.astype(float), first)
    curve = np.cumprod(1.0 - n_censored / at_risk)
    below = np.flatnonzero(curve <= 0.5)
    return float(uniq[below[0]]) if below.size else None


def _per_arm(df: pd.DataFrame, values: pd.Series) -> dict[str, int]:
    return {arm: int(values[df[TREATMENT] == arm].sum()) for arm in ARMS}


def summarize_cohort(df: pd.DataFrame) -> CohortSummary:
    """Summarize a validated cohort (the output of ``validate_cohort`` / ``load_cohort``)."""
    arm = df[TREATMENT]
    has_os = OS_MONTHS in df.columns and DEATH in df.columns
    has_crs = CRS in df.columns
    outcomes = (["os"] if has_os else []) + (["crs"] if has_crs else [])
    kwargs: dict = {}
    if has_os:
        time, death = df[OS_MONTHS].to_numpy(dtype=float), df[DEATH].to_numpy(dtype=bool)
        kwargs["deaths_per_arm"] = _per_arm(df, df[DEATH].astype(bool))
        kwargs["median_followup_months"] = reverse_km_median(time, death)
        kwargs["median_followup_per_arm"] = {
            a: reverse_km_median(time[arm == a], death[arm == a]) for a in ARMS
        }
    if has_crs:
        kwargs["crs_per_arm"] = _per_arm(df, df[CRS].astype(bool))
        if CRS_GRADE in df.columns:
            kwargs["crs_grade3_per_arm"] = _per_arm(df, df[CRS_GRADE].fillna(0) >= 3)
    counts = df.isna().sum()
    n = len(df)
    missing = {str(c): (int(counts[c]), float(counts[c]) / n if n else 0.0) for c in df.columns}
    return CohortSummary(
        n=n,
        n_per_arm={a: int((arm == a).sum()) for a in ARMS},
        outcomes=outcomes,
        covariates=covariate_columns(list(df.columns)),
        missing=missing,
        n_truth_columns=sum(str(c).startswith(TRUTH_PREFIX) for c in df.columns),
        **kwargs,
    )


def _pct(k: int, n: int) -> str:
    return f"{k} ({100.0 * k / n:.0f}%)" if n else str(k)


def _months(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.1f} mo"


def render_summary(summary: CohortSummary) -> Group:
    """The cohort summary as two compact tables: per arm, and missingness by column."""
    s = summary
    arms = Table(title=f"cohort: {s.n} patients", title_justify="left")
    arms.add_column("")
    for a in (*ARMS, "all"):
        arms.add_column(a, justify="right")
    arms.add_row("patients", *(str(s.n_per_arm[a]) for a in ARMS), str(s.n))
    if s.deaths_per_arm is not None:
        arms.add_row(
            "deaths",
            *(_pct(s.deaths_per_arm[a], s.n_per_arm[a]) for a in ARMS),
            _pct(sum(s.deaths_per_arm.values()), s.n),
        )
        per_arm = s.median_followup_per_arm or {}
        arms.add_row(
            f"median follow-up ({s.followup_method})",
            *(_months(per_arm.get(a)) for a in ARMS),
            _months(s.median_followup_months),
        )
    if s.crs_per_arm is not None:
        arms.add_row(
            "CRS (any grade)",
            *(_pct(s.crs_per_arm[a], s.n_per_arm[a]) for a in ARMS),
            _pct(sum(s.crs_per_arm.values()), s.n),
        )
    if s.crs_grade3_per_arm is not None:
        arms.add_row(
            "CRS grade >= 3",
            *(_pct(s.crs_grade3_per_arm[a], s.n_per_arm[a]) for a in ARMS),
            _pct(sum(s.crs_grade3_per_arm.values()), s.n),
        )
    lines = [
        arms,
        Text(f"outcomes: {', '.join(s.outcomes)}"),
        Text(f"covariates ({len(s.covariates)}): {_names(s.covariates)}"),
    ]
    if s.n_truth_columns:
        lines.append(Text(f"{s.n_truth_columns} simulated truth columns (true_*), never used"))
    lines.append(_missing_table(s))
    if s.missing.get(INFUSION_DAY, (0, 0.0))[0]:
        lines.append(
            Text("infusion_day is missing on tec rows by definition; on cart rows = never infused")
        )
    return Group(*lines)


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES_SHOWN])
    return shown + (
        f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else ""
    )


def _missing_table(s: CohortSummary) -> Table | Text:
    gaps = [(c, k, share) for c, (k, share) in s.missing.items() if k > 0]
    if not gaps:
        return Text("missing values: none")
    gaps.sort(key=lambda g: -g[1])
    table = Table(title="missing values", title_justify="left")
    table.add_column("column")
    table.add_column("missing", justify="right")
    table.add_column("share", justify="right")
    for column, k, share in gaps[:MAX_MISSING_SHOWN]:
        table.add_row(column, str(k), f"{100.0 * share:.1f}%")
    if len(gaps) > MAX_MISSING_SHOWN:
        table.caption = f"and {len(gaps) - MAX_MISSING_SHOWN} more columns with missing values"
    return table


def render_problems(problems: list[Problem], source: str) -> Table:
    """Every problem found in a cohort file: column, rule, example rows, how many rows."""
    table = Table(
        title=f"{len(problems)} problem(s) in {source}",
        title_justify="left",
        caption="rows are data rows, 1 = first row after the header",
    )
    table.add_column("column", no_wrap=True)
    table.add_column("rule", overflow="fold")
    table.add_column("rows", overflow="fold")
    for p in problems:
        rows = describe_rows(p.rows, p.n_rows) if p.n_rows else "(whole table)"
        table.add_row(p.column, f"{p.rule}; {p.hint}" if p.hint else p.rule, rows)
    return table
