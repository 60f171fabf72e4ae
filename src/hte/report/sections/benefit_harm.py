"""The Benefit against harm section: per-patient OS benefit against CRS harm."""

from __future__ import annotations

import numpy as np

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.format import (
    DASH,
    pct,
    short_unit,
    target_name,
    target_scale,
)
from hte.report.loader import RunFolder
from hte.report.sections.common import analyses_of, effects_of, fits_of, horizon_of, section
from hte.runs import EFFECT, LOWER, TREATMENT_COLUMN, effects_column, fit_key
from hte.vocabulary import CRS, CRS_TARGETS, OS, OS_TARGETS, preference


def _col(estimator: str, target: str, part: str) -> str:
    """A fit's column in effects.parquet (hte.runs.layout)."""
    return effects_column(fit_key(estimator, target), part)


def _pick(
    analysis: dict, targets: tuple[str, ...], kinds: tuple[str, ...], effects
) -> tuple | None:
    """The (estimator, target) to plot: preferred kinds first, then any fit with effects."""
    fits = [
        (e, t, s)
        for e, t, s in fits_of(analysis)
        if t in targets and "error" not in s and _col(e, t, EFFECT) in effects.columns
    ]
    for target in targets:
        for kind in kinds:
            for e, t, s in fits:
                if t == target and s.get("kind") == kind:
                    return e, t
    return (fits[0][0], fits[0][1]) if fits else None


def benefit_harm_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    panels, counts = [], {}
    for label, a in analyses_of(run).items():
        effects = effects_of(run, label)
        if effects is None or effects.empty:
            continue
        os_pick = _pick(a, OS_TARGETS, preference(OS), effects)
        crs_pick = _pick(a, CRS_TARGETS[:1], preference(CRS), effects) or _pick(
            a, CRS_TARGETS, preference(CRS), effects
        )
        if os_pick is None or crs_pick is None:
            continue
        (oe, ot), (ce, ct) = os_pick, crs_pick
        x = target_scale(ot) * effects[_col(oe, ot, EFFECT)].to_numpy(dtype=float)
        y = target_scale(ct) * effects[_col(ce, ct, EFFECT)].to_numpy(dtype=float)
        arm = (
            effects[TREATMENT_COLUMN].to_numpy()
            if TREATMENT_COLUMN in effects.columns
            else np.full(len(x), "")
        )
        panels.append(
            {
                "label": label,
                "x": x,
                "y": y,
                "arm": arm,
                "x_label": f"OS benefit: {target_name(ot, horizon_of(run, ot))} ({short_unit(ot)}), {oe}",
                "y_label": f"CRS harm: {target_name(ct)} ({short_unit(ct)}), {ce}",
            }
        )
        n = len(x)
        quad = [
            ("OS gain, more CRS with CAR-T (a trade-off)", (x > 0) & (y > 0)),
            ("OS gain, no more CRS", (x > 0) & (y <= 0)),
            ("no OS gain, more CRS", (x <= 0) & (y > 0)),
            ("no OS gain, no more CRS", (x <= 0) & (y <= 0)),
        ]
        sure = _both_intervals(effects, oe, ot, ce, ct)
        sure_name = "OS gain interval above 0 and CRS interval above 0"
        for name, mask in [*quad, (sure_name, sure)]:
            cell = (
                DASH
                if mask is None
                else f"{int(mask.sum())} ({pct(mask.mean() if n else None, 0)})"
            )
            counts.setdefault(name, {})[label] = cell
    if not panels:
        blocks.append(
            b.missing(
                "benefit-harm scatter",
                "needs per-patient effects of an OS and a CRS estimator in effects.parquet",
            )
        )
    else:
        blocks.append(
            b.figure(
                fig.benefit_harm_figure(panels),
                "OS benefit against CRS harm",
                "Each dot is a patient's estimated effects under CAR-T versus "
                "teclistamab (whichever they actually received).",
            )
        )
        labels = [p["label"] for p in panels]
        rows = [[name, *[by.get(lb, DASH) for lb in labels]] for name, by in counts.items()]
        blocks.append(
            b.table(
                ["patients whose estimates show", *labels],
                rows,
                reading=(
                    "Most patients sit in the trade-off quadrant when CAR-T both extends survival and "
                    "causes more CRS; how much CRS is worth how much survival is a clinical judgement the "
                    "numbers do not make. Patients (share); point estimates only, except the last row."
                ),
            )
        )
    return section(
        "benefit-harm",
        "Benefit against harm",
        "Per-patient overall-survival benefit against CRS harm, read together.",
        blocks,
    )


def _both_intervals(effects, oe, ot, ce, ct) -> np.ndarray | None:
    cols = [_col(oe, ot, LOWER), _col(ce, ct, LOWER)]
    if not all(c in effects.columns for c in cols) or effects[cols].isna().all().any():
        return None
    return (effects[cols[0]].to_numpy() > 0) & (effects[cols[1]].to_numpy() > 0)
