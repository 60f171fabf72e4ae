"""The patient what-if view: the display of one profile's effects (cards, curves, plain-language
summary, icon array, waterfalls, what moves it); the form is ``hte.app.whatif_form``. Every number
comes from ``hte.pipeline.profile.ProfileExplorer``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from hte import vocabulary
from hte.app import svg
from hte.app.answers import InvalidProfile, checked_call, effects_json
from hte.app.icons import icon_array
from hte.app.svg import ARM_COLOURS
from hte.app.whatif_cards import (
    ARM_WORDS,
    effect_cards,
    form_error_html,
    pct,
    summary_html,
    warning_html,
)
from hte.app.whatif_form import check_form
from hte.runs import AnalysisSummary, interval_level

MOVE_TARGETS = [
    ("Survival difference at the horizon", "survival"),
    ("Months of life gained", "rmst"),
    ("CRS risk difference", "crs"),
]


# --------------------------------------------------------------------------------------------------
# Figures


def icons_html(effects: Mapping) -> str:
    """Two 100-person arrays (CAR-T, teclistamab): alive at the horizon, and CRS."""
    counts = effects.get("icon_counts") or {}
    surv = counts.get("survival")
    crs = counts.get("crs")
    blocks = []
    for arm in ("cart", "tec"):
        groups = []
        if surv:
            groups.append(
                (
                    f"alive at {surv['horizon_months']:g} months",
                    surv[arm]["alive"],
                    ARM_COLOURS[arm],
                )
            )
            groups.append(("died", surv[arm]["dead"], "#d1d5db"))
        if not groups:
            continue
        caption = f"{ARM_WORDS[arm]}: out of 100 patients like this"
        if surv:
            caption += f", {surv[arm]['alive']} alive at {surv['horizon_months']:g} months"
        if crs:
            caption += f"; {crs[arm]['crs']} would have CRS"
        blocks.append(
            f'<div><div class="hte-k" style="font-weight:600;margin-bottom:6px;color:'
            f'{ARM_COLOURS[arm]}">{ARM_WORDS[arm]}</div>{icon_array(groups, caption)}</div>'
        )
    if not blocks:
        return ""
    return '<div style="display:flex;flex-wrap:wrap;gap:28px">' + "".join(blocks) + "</div>"


def curves_html(effects: Mapping) -> str:
    curves = effects.get("curves")
    if not curves:
        return svg.message("No survival curves in this run (no overall-survival outcome).")
    h = effects.get("survival_horizon")
    alt = "Predicted survival curves for this profile under CAR-T (solid) and teclistamab (dashed)"
    if effects.get("survival_cart") and h is not None:
        c, t = effects["survival_cart"], effects["survival_tec"]
        alt += (
            f": at {h:g} months {pct(c['value'])} alive with CAR-T (band {pct(c['lower'])}"
            f" to {pct(c['upper'])}) and {pct(t['value'])} with teclistamab (band "
            f"{pct(t['lower'])} to {pct(t['upper'])})"
        )
    level = interval_level(effects.get("alpha"))
    return svg.survival_curves(curves["times"], curves, h, alt + ".", level)


def waterfall_html(explorer, profile: Mapping, target: str, max_display: int = 7) -> str:
    if target not in explorer.targets():
        return svg.message(f"No {TARGET_PLAIN.get(target, target)} effect in this run.")
    wf = checked_call(explorer.waterfall, profile, target)
    scale, unit = vocabulary.target(target).scale, vocabulary.target(target).short_unit
    what = TARGET_PLAIN.get(target, target)
    if not wf["contributions"]:
        return svg.message(
            f"Why this {what}: the run shows the cohort's average effect for every patient "
            f"({scale * wf['total']:+.1f} {unit}; this cohort does not support individual "
            "differences), so no covariate moves it."
        )
    contributions = wf["contributions"]
    rows = [(c["text"], scale * c["contribution"]) for c in contributions[:max_display]]
    rest = sum(c["contribution"] for c in contributions[max_display:])
    if len(contributions) > max_display:
        rows.append((f"{len(contributions) - max_display} other fields", scale * rest))
    rows.append(("not captured by the explanation", scale * wf["approximation"]))
    base, total = scale * wf["base_value"], scale * wf["total"]
    title = f"Why this {what} differs from the cohort average"
    alt = (
        f"Waterfall chart. {title}: cohort average {base:+.1f} {unit}; "
        + "; ".join(
            f"{label} {'raises' if v >= 0 else 'lowers'} it by {abs(v):.1f}" for label, v in rows
        )
        + f"; this profile {total:+.1f} {unit}."
    )
    return svg.waterfall(rows, base, total, unit, title, alt)


TARGET_PLAIN = {
    "survival": "survival difference",
    "rmst": "gain in months of life",
    "crs": "CRS risk difference",
    "crs_g3": "severe CRS risk difference",
}


def moves_html(explorer, profile: Mapping, field: str | None, target: str | None) -> str:
    fields = explorer.fields()
    target = target or "survival"
    if target not in explorer.targets():
        return svg.message(f"No {TARGET_PLAIN.get(target, target)} effect in this run.")
    if not field:
        return svg.message("Choose a covariate to vary.")
    frame = checked_call(explorer.what_moves_it, profile, field, target)
    f = next(x for x in fields if x.name == field)
    scale, unit = vocabulary.target(target).scale, vocabulary.target(target).short_unit
    words = dict((v, k) for k, v in MOVE_TARGETS).get(target, target)
    x = frame[field].tolist()
    categorical = f.kind in ("boolean", "category")
    if f.kind == "boolean":
        x = ["yes" if v else "no" for v in x]
    current = profile.get(field, f.default)
    if f.kind == "boolean":
        current = "yes" if current in (True, "yes") else "no"
    label = f.label + (f" ({f.unit})" if f.unit else "")
    effect = scale * frame["effect"].to_numpy(float)
    alt = (
        f"{words} ({unit}) as {label} varies from {x[0]} to {x[-1]}, other fields held: "
        f"from {effect[0]:+.1f} to {effect[-1]:+.1f}."
    )
    if not np.isfinite(frame[["lower", "upper"]].to_numpy(float)).all():
        alt += f" {frame['estimator'].iloc[0]} gives no interval, so none is drawn."
    return svg.what_moves_it(
        x,
        effect,
        scale * frame["lower"].to_numpy(float),
        scale * frame["upper"].to_numpy(float),
        current,
        label,
        f"{words} ({unit})",
        categorical,
        alt,
    )


HEADLINE = ("warning", "cards", "summary")  # the answer
FIGURES = ("curves", "icons", "waterfall_os", "waterfall_crs", "moves")  # drawn from its effects
OUTPUTS = (
    "warning",
    "cards",
    "curves",
    "summary",
    "icons",
    "waterfall_os",
    "waterfall_crs",
    "moves",
)


def headline_outputs(
    explorer, values: Mapping, coverage: Mapping | None = None, effects_of=effects_json
) -> tuple[dict[str, str], dict | None, tuple]:
    """(refused fields -> reason, the profile's effects JSON or None, (warning, cards, summary)).
    A refused field clears the answer (the warning box lists what to fix). ``effects_of(explorer,
    profile)`` gives the effects (a cache may stand in for ``effects_json``)."""
    profile, errors = check_form(explorer.fields(), values)
    effects = None
    if not errors:
        try:
            effects = effects_of(explorer, profile)
        except InvalidProfile as exc:
            errors = {exc.field: str(exc).removeprefix("invalid profile: ")}
    if errors:
        return errors, None, (form_error_html(errors), "", "")
    return (
        {},
        effects,
        (warning_html(effects), effect_cards(effects, coverage), summary_html(effects)),
    )


def figure_outputs(
    explorer, values: Mapping, move_field, move_target, effects_of=effects_json
) -> tuple:
    """(curves, icons, OS waterfall, CRS waterfall, what-moves-it) of the form's profile; all
    empty when a field is refused (the headline says why): nothing stale stays on screen."""
    profile, errors = check_form(explorer.fields(), values)
    if errors:
        return ("",) * len(FIGURES)
    try:
        effects = effects_of(explorer, profile)
    except InvalidProfile:
        return ("",) * len(FIGURES)
    os_target = "survival" if "survival" in explorer.targets() else "rmst"
    return (
        curves_html(effects),
        icons_html(effects),
        waterfall_html(explorer, profile, os_target),
        waterfall_html(explorer, profile, "crs"),
        moves_html(explorer, profile, move_field, move_target),
    )


def whatif_outputs(
    explorer,
    values: Mapping,
    move_field,
    move_target,
    coverage: Mapping | None = None,
    effects_of=effects_json,
) -> tuple[dict[str, str], tuple]:
    """(refused fields -> reason, the eight outputs in ``OUTPUTS`` order): the headline and the
    figures of one form state."""
    errors, _, head = headline_outputs(explorer, values, coverage, effects_of)
    figures = figure_outputs(explorer, values, move_field, move_target, effects_of)
    named = dict(zip(HEADLINE, head, strict=True)) | dict(zip(FIGURES, figures, strict=True))
    return errors, tuple(named[k] for k in OUTPUTS)


def moves_output(explorer, values: Mapping, move_field, move_target) -> str:
    profile, errors = check_form(explorer.fields(), values)
    if errors:
        return ""
    return moves_html(explorer, profile, move_field, move_target)


def interval_coverage(analysis: AnalysisSummary | None, effects_sources: Mapping[str, str]) -> dict:
    """Per target, how often the shown model's intervals held the true effect in the run's own
    check (synthetic cohorts), or that it is an average-effect interval, or not measurable."""
    out = {}
    estimators = analysis.estimators if analysis is not None else {}
    for target, source in effects_sources.items():
        if source == "average effect (DR)":
            out[target] = {"kind": "average"}
            continue
        fit = (estimators.get(source) or {}).get(target)
        truth = (fit.truth if fit is not None else None) or {}
        out[target] = {"kind": "patient", "coverage": truth.get("coverage")}
    return out
