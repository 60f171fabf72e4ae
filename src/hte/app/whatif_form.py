"""The what-if form: one input per covariate field of the run (number box with the run's observed
range, yes/no radio, category dropdown; "unknown" where the run has a missing-value path) and the
check of what was typed (``check_form``: the values as a profile, and per field the reason a value
is refused)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gradio as gr

UNKNOWN = "unknown"


def _range_words(field) -> str:
    unit = f" {field.unit}" if getattr(field, "unit", None) else ""
    return f"{field.minimum:g} to {field.maximum:g}{unit}"


def field_component(field) -> gr.components.Component:
    """A number box (the run's observed range in its label; empty = unknown), a yes/no radio
    or a dropdown; "unknown" is offered where the run has a missing-value path for the field."""
    label = field.label + (f" ({field.unit})" if getattr(field, "unit", None) else "")
    elem_id = f"field-{field.name}"
    allowed = bool(getattr(field, "missing_allowed", False))
    if field.kind == "boolean":
        choices = ["no", "yes", *([UNKNOWN] if allowed else [])]
        return gr.Radio(
            choices, value=_bool_word(field.default), label=label, interactive=True, elem_id=elem_id
        )
    if field.kind == "category":
        choices = [*field.choices, *([UNKNOWN] if allowed else [])]
        return gr.Dropdown(
            choices, value=field.default, label=label, elem_id=elem_id, interactive=True
        )
    info = f"this run's patients: {_range_words(field)}" + (
        "; leave empty if unknown" if allowed else "; required"
    )
    return gr.Number(
        value=field.default,
        label=label,
        info=info,
        elem_id=elem_id,
        interactive=True,
        step=field.step or 1,
    )


def field_error(field) -> gr.HTML:
    """Where a refused value of this field is explained (empty when the value is fine)."""
    return gr.HTML("", elem_id=f"error-{field.name}", elem_classes="hte-field-error", padding=False)


def _bool_word(value: Any) -> str:
    if value is None:
        return UNKNOWN
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
        if f.kind == "boolean":
            out.append(_bool_word(v))
        elif f.kind == "category" and v is None:
            out.append(UNKNOWN)
        else:
            out.append(v)
    return out


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() in ("", UNKNOWN))


def check_form(fields: Sequence, values: Mapping[str, Any]) -> tuple[dict, dict[str, str]]:
    """The form's values as a profile, and per field the reason a value is refused.

    Numbers must lie within the run's observed range (its cohort; the what-if does not
    extrapolate past it) and integers be whole; an empty field or "unknown" is the model's
    missing-value path where the run has one, else refused with the reason."""
    profile: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        v = values.get(f.name)
        if _empty(v):
            if getattr(f, "missing_allowed", False):
                profile[f.name] = None
            else:
                need = f" from {_range_words(f)}" if f.kind in ("number", "integer") else ""
                errors[f.name] = (
                    f"{f.label} is empty. Every patient in this run's cohort had it "
                    f'recorded, so the models cannot use "unknown" here: enter a '
                    f"value{need}."
                )
            continue
        if f.kind == "boolean":
            profile[f.name] = v == "yes" if isinstance(v, str) else bool(v)
        elif f.kind == "category":
            profile[f.name] = v
        else:
            try:
                x = float(v)
            except (TypeError, ValueError):
                errors[f.name] = f"{f.label}: {v!r} is not a number."
                continue
            if not (f.minimum <= x <= f.maximum):
                errors[f.name] = (
                    f"{f.label}: {x:g} is outside the range of this run's patients "
                    f"({_range_words(f)}); enter a value in that range."
                )
            elif f.kind == "integer" and x != round(x):
                errors[f.name] = f"{f.label}: must be a whole number; got {x:g}."
            else:
                profile[f.name] = round(x) if f.kind == "integer" else x
    return profile, errors
