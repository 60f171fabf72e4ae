"""Score one estimator's fit against a simulated cohort's true effects, and summarize such scores.

``score_fit`` builds, fits and scores one estimator for one target against the cohort's ``true_*``
column (normalized MSE, interval coverage, ATE bias, share of intervals excluding zero) with the
fit time; a failure is recorded, not raised. ``summarize`` averages rows over seeds and
``summary_markdown`` renders them. Every ``hte sweep`` cell uses them (hte.sweep), and so do the
benchmark scripts in the project's ``benchmarks/`` folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from hte.data.columns import CRS, CRS_GRADE, DEATH, OS_MONTHS, TRUE_CATE_COLUMNS
from hte.errors import STAGE_FAILURES
from hte.evaluation.truth_metrics import truth_metrics

# (target, horizon in months) -> the simulated cohort's true CATE column (hte.data.columns).
TRUTH_COLUMNS = TRUE_CATE_COLUMNS

SUMMARY_METRICS = (
    "normalized_mse",
    "mse",
    "correlation",
    "coverage",
    "mean_width",
    "ate_bias",
    "share_excluding_zero",
    "fit_seconds",
)


def truth_column(target: str, horizon: float | None) -> str:
    """The true_* column holding the true effect for a target at a horizon (months)."""
    key = (target, None if horizon is None else float(horizon))
    if key not in TRUTH_COLUMNS:
        known = ", ".join(t if h is None else f"{t} at {h:g} months" for t, h in TRUTH_COLUMNS)
        at = "" if horizon is None else f" at {horizon:g} months"
        raise ValueError(f"the simulated cohort has no true effect for {target}{at} (has: {known})")
    return TRUTH_COLUMNS[key]


def fit_estimator(estimator, outcome: str, target: str, X: pd.DataFrame, cohort: pd.DataFrame, w):
    """Fit an OS estimator on (os_months, death) or a CRS estimator on crs (and crs_grade)."""
    if outcome == "os":
        return estimator.fit(
            X,
            time=cohort[OS_MONTHS].to_numpy(float),
            event=cohort[DEATH].to_numpy(bool),
            treatment=w,
        )
    grade = cohort[CRS_GRADE].to_numpy(float) if target == "crs_g3" else None
    return estimator.fit(X, crs=cohort[CRS].to_numpy(int), treatment=w, crs_grade=grade)


def score_fit(
    make: Callable[[], object],
    outcome: str,
    target: str,
    horizon: float | None,
    X: pd.DataFrame,
    cohort: pd.DataFrame,
    w: np.ndarray,
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Build, fit and score one estimator for one target against the cohort's true effect.

    Returns ``fit_seconds`` plus the truth metrics (``n_analysed`` = patients scored), or
    ``fit_seconds`` plus ``error`` ("Type: message") when the fit fails as data can make it fail
    (``hte.errors.STAGE_FAILURES``): recorded, not raised, so one estimator that cannot be fitted
    never stops a benchmark. A bug (TypeError, AttributeError, ...) propagates.
    """
    started = time.perf_counter()
    row: dict[str, Any] = {}
    try:
        truth = cohort[truth_column(target, horizon)].to_numpy(float)
        fitted = fit_estimator(make(), outcome, target, X, cohort, w)
        row["fit_seconds"] = time.perf_counter() - started
        metrics = truth_metrics(fitted.estimate(X, alpha=alpha), truth)
        for key in ("estimator", "target", "horizon"):
            metrics.pop(key, None)
        metrics["n_analysed"] = metrics.pop("n")
        row.update(metrics)
    except STAGE_FAILURES as exc:  # recorded, not hidden: the table shows the error
        row["fit_seconds"] = time.perf_counter() - started
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def summarize(results: pd.DataFrame, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean over seeds of each metric per group (default: scenario, size, time zero, estimator,
    target, horizon: those present); ``runs`` counts scored rows, ``failed`` rows with an error."""
    if by is None:
        candidates = ("scenario", "size", "time_zero", "estimator", "target", "horizon")
        by = [c for c in candidates if c in results.columns]
    by = list(by)
    metrics = [c for c in SUMMARY_METRICS if c in results.columns]
    failed = (
        results["error"].notna() if "error" in results.columns else pd.Series(False, results.index)
    )
    frame = results.assign(_ok=~failed, _failed=failed)
    grouped = frame.groupby(by, sort=False, dropna=False)
    summary = grouped[metrics].mean(numeric_only=True) if metrics else grouped.size().to_frame()[[]]
    summary["runs"] = grouped["_ok"].sum().astype(int)
    summary["failed"] = grouped["_failed"].sum().astype(int)
    return summary.reset_index()


def markdown_table(frame: pd.DataFrame) -> str:
    """A plain markdown table; floats to 3 decimals, NaN as an empty cell."""

    def cell(value) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.3f}"
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def summary_markdown(summary: pd.DataFrame, command: str, title: str, level: str) -> str:
    """The summary as a markdown page: title, the exact command, what the columns mean, table;
    ``level`` labels the intervals (``hte.runs.interval_level`` of the sweep's alpha)."""
    lines = [
        f"# {title}",
        "",
        f"Measured with `{command}` (mean over seeds).",
        "normalized_mse = MSE(CATE) / Var(true CATE) (NaN on null_effect, where Var = 0: see mse);",
        f"coverage = share of patients whose {level} interval holds the true CATE (NaN: no "
        "intervals);",
        "share_excluding_zero = share of intervals that exclude 0 (on null_effect, false positives);",
        "runs = seeds scored; failed = seeds whose fit failed (see the error column of results.csv).",
        "",
        markdown_table(summary),
        "",
    ]
    return "\n".join(lines)
