"""The patient what-if view: the form built from the explorer's fields, and the display of one
profile's effects (cards, curves, plain-language summary, icon array, waterfalls, what moves it).
Every number comes from ``hte.pipeline.profile.ProfileExplorer``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr

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
        return gr.Radio(["no", "yes"], value=_bool_word(field.default), label=label,
                        elem_id=elem_id)  # fmt: skip
    if field.kind == "category":
        return gr.Dropdown(list(field.choices), value=field.default, label=label, elem_id=elem_id)
    step = field.step or (1 if field.kind == "integer" else None)
    return gr.Slider(field.min, field.max, value=field.default, step=step, label=label,
                     elem_id=elem_id)  # fmt: skip


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
