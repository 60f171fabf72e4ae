"""The patient what-if view: the form built from the explorer's fields, and the display of one
profile's effects (cards, curves, plain-language summary, icon array, waterfalls, what moves it).
Every number comes from ``hte.pipeline.profile.ProfileExplorer``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

import gradio as gr

from hte.app import plots
from hte.app.icons import icon_array
from hte.app.plots import ARM_COLOURS

MOVE_TARGETS = [
    ("OS: survival difference at the horizon", "survival"),
    ("OS: RMST difference", "rmst"),
    ("CRS risk difference", "crs"),
]


class InvalidProfile(ValueError):
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
# The form


def field_component(field) -> gr.components.Component:
    """A dropdown for categories and booleans, a slider over the observed range for numbers."""
    label = field.label + (f" ({field.unit})" if getattr(field, "unit", None) else "")
    elem_id = f"field-{field.name}"
    if field.kind == "boolean":
        return gr.Radio(["no", "yes"], value=_bool_word(field.default), label=label, interactive=True,
                        elem_id=elem_id)  # fmt: skip
    if field.kind == "category":
        return gr.Dropdown(
            list(field.choices), value=field.default, label=label, elem_id=elem_id, interactive=True
        )
    step = field.step or (1 if field.kind == "integer" else None)
    lo, hi = field.minimum, field.maximum
    if lo is None or hi is None or not lo < hi:  # a constant covariate: a number box
        return gr.Number(value=field.default, label=label, elem_id=elem_id, interactive=True)
    return gr.Slider(
        lo, hi, value=field.default, step=step, label=label, elem_id=elem_id, interactive=True
    )


def _bool_word(value: Any) -> str:
    return "yes" if bool(value) and str(value).lower() not in ("false", "no", "0") else "no"


def default_move_field(fields: Sequence) -> str | None:
    names = [f.name for f in fields]
    for preferred in ("ferritin", "age", "crp"):
        if preferred in names:
            return preferred
    return names[0] if names else None


def form_values(fields: Sequence, profile: Mapping[str, Any]) -> list:
    """The form's values for a profile, in field order."""
    out = []
    for f in fields:
        v = profile.get(f.name, f.default)
        out.append(_bool_word(v) if f.kind == "boolean" else v)
    return out


def profile_from_form(fields: Sequence, values: Mapping[str, Any]) -> dict:
    """The form's values as a profile (booleans as True/False, integers as int)."""
    kinds = {f.name: f.kind for f in fields}
    out: dict[str, Any] = {}
    for name, v in values.items():
        kind = kinds.get(name)
        if kind == "boolean" and isinstance(v, str):
            v = v == "yes"
        elif kind == "integer" and v is not None:
            v = round(float(v))
        out[name] = v
    return out


# --------------------------------------------------------------------------------------------------
# One profile's display


def _est(e: Mapping | None) -> tuple:
    if not e:
        return None, None, None
    return e.get("value"), e.get("lower"), e.get("upper")


def _card(key: str, value: str, detail: str = "", cls: str = "") -> str:
    return (
        f'<div class="hte-card"><div class="hte-k">{escape(key)}</div>'
        f'<div class="hte-v {cls}">{escape(value)}</div>'
        f'<div class="hte-i">{escape(detail)}</div></div>'
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _ci(lo: float | None, hi: float | None, pct: bool) -> str:
    if lo is None or hi is None:
        return "no interval from this estimator"
    if pct:
        return f"95% CI {100 * lo:+.1f} to {100 * hi:+.1f} pp"
    return f"95% CI {lo:+.2f} to {hi:+.2f} months"


def effect_cards(effects: Mapping) -> str:
    """The headline numbers: OS differences with intervals, per-arm survival and CRS risks."""
    level = f"{100 * (1 - float(effects.get('alpha') or 0.05)):g}%"
    cards = []
    h = effects.get("survival_horizon")
    v, lo, hi = _est(effects.get("survival_difference"))
    if v is not None:
        cards.append(_card(f"{h:g}-month survival, CAR-T minus tec", f"{100 * v:+.1f} pp",
                           _ci(lo, hi, True).replace("95%", level)))  # fmt: skip
    v, lo, hi = _est(effects.get("rmst_difference"))
    if v is not None:
        hr = effects.get("rmst_horizon")
        cards.append(_card(f"Months alive in {hr:g} (RMST), difference", f"{v:+.1f} mo",
                           _ci(lo, hi, False).replace("95%", level)))  # fmt: skip
    for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
        v, lo, hi = _est(effects.get(f"survival_{arm}"))
        if v is not None:
            cards.append(_card(f"Alive at {h:g} months, {ARM_WORDS[arm]}", _pct(v),
                               f"band {_pct(lo)}-{_pct(hi)}", cls))  # fmt: skip
    v, lo, hi = _est(effects.get("crs_difference"))
    if v is not None:
        cards.append(_card("CRS risk, CAR-T minus tec", f"{100 * v:+.1f} pp",
                           _ci(lo, hi, True).replace("95%", level)))  # fmt: skip
    for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
        v, lo, hi = _est(effects.get(f"crs_{arm}"))
        if v is not None:
            cards.append(_card(f"CRS risk, {ARM_WORDS[arm]}", _pct(v),
                               f"interval {_pct(lo)}-{_pct(hi)}", cls))  # fmt: skip
    for arm, cls in (("cart", "hte-cart"), ("tec", "hte-tec")):
        v, lo, hi = _est(effects.get(f"crs_g3_{arm}"))
        if v is not None:
            cards.append(_card(f"Grade >= 3 CRS, {ARM_WORDS[arm]}", _pct(v),
                               f"interval {_pct(lo)}-{_pct(hi)}", cls))  # fmt: skip
    sources = sorted({e["source"] for k, e in effects.items()
                      if k.endswith("_difference") and isinstance(e, Mapping) and e.get("source")})  # fmt: skip
    foot = (f'<div class="hte-i" style="margin-top:6px">Differences from '
            f'{escape(", ".join(sources))}; per-arm numbers from per-arm models with bootstrap '
            "bands (they need not add up exactly to the differences).</div>")  # fmt: skip
    return f'<div class="hte-cards">{"".join(cards)}</div>{foot}{_like_this(effects, level)}'


LIKE_THIS_WORDS = {"survival": ("survival", True), "rmst": ("RMST", False),
                   "crs": ("CRS", True), "crs_g3": ("grade >= 3 CRS", True)}  # fmt: skip


def _like_this(effects: Mapping, level: str) -> str:
    """One line per target: the DR estimate of the held-out predicted-benefit group of the
    profile (the interval that covers: a group mean, not this patient's effect)."""
    groups = effects.get("patients_like_this") or {}
    items = []
    for target, g in groups.items():
        name, pct = LIKE_THIS_WORDS.get(target, (target, True))
        value = f"{100 * g['estimate']:+.1f} pp" if pct else f"{g['estimate']:+.2f} mo"
        ci = _ci(g["lower"], g["upper"], pct).replace("95%", level)
        where = ("all patients" if g["n_groups"] == 1
                 else f"group {g['group']} of {g['n_groups']}, n = {g['n']}")  # fmt: skip
        items.append(f"<li>{escape(name)}: {escape(value)} ({escape(ci)}; {escape(where)})</li>")
    if not items:
        return ""
    return ('<div class="hte-i" style="margin-top:6px">Patients like this (DR estimate of the '
            "group of patients with similar held-out predicted benefit; its interval is for the "
            f"group's mean effect):<ul>{''.join(items)}</ul></div>")  # fmt: skip


ARM_WORDS = {"cart": "CAR-T", "tec": "teclistamab"}


def warning_html(effects: Mapping) -> str:
    """A red box listing out-of-support flags; a quiet green line when the profile is supported."""
    warnings = list(effects.get("warnings") or [])
    if not warnings:
        e = effects.get("propensity")
        return ('<div class="hte-ok">Inside the cohort\'s support: values within the observed '
                f"ranges, propensity of CAR-T {e:.2f}.</div>")  # fmt: skip
    items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
    return (
        '<div class="hte-warning"><strong>Outside the cohort\'s support: read these numbers as '
        f"extrapolation.</strong><ul>{items}</ul></div>"
    )


def summary_html(effects: Mapping) -> str:
    defaults = effects.get("defaults_used") or []
    extra = (f" Fields not given took the cohort's typical value: {', '.join(defaults)}."
             if defaults and len(defaults) < 6 else "")  # fmt: skip
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
            groups.append((f"alive at {surv['horizon_months']:g} months", surv[arm]["alive"],
                           ARM_COLOURS[arm]))  # fmt: skip
            groups.append(("died", surv[arm]["dead"], "#d1d5db"))
        if not groups:
            continue
        caption = f"{ARM_WORDS[arm]}: out of 100 patients like this"
        if crs:
            caption += f"; {crs[arm]['crs']} would have CRS"
        blocks.append(
            f'<div><div class="hte-k" style="font-weight:600;margin-bottom:6px;color:'
            f'{ARM_COLOURS[arm]}">{ARM_WORDS[arm]}</div>{icon_array(groups, caption)}</div>'
        )
    if not blocks:
        return ""
    return '<div style="display:flex;flex-wrap:wrap;gap:28px">' + "".join(blocks) + "</div>"


def waterfall_figure(explorer, profile: Mapping, target: str, max_display: int = 8):
    if target not in explorer.targets():
        return plots.message_figure(f"no {target} effect in this run")
    wf = _checked(explorer.waterfall, profile, target)
    contributions = wf["contributions"]
    shown = contributions[:max_display]
    rest = sum(c["contribution"] for c in contributions[max_display:])
    names = [c["text"] for c in shown]
    values = [c["contribution"] for c in shown]
    if len(contributions) > max_display:
        names.append(f"{len(contributions) - max_display} other fields")
        values.append(rest)
    scale, unit = (100.0, "pp") if target in ("survival", "crs", "crs_g3") else (1.0, "months")
    title = (f"Why this {'OS benefit' if target in ('survival', 'rmst') else 'CRS difference'}: "
             f"{wf['estimator']}")  # fmt: skip
    fig = plots.waterfall(
        names, [scale * v for v in values], scale * wf["base_value"],
        scale * wf["surrogate_prediction"], title, unit=unit,
        positive_is_good=target in ("survival", "rmst"),
    )  # fmt: skip
    ax = fig.axes[0]
    ax.set_xlabel(f"{ax.get_xlabel()}\n{wf['fidelity']}", fontsize=8)
    return fig


def moves_figure(explorer, profile_values: Mapping, field: str | None, target: str | None):
    fields = explorer.fields()
    profile = profile_from_form(fields, profile_values)
    target = target or "survival"
    if target not in explorer.targets():
        return plots.message_figure(f"no {target} effect in this run")
    if not field:
        return plots.message_figure("choose a covariate to vary")
    frame = _checked(explorer.what_moves_it, profile, field, target)
    f = next(x for x in fields if x.name == field)
    scale, unit = (100.0, "pp") if target in ("survival", "crs", "crs_g3") else (1.0, "months")
    words = dict((v, k) for k, v in MOVE_TARGETS).get(target, target)
    x = frame[field].tolist()
    categorical = f.kind in ("boolean", "category")
    if f.kind == "boolean":
        x = ["yes" if v else "no" for v in x]
    current = profile.get(field, f.default)
    if f.kind == "boolean":
        current = "yes" if current in (True, "yes") else "no"
    label = f.label + (f" ({f.unit})" if f.unit else "")
    return plots.what_moves_it(
        x, scale * frame["effect"].to_numpy(float), scale * frame["lower"].to_numpy(float),
        scale * frame["upper"].to_numpy(float), current, label, f"{words} ({unit})",
        categorical=categorical,
    )  # fmt: skip


def whatif_outputs(explorer, profile_values: Mapping, move_field, move_target) -> tuple:
    """warning, cards, curves, summary, icons, OS waterfall, CRS waterfall, what moves it."""
    fields = explorer.fields()
    profile = profile_from_form(fields, profile_values)
    effects = _checked(explorer.effects, profile).to_json()
    curves = effects.get("curves")
    if curves:
        curve_fig = plots.survival_curves(curves["times"], curves,
                                          effects.get("survival_horizon"))  # fmt: skip
    else:
        curve_fig = plots.message_figure("no survival curves in this run")
    os_target = "survival" if "survival" in explorer.targets() else "rmst"
    return (
        warning_html(effects),
        effect_cards(effects),
        curve_fig,
        summary_html(effects),
        icons_html(effects),
        waterfall_figure(explorer, profile, os_target),
        waterfall_figure(explorer, profile, "crs"),
        moves_figure(explorer, profile_values, move_field, move_target),
    )


def api_effects(explorer, profile: Any) -> dict:
    """The ``profile_effects`` answer: the explorer's effects JSON without the curves' long
    arrays trimmed (they are part of the answer), or ``InvalidProfile`` naming the field."""
    if isinstance(profile, str):
        import json

        try:
            profile = json.loads(profile)
        except ValueError:
            raise InvalidProfile("profile", "must be a JSON object (covariate -> value)") from None
    return _checked(explorer.effects, profile).to_json()
