"""Numbers and names for a clinical reader: sensible rounding, units, plain target names."""

from __future__ import annotations

import math
from typing import Any

from hte.vocabulary import TARGETS, kind_label

NOT_RUN = "not run in this run folder"
DASH = "–"

# target -> (plain name with {h} for the horizon, unit shown, scale applied to raw values)
_TARGETS = {t.name: (t.label, t.unit, t.scale) for t in TARGETS}


DEFAULT_ALPHA = (
    0.05  # the config's default (evaluation.alpha), for run folders that do not record it
)


def interval_level(alpha: Any) -> str:
    """The (1 - alpha) level of a run's intervals as a label: 0.05 -> "95%", 0.1 -> "90%"."""
    a = float(alpha) if is_number(alpha) and 0 < float(alpha) < 1 else DEFAULT_ALPHA
    return f"{100 * (1 - a):g}%"


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))


def num(x: Any, digits: int = 2) -> str:
    """A fixed-decimals number, or a dash for missing values."""
    if not is_number(x):
        return DASH
    text = f"{float(x):,.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text  # no "-0.00"


def signed(x: Any, digits: int = 2) -> str:
    if not is_number(x):
        return DASH
    text = f"{float(x):+,.{digits}f}"
    if not text.strip("+-0.,"):
        return text[1:]  # zero at this precision: no sign
    return text.replace("-", "−")


def pct(x: Any, digits: int = 1) -> str:
    """A proportion as a percentage."""
    return DASH if not is_number(x) else f"{100 * float(x):.{digits}f}%"


def pvalue(p: Any) -> str:
    if not is_number(p):
        return DASH
    p = float(p)
    if p < 0.001:
        return "< 0.001"
    return f"{p:.3f}" if p < 0.1 else f"{p:.2f}"


def interval(lo: Any, hi: Any, digits: int = 2, scale: float = 1.0) -> str:
    if not (is_number(lo) and is_number(hi)):
        return DASH
    return f"{num(scale * float(lo), digits)} to {num(scale * float(hi), digits)}"


def target_name(target: str, horizon: Any = None) -> str:
    name = _TARGETS.get(target, (target, "", 1.0))[0]
    return name.format(h=f"{float(horizon):g}" if is_number(horizon) else "h")


def target_unit(target: str) -> str:
    return _TARGETS.get(target, (target, "", 1.0))[1]


def target_scale(target: str) -> float:
    return _TARGETS.get(target, (target, "", 1.0))[2]


def effect(x: Any, target: str, digits: int | None = None) -> str:
    """An effect on its target's scale: percentage points or months, with a sign."""
    if not is_number(x):
        return DASH
    scale = target_scale(target)
    digits = (1 if scale == 100 else 2) if digits is None else digits
    return signed(scale * float(x), digits)


def effect_interval(lo: Any, hi: Any, target: str) -> str:
    scale = target_scale(target)
    return interval(lo, hi, 1 if scale == 100 else 2, scale).replace("-", "−")


def short_unit(target: str) -> str:
    return {"percentage points": "pp", "months": "mo"}.get(target_unit(target), target_unit(target))


def estimator_name(name: str, kind: str | None = None) -> str:
    """The config's name, with the estimator family in words when it differs."""
    plain = kind_label(kind)
    return name if plain is None or plain == name else f"{name} ({plain})"
