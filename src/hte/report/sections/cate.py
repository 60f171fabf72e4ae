"""The Individual effects (CATE) section: per-patient effect distributions per estimator and
target, with their intervals."""

from __future__ import annotations

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.format import (
    DASH,
    effect,
    is_number,
    num,
    pct,
    short_unit,
    target_name,
    target_scale,
)
from hte.report.loader import RunFolder
from hte.report.sections.common import analyses_of, effects_of, fits_of, horizon_of, section
from hte.runs import EFFECT, LOWER, effects_column, fit_key, shows_average_only


def cate_section(run: RunFolder) -> dict:
    analyses = analyses_of(run)
    blocks: list[dict] = []
    truth_on = bool(run.metrics.get("truth_metrics"))
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        headers = [
            "estimator",
            "target",
            "mean",
            "SD",
            "10th / 50th / 90th pct",
            "interval excludes 0",
        ]
        if truth_on:
            headers += ["true mean", "NMSE", "corr. with truth", "coverage"]
        rows = []
        for est, target, s in fits_of(a):
            name = f"{target_name(target, s.get('horizon'))} ({short_unit(target)})"
            if "error" in s:
                rows.append(b.failed_row(headers, [est, name], "failed: " + str(s["error"])))
                continue
            q = s.get("quantiles") or {}
            row = [
                est,
                name,
                effect(s.get("mean_effect"), target),
                num(target_scale(target) * s["sd_effect"], 1 if target_scale(target) == 100 else 2)
                if is_number(s.get("sd_effect"))
                else DASH,
                " / ".join(effect(q.get(k), target) for k in ("q10", "q50", "q90")),
                pct(s.get("share_excluding_zero"), 0)
                if s.get("share_with_interval")
                else "no intervals",
            ]
            if truth_on:
                t = s.get("truth") or {}
                row += [
                    effect(t.get("ate_true"), target),
                    num(t.get("normalized_mse")),
                    num(t.get("correlation")),
                    pct(t.get("coverage"), 0),
                ]
            rows.append(row)
        if not rows:
            blocks.append(b.missing(f"per-patient effects of the {label} analysis"))
            continue
        reading = (
            "How much the estimated effect varies between patients. 'Interval excludes 0' "
            f"is the share of patients whose own {run.level} interval excludes no effect."
        )
        if truth_on:
            reading += (
                " Against the known truth: NMSE is the error relative to the true spread "
                "(below 1 beats predicting the average for everyone), coverage is the share "
                f"of true effects inside the intervals ({run.level} is the aim)."
            )
        blocks.append(b.table(headers, rows, reading=reading, numeric_from=2))
        unsupported = _average_only_targets(a)
        if unsupported:
            blocks.append(
                b.caution(
                    f"For {', '.join(unsupported)}, no learner's held-out predictions ranked "
                    "patients by benefit beyond chance, so the run shows the average effect (see "
                    "'The model shown'). The spread of these targets' estimates below is the "
                    "estimators', not a finding about patients."
                )
            )
        blocks.append(
            b.figure(
                _cate_figure(run, label, a),
                f"per-patient effects, {label}",
                "Left: distribution of per-patient effects by estimator. Right: "
                f"one estimator's patients ranked, with {run.level} intervals.",
            )
        )
    if not analyses:
        blocks.append(b.missing("per-patient effects"))
    return section(
        "cate",
        "Individual effects (CATE)",
        "Distributions of the per-patient (conditional average) treatment effects per "
        "estimator and target, with their intervals.",
        blocks,
    )


def _average_only_targets(analysis: dict) -> list[str]:
    """Targets whose held-out model choice was the constant (average) effect, named."""
    choices = analysis.get("model_choice") or {}
    return [target_name(t) for t, c in choices.items() if shows_average_only(c)]


def _cate_figure(run: RunFolder, label: str, analysis: dict) -> str | None:
    effects = effects_of(run, label)
    if effects is None or effects.empty:
        return None
    panels = []
    for target in dict.fromkeys(t for _, t, _ in fits_of(analysis)):
        ests = [
            e
            for e, t, _ in fits_of(analysis)
            if t == target and effects_column(fit_key(e, target), EFFECT) in effects.columns
        ]
        if not ests:
            continue
        lower = {e: effects_column(fit_key(e, target), LOWER) for e in ests}
        with_int = [
            e for e in ests if lower[e] in effects.columns and effects[lower[e]].notna().any()
        ]
        panels.append(
            {
                "target": target,
                "horizon": horizon_of(run, target),
                "estimators": ests,
                "interval_estimator": with_int[0] if with_int else None,
            }
        )
    return fig.cate_figure(effects, panels, run.level)
