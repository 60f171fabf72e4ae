"""The what-if answer to one profile as JSON, and the error that names a refused field.

Kept apart from the Gradio views (``hte.app.whatif``): the JSON route and scripts get the answer
without importing Gradio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hte.errors import HteError


class InvalidProfile(HteError, ValueError):
    """A profile the explorer refuses; the message names the field."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"invalid profile: field '{field}': {message}")


def checked_call(call, *args):
    """Call the explorer; its ``ProfileError(field, message)`` becomes ``InvalidProfile``."""
    from hte.pipeline.profile import ProfileError

    try:
        return call(*args)
    except ProfileError as exc:
        field = getattr(exc, "field", None) or "profile"
        message = getattr(exc, "message", None) or str(exc)
        raise InvalidProfile(str(field), str(message)) from None


def effects_json(explorer, profile: Mapping) -> dict:
    """The explorer's answer for a checked profile, as JSON (``InvalidProfile`` names a field)."""
    return checked_call(explorer.effects, profile).to_json()


def api_effects(explorer, profile: Any, effects_of=effects_json) -> dict:
    """The ``profile_effects`` answer: the explorer's effects JSON (curves included), or
    ``InvalidProfile`` naming the field."""
    if isinstance(profile, str):
        try:
            profile = json.loads(profile)
        except ValueError:
            raise InvalidProfile("profile", "must be a JSON object (covariate -> value)") from None
    return effects_of(explorer, profile)


def rest_answer(explorer, profile: Any, effects_of=effects_json) -> tuple[int, dict]:
    """``(status, body)`` for the JSON route: 200 with the effects, or 422 with
    ``{"error": ...}`` naming the field."""
    if not isinstance(profile, dict):
        return 422, {"error": "invalid profile: the body must be a JSON object"}
    try:
        return 200, api_effects(explorer, profile, effects_of)
    except InvalidProfile as exc:
        return 422, {"error": str(exc)}
