"""The console summary of a run (rich tables)."""

from __future__ import annotations

from hte.runs import interval_level

# --------------------------------------------------------------------------------------------------
# Console summary


def _num(x, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _ci(lo, hi, digits: int = 3) -> str:
    return "" if lo is None or hi is None else f"[{lo:.{digits}f}, {hi:.{digits}f}]"


def _target_label(target: str, horizon) -> str:
    """ "surv12", "rmst24", "crs", "crs_g3": short enough for an 80-column terminal."""
    short = {"survival": "surv"}.get(target, target)
    return f"{short}{horizon:g}" if horizon else short


def _table(title: str):
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)


def _matched_rows(table, matched: dict) -> None:
    """The propensity-matched comparison: its HR and Kaplan-Meier differences (truth is for the
    whole cohort, not the matched one, so it is not repeated here)."""
    hr = matched["hazard_ratio"]
    label = f"Matched Cox ({matched['n_pairs']} pairs)"
    table.add_row(label, "HR", _num(hr["hr"], 2), _ci(hr["lower"], hr["upper"], 2), "", "", "")
    for key, b in matched.items():
        if key.startswith("ate_") and "error" not in b:
            table.add_row(
                "Matched KM",
                _target_label(b["target"], b.get("horizon")),
                _num(b["estimate"]),
                _ci(b["lower"], b["upper"]),
                "",
                "",
                "",
            )


def render_summary(metrics: dict):
    """Rich tables for the console: per analysis, estimator x target averages (with the interval
    of the average where available and the truth when known), the IPTW baselines, and the
    time-zero comparison when the run has one."""
    from rich.console import Group
    from rich.markup import escape

    parts = []
    for label, a in metrics["analyses"].items():
        excluded = sum(a["n_excluded_by_reason"].values())
        title = f"{label} time zero: {a['n_analysed']} patients" + (
            f" ({excluded} excluded)" if excluded else ""
        )
        table = _table(title)
        table.add_column("estimator", overflow="fold")
        table.add_column("target", no_wrap=True)
        level = interval_level(metrics["experiment"]["alpha"])
        for col in ("mean", f"{level} CI of mean", "truth", "nMSE", "cover"):
            table.add_column(col, justify="right", no_wrap=True)
        for name, by_target in a["estimators"].items():
            for target, s in by_target.items():
                tgt = _target_label(target, s.get("horizon"))
                if "error" in s:
                    table.add_row(name, tgt, "[red]failed[/red]", "see metrics.json", "", "", "")
                    continue
                avg = s.get("average") or {}
                truth = s.get("truth", {})
                table.add_row(
                    name,
                    tgt,
                    _num(s["mean_effect"]),
                    _ci(avg.get("lower"), avg.get("upper")),
                    _num(truth.get("ate_true")),
                    _num(truth.get("normalized_mse"), 2),
                    _num(truth.get("coverage"), 2),
                )
        # whole-cohort decision-time truth: comparable to the baselines only when nobody is excluded
        truth = metrics.get("decision_truth", {}) if not excluded else {}
        for key, b in a["baselines"].items():
            if key == "hazard_ratio_iptw":
                table.add_row(
                    "IPTW Cox",
                    "HR",
                    _num(b["hr"], 2),
                    _ci(b["lower"], b["upper"], 2),
                    _num(truth.get("hazard_ratio"), 2),
                    "",
                    "",
                )
            elif key == "matched":
                _matched_rows(table, b)
            else:
                method = "IPTW KM" if "iptw_km" in key else "AIPW"
                table.add_row(
                    method,
                    _target_label(b["target"], b.get("horizon")),
                    _num(b["estimate"]),
                    _ci(b["lower"], b["upper"]),
                    _num(truth.get(f"ate_{b['target']}")),
                    "",
                    "",
                )
        parts.append(table)
    comparison = metrics.get("time_zero_comparison")
    if comparison:
        table = _table("Time zero vs the decision-time truth (whole cohort)")
        for col in ("analysis", "n", "HR IPTW", "true HR", "surv ATE", "true", "RMST ATE", "true"):
            table.add_column(col, justify="left" if col == "analysis" else "right", no_wrap=True)
        for row in comparison:
            table.add_row(
                row["analysis"],
                str(row["n_analysed"]),
                _num(row.get("hazard_ratio_iptw"), 2),
                _num(row.get("hazard_ratio_true"), 2),
                _num(row.get("ate_survival_iptw_km")),
                _num(row.get("ate_survival_true")),
                _num(row.get("ate_rmst_iptw_km"), 2),
                _num(row.get("ate_rmst_true"), 2),
            )
        parts.append(table)
    if metrics.get("failures"):
        parts.append(f"[red]{len(metrics['failures'])} fit(s) failed[/red]: see metrics.json")
    rules = metrics.get("data_rules") or {}
    if (rules.get("day_zero") or {}).get("n_rows"):
        parts.append(f"data rule: {escape(rules['day_zero']['rule'])}")
    if rules.get("truth_columns_ignored"):
        parts.append(f"data rule: {escape(rules['truth_columns_ignored'])}")
    return Group(*parts)
