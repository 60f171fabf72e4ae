"""The patient what-if view: the display of one profile's effects (cards, curves, plain-language
summary, icon array, waterfalls, what moves it); the form is ``hte.app.whatif_form``. Every number
comes from ``hte.pipeline.profile.ProfileExplorer``."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from hte import vocabulary
from hte.app import svg
from hte.app.icons import icon_array
from hte.app.svg import ARM_COLOURS
from hte.app.whatif_form import check_form
from hte.errors import HteError
from hte.runs import AnalysisSummary, interval_level

MOVE_TARGETS = [
    ("Survival difference at the horizon", "survival"),
    ("Months of life gained", "rmst"),
    ("CRS risk difference", "crs"),
]


class InvalidProfile(HteError, ValueError):
    """A profile the explorer refuses; the message names the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"invalid profile: field '{field}': {message}")


def _profile_error():
    from hte.pipeline.profile import ProfileError

    return ProfileError


def _checked(call, *args):
    """Call the explorer; its ``ProfileError(field, message)`` becomes ``InvalidProfile``."""
    error = _profile_error()
    try:
        return call(*args)
    except error as exc:
        field = getattr(exc, "field", None) or "profile"
        message = getattr(exc, "message", None) or str(exc)
        raise InvalidProfile(str(field), str(message)) from None


# --------------------------------------------------------------------------------------------------
# Words

GLOSSARY = {
    "percentage points": "The difference between two percentages: 60% against 50% is 10 "
    "percentage points.",
    "interval": "The range of effects compatible with the data at the level shown (one minus "
    "the run's evaluation.alpha), if the model is right. Below it: how often such intervals held the true effect when the run "
    "checked them against known effects.",
    "prognosis model": "A simpler model of each treatment's outcome for patients like this; "
    "its numbers are moved to agree with the effect shown above them.",
    "support": "Whether the cohort had patients like this under each treatment; without them "
    "the numbers are extrapolated.",
    "months of life gained": "Of the next 24 months, how many more months a patient like this "
    "would live on average with CAR-T than with teclistamab (the restricted mean survival "
    "time difference).",
}


def term(word: str, shown: str | None = None) -> str:
    """A glossary term: dotted underline, its definition on hover (and to screen readers)."""
    return (
        f'<abbr class="hte-term" title="{escape(GLOSSARY[word])}" tabindex="0">'
        f"{escape(shown or word)}</abbr>"
    )


ARM_WORDS = {"cart": "CAR-T", "tec": "teclistamab"}


# --------------------------------------------------------------------------------------------------
# One profile's display


def _est(e: Mapping | None) -> tuple:
    if not e:
        return None, None, None
    return e.get("value"), e.get("lower"), e.get("upper")


def _card(key: str, value: str, detail: str = "", cls: str = "") -> str:
    """A card; ``detail`` is HTML (already escaped)."""
    return (
        f'<div class="hte-card"><div class="hte-k">{escape(key)}</div>'
        f'<div class="hte-v {cls}">{escape(value)}</div>'
        f'<div class="hte-i">{detail}</div></div>'
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _points(x: float) -> str:
    return f"{100 * x:+.1f}"


def _coverage_words(coverage: Mapping | None) -> str:
    if not coverage:
        return ""
    if coverage.get("kind") == "average":
        return "<br>This is an interval for the cohort's average effect, not for one patient's."
    if coverage.get("coverage") is None:
        return "<br>Its coverage cannot be measured on real data (no known true effects)."
    return (
        f"<br>In this run's check against known effects, such intervals held the true "
        f"effect for {100 * coverage['coverage']:.0f}% of patients."
    )


def _interval(lo, hi, pct: bool, coverage: Mapping | None, level: str) -> str:
    if lo is None or hi is None:
        return "no interval for this number"
    if pct:
        text = f"{term('interval', f'{level} interval')} {_points(lo)} to {_points(hi)} points"
    else:
        text = f"{term('interval', f'{level} interval')} {lo:+.1f} to {hi:+.1f} months"
    return text + _coverage_words(coverage)


def effect_cards(effects: Mapping, coverage: Mapping | None = None) -> str:
    """The headline numbers, in plain words: the differences with their intervals (and how
    often such intervals covered), each treatment's numbers, how they fit together."""
    coverage = coverage or {}
    level = interval_level(effects.get("alpha"))
    cards = []
    h = effects.get("survival_horizon")
    v, lo, hi = _est(effects.get("survival_difference"))
    if v is not None:
        cards.append(
            _card(
                f"Alive at {h:g} months: CAR-T minus teclistamab",
                f"{_points(v)} percentage points",
                _interval(lo, hi, True, coverage.get("survival"), level),
            )
        )
    for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
        v, lo, hi = _est(effects.get(f"survival_{arm}"))
        if v is not None:
            cards.append(
                _card(
                    f"Alive at {h:g} months with {ARM_WORDS[arm]}",
                    _pct(v),
                    f"band {_pct(lo)} to {_pct(hi)}",
                    cls,
                )
            )
    v, lo, hi = _est(effects.get("rmst_difference"))
    if v is not None:
        hr = effects.get("rmst_horizon")
        cards.append(
            _card(
                f"Months of life gained over {hr:g} months with CAR-T",
                f"{v:+.1f} months",
                _interval(lo, hi, False, coverage.get("rmst"), level),
            )
        )
    v, lo, hi = _est(effects.get("crs_difference"))
    if v is not None:
        cards.append(
            _card(
                "CRS risk: CAR-T minus teclistamab",
                f"{_points(v)} percentage points",
                _interval(lo, hi, True, coverage.get("crs"), level),
            )
        )
    for prefix, words in (("crs", "CRS risk"), ("crs_g3", "Severe (grade 3+) CRS risk")):
        for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
            v, lo, hi = _est(effects.get(f"{prefix}_{arm}"))
            if v is not None:
                cards.append(
                    _card(
                        f"{words} with {ARM_WORDS[arm]}",
                        _pct(v),
                        f"band {_pct(lo)} to {_pct(hi)}",
                        cls,
                    )
                )
    unsupported = any(
        not d.get("supported", True) for d in (effects.get("joint_support") or {}).values()
    )
    banner = (
        '<div class="hte-extrapolated">Extrapolated: the cohort had no patients like this '
        "under both treatments (see the red box).</div>"
        if unsupported
        else ""
    )
    return (
        f'{banner}<div class="hte-cards">{"".join(cards)}</div>'
        f"{fit_together(effects)}{_like_this(effects, level)}"
    )


def fit_together(effects: Mapping) -> str:
    """How the cards agree: differences from the model the run chose, each treatment's numbers
    from a prognosis model moved to agree, and how far it was moved."""
    own = (effects.get("coherence") or {}).get("prognosis_model") or {}
    bits = []
    s = own.get("survival")
    if s and effects.get("survival_cart"):
        bits.append(
            f"alive at {effects['survival_horizon']:g} months {_pct(s['cart'])} with "
            f"CAR-T and {_pct(s['tec'])} with teclistamab (shown: "
            f"{_pct(effects['survival_cart']['value'])} and "
            f"{_pct(effects['survival_tec']['value'])})"
        )
    c = own.get("crs")
    if c and effects.get("crs_cart"):
        bits.append(
            f"CRS {_pct(c['cart'])} and {_pct(c['tec'])} (shown: "
            f"{_pct(effects['crs_cart']['value'])} and "
            f"{_pct(effects['crs_tec']['value'])})"
        )
    if not bits:
        return ""
    constant = [
        k
        for k, e in effects.items()
        if k.endswith("_difference")
        and isinstance(e, Mapping)
        and e.get("source") == "average effect (DR)"
    ]
    source = (
        "the cohort's average effect (this cohort does not support individual differences "
        "for "
        + ", ".join(CONSTANT_NAMES.get(k.removesuffix("_difference"), k) for k in constant)
        + ")"
        if constant
        else "the model this run chose by held-out accuracy"
    )
    return (
        '<div class="hte-i hte-fit" style="margin-top:6px">How these numbers fit together: each '
        f"difference comes from {escape(source)}; each treatment's numbers come from a "
        f"{term('prognosis model')} moved as little as possible to agree with it, so they add "
        f"up. On its own the prognosis model gave {escape('; '.join(bits))}.</div>"
    )


CONSTANT_NAMES = {
    "survival": "survival",
    "rmst": "months of life",
    "crs": "CRS",
    "crs_g3": "severe CRS",
}
LIKE_THIS_WORDS = {
    "survival": ("survival", True),
    "rmst": ("months of life gained", False),
    "crs": ("CRS", True),
    "crs_g3": ("severe CRS", True),
}


def _like_this(effects: Mapping, level: str) -> str:
    """One line per target: the DR estimate of the held-out predicted-benefit group of the
    profile (the interval that covers: a group mean, not this patient's effect)."""
    groups = effects.get("patients_like_this") or {}
    items = []
    for target, g in groups.items():
        name, pct = LIKE_THIS_WORDS.get(target, (target, True))
        value = f"{_points(g['estimate'])} points" if pct else f"{g['estimate']:+.1f} months"
        ci = (
            f"{level} interval {_points(g['lower'])} to {_points(g['upper'])} points"
            if pct
            else f"{level} interval {g['lower']:+.1f} to {g['upper']:+.1f} months"
        )
        where = (
            "all patients"
            if g["n_groups"] == 1
            else f"group {g['group']} of {g['n_groups']}, n = {g['n']}"
        )
        items.append(f"<li>{escape(name)}: {escape(value)} ({escape(ci)}; {escape(where)})</li>")
    if not items:
        return ""
    return (
        '<div class="hte-i" style="margin-top:6px">Patients like this (the observed effect '
        "in the group of patients with similar predicted benefit; its interval is for the "
        f"group's mean effect):<ul>{''.join(items)}</ul></div>"
    )


def warning_html(effects: Mapping) -> str:
    """A red box listing out-of-support flags; a quiet line when the profile is supported."""
    warnings = list(effects.get("warnings") or [])
    if not warnings:
        return (
            '<div class="hte-ok">Inside the cohort\'s ' + term("support") + ": values within "
            "the observed ranges, and similar patients received each treatment.</div>"
        )
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return (
        '<div class="hte-warning" role="alert"><strong>Outside the cohort\'s support: read '
        f"these numbers as extrapolation.</strong><ul>{items}</ul></div>"
    )


def form_error_html(errors: Mapping[str, str]) -> str:
    items = "".join(f"<li>{escape(m)}</li>" for m in errors.values())
    return (
        '<div class="hte-warning" role="alert"><strong>Results cleared: '
        f"{len(errors)} field{'s' if len(errors) > 1 else ''} to fix.</strong>"
        f"<ul>{items}</ul></div>"
    )


def summary_html(effects: Mapping) -> str:
    defaults = effects.get("defaults_used") or []
    extra = (
        f" Fields not given took the cohort's typical value: {', '.join(defaults)}."
        if defaults and len(defaults) < 6
        else ""
    )
    unknown = [k for k, v in (effects.get("profile") or {}).items() if v is None]
    if unknown:
        extra += f" Unknown: {', '.join(unknown)} (treated as the model treats missing values)."
    return (
        f'<div class="hte-summary">{escape(str(effects.get("summary", "")))}{escape(extra)}</div>'
    )


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
            f": at {h:g} months {_pct(c['value'])} alive with CAR-T (band {_pct(c['lower'])}"
            f" to {_pct(c['upper'])}) and {_pct(t['value'])} with teclistamab (band "
            f"{_pct(t['lower'])} to {_pct(t['upper'])})"
        )
    level = interval_level(effects.get("alpha"))
    return svg.survival_curves(curves["times"], curves, h, alt + ".", level)


def waterfall_html(explorer, profile: Mapping, target: str, max_display: int = 7) -> str:
    if target not in explorer.targets():
        return svg.message(f"No {TARGET_PLAIN.get(target, target)} effect in this run.")
    wf = _checked(explorer.waterfall, profile, target)
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
    frame = _checked(explorer.what_moves_it, profile, field, target)
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


def effects_json(explorer, profile: Mapping) -> dict:
    """The explorer's answer for a checked profile, as JSON (``InvalidProfile`` names a field)."""
    return _checked(explorer.effects, profile).to_json()


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


def api_effects(explorer, profile: Any, effects_of=effects_json) -> dict:
    """The ``profile_effects`` answer: the explorer's effects JSON without the curves' long
    arrays trimmed (they are part of the answer), or ``InvalidProfile`` naming the field."""
    if isinstance(profile, str):
        import json

        try:
            profile = json.loads(profile)
        except ValueError:
            raise InvalidProfile("profile", "must be a JSON object (covariate -> value)") from None
    return effects_of(explorer, profile)
