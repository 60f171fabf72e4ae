"""The what-if figures as inline SVG, drawn by the browser (no server-side rendering): survival
curves with bands, SHAP waterfalls and "what moves it". Drawing only: every number comes from the
profile explorer. Each figure carries a real text alternative (``role="img"``, ``aria-label``
and ``<title>``) saying what it shows in numbers.

Colours are the Okabe-Ito palette (distinguishable under the common colour-vision deficiencies):
CAR-T blue, teclistamab orange; in waterfalls, bars that raise the effect are blue and bars that
lower it vermillion, and each bar also carries its signed value in text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

CART = "#0072B2"  # Okabe-Ito blue
TEC = "#E69F00"  # Okabe-Ito orange
UP = "#0072B2"  # raises the effect
DOWN = "#D55E00"  # lowers the effect (vermillion)
GREY = "#6b7280"
ARM_COLOURS = {"cart": CART, "tec": TEC}
ARM_NAMES = {"cart": "CAR-T", "tec": "teclistamab"}
FONT = "font-family:system-ui,sans-serif"


def _svg(width: int, height: int, alt: str, body: str) -> str:
    return (
        f'<svg class="hte-svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(alt)}" style="max-width:{width}px;{FONT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(alt)}</title>{body}</svg>'
    )


def _text(x, y, s, size=11, anchor="start", colour="#111827", weight="normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{colour}" font-weight="{weight}">{escape(str(s))}</text>'
    )


def _finite(values: Sequence[float] | None) -> bool:
    return values is not None and bool(np.isfinite(np.asarray(values, dtype=float)).all())


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo if hi > lo else 1.0
    raw = span / n
    mag = 10 ** np.floor(np.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = np.ceil(lo / step) * step
    return [float(v) for v in np.arange(start, hi + step * 1e-6, step)]


def message(text: str) -> str:
    """A short text in place of a figure (nothing to draw, and why)."""
    return f'<div class="hte-i" role="note">{escape(text)}</div>'


# --------------------------------------------------------------------------------------------------
# Survival curves


def survival_curves(
    times: Sequence[float],
    arms: Mapping[str, Mapping],
    horizon: float | None,
    alt: str,
    level: str,
) -> str:
    """Step curves per arm with their bands (``arms[arm] = {survival, lower, upper}``) at
    ``level`` (the run's, "90%" at evaluation.alpha 0.10)."""
    W, H, left, right, top, bottom = 640, 300, 52, 16, 28, 44
    t = np.asarray(times, dtype=float)
    t_max = float(t.max()) if t.size else 1.0
    sx = lambda v: left + (W - left - right) * v / t_max  # noqa: E731
    sy = lambda p: top + (H - top - bottom) * (1 - p)  # noqa: E731
    parts = []
    for p in (0, 0.25, 0.5, 0.75, 1.0):
        y = sy(p)
        parts.append(
            f'<line x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
        )
        parts.append(_text(left - 6, y + 4, f"{100 * p:.0f}%", 10, "end", GREY))
    for v in _nice_ticks(0, t_max, 6):
        parts.append(_text(sx(v), H - bottom + 16, f"{v:g}", 10, "middle", GREY))
    parts.append(
        _text(
            (left + W - right) / 2, H - 8, "months from the treatment decision", 11, "middle", GREY
        )
    )
    for arm in ("tec", "cart"):
        curve = arms.get(arm)
        if not curve:
            continue
        s, lo, hi = (np.asarray(curve[k], dtype=float) for k in ("survival", "lower", "upper"))
        xs = np.repeat(t, 2)[1:]
        xs = np.append(xs, t_max)

        def steps(v, xs=xs):
            ys = np.repeat(v, 2)
            return [(sx(x), sy(y)) for x, y in zip(xs, ys, strict=False)]

        upper, lower = steps(hi), steps(lo)
        poly = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower[::-1])
        parts.append(f'<polygon points="{poly}" fill="{ARM_COLOURS[arm]}" fill-opacity="0.16"/>')
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in steps(s))
        dash = ' stroke-dasharray="7 3"' if arm == "tec" else ""
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{ARM_COLOURS[arm]}" '
            f'stroke-width="2.4"{dash}/>'
        )
    if horizon is not None:
        x = sx(horizon)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{H - bottom}" '
            f'stroke="{GREY}" stroke-dasharray="4 3"/>'
        )
        parts.append(_text(x + 4, top + 12, f"{horizon:g} months", 10, "start", GREY))
    for i, arm in enumerate(("cart", "tec")):
        x = left + 10 + 130 * i
        dash = ' stroke-dasharray="7 3"' if arm == "tec" else ""
        parts.append(
            f'<line x1="{x}" x2="{x + 22}" y1="14" y2="14" stroke="{ARM_COLOURS[arm]}" '
            f'stroke-width="2.4"{dash}/>'
        )
        parts.append(_text(x + 28, 18, ARM_NAMES[arm], 11))
    parts.append(_text(W - right, 18, f"shaded: {level} band", 10, "end", GREY))
    return _svg(W, H, alt, "".join(parts))


# --------------------------------------------------------------------------------------------------
# Waterfall


def waterfall(
    rows: Sequence[tuple[str, float]], base: float, total: float, unit: str, title: str, alt: str
) -> str:
    """Bars from the cohort average (``base``) to this profile's effect (``total``): one row
    per (label, contribution), labels in their own column so they never overlap the bars."""
    W, label_w, right, row_h, top = 680, 250, 70, 24, 34
    H = top + row_h * (len(rows) + 2) + 30
    running = [base]
    for _, v in rows:
        running.append(running[-1] + v)
    lo, hi = min([*running, 0.0]), max([*running, 0.0])
    pad = 0.08 * (hi - lo if hi > lo else 1.0)
    lo, hi = lo - pad, hi + pad
    sx = lambda v: label_w + (W - label_w - right) * (v - lo) / (hi - lo)  # noqa: E731
    parts = [_text(4, 18, title, 12, weight="600")]
    y = top

    def bar_row(label, start, value, colour, text):
        nonlocal y
        x0, x1 = sorted((sx(start), sx(start + value)))
        parts.append(_text(label_w - 8, y + 16, label, 11, "end"))
        parts.append(
            f'<rect x="{x0:.1f}" y="{y + 5}" width="{max(x1 - x0, 1.5):.1f}" '
            f'height="{row_h - 8}" fill="{colour}" rx="2"/>'
        )
        parts.append(_text(x1 + 5, y + 16, text, 10, "start", GREY))
        y += row_h

    bar_row("average over the cohort", 0.0, base, GREY, f"{base:+.1f} {unit}")
    for i, (label, v) in enumerate(rows):
        bar_row(label, running[i], v, UP if v >= 0 else DOWN, f"{v:+.1f}")
    bar_row("this profile", 0.0, total, "#111827", f"{total:+.1f} {unit}")
    zero = sx(0.0)
    parts.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="{top}" y2="{y}" stroke="{GREY}" '
        'stroke-width="1"/>'
    )
    parts.append(
        _text(
            label_w,
            y + 18,
            f"blue raises, vermillion lowers the effect ({unit})",
            10,
            "start",
            GREY,
        )
    )
    return _svg(W, H, alt, "".join(parts))


# --------------------------------------------------------------------------------------------------
# What moves it


def what_moves_it(
    x: Sequence,
    effect: Sequence[float],
    lower: Sequence[float] | None,
    upper: Sequence[float] | None,
    current: object,
    xlabel: str,
    ylabel: str,
    categorical: bool,
    alt: str,
) -> str:
    """The effect (and its interval) as one covariate varies, the others held."""
    W, H, left, right, top, bottom = 640, 280, 58, 16, 20, 46
    y = np.asarray(effect, dtype=float)
    banded = _finite(lower) and _finite(upper)  # a model without intervals gives NaN bounds
    lo = np.asarray(lower, dtype=float) if banded else y
    hi = np.asarray(upper, dtype=float) if banded else y
    ymin, ymax = float(min(lo.min(), 0.0)), float(max(hi.max(), 0.0))
    pad = 0.08 * (ymax - ymin if ymax > ymin else 1.0)
    ymin, ymax = ymin - pad, ymax + pad
    sy = lambda v: top + (H - top - bottom) * (ymax - v) / (ymax - ymin)  # noqa: E731
    parts = []
    for v in _nice_ticks(ymin, ymax, 5):
        parts.append(
            f'<line x1="{left}" x2="{W - right}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" '
            'stroke="#e5e7eb"/>'
        )
        parts.append(_text(left - 6, sy(v) + 4, f"{v:g}", 10, "end", GREY))
    parts.append(
        f'<line x1="{left}" x2="{W - right}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="{GREY}"/>'
    )
    if categorical:
        n = len(x)
        width = (W - left - right) / max(n, 1)
        for i, (label, v, a, b) in enumerate(zip(x, y, lo, hi, strict=True)):
            cx = left + width * (i + 0.5)
            colour = CART if str(label) == str(current) else GREY
            y0, y1 = sorted((sy(0), sy(v)))
            parts.append(
                f'<rect x="{cx - width * 0.3:.1f}" y="{y0:.1f}" width="{width * 0.6:.1f}" '
                f'height="{max(y1 - y0, 1):.1f}" fill="{colour}"/>'
            )
            if banded:
                parts.append(
                    f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{sy(a):.1f}" y2="{sy(b):.1f}" '
                    'stroke="#111827"/>'
                )
            parts.append(_text(cx, H - bottom + 16, label, 10, "middle", GREY))
    else:
        xv = np.asarray(x, dtype=float)
        x0, x1 = float(xv.min()), float(xv.max()) if xv.max() > xv.min() else float(xv.min()) + 1
        sx = lambda v: left + (W - left - right) * (v - x0) / (x1 - x0)  # noqa: E731
        band = [(sx(a), sy(b)) for a, b in zip(xv, hi, strict=True)] + [
            (sx(a), sy(b)) for a, b in zip(xv[::-1], lo[::-1], strict=True)
        ]
        if banded:
            parts.append(
                '<polygon points="'
                + " ".join(f"{p:.1f},{q:.1f}" for p, q in band)
                + f'" fill="{CART}" fill-opacity="0.15"/>'
            )
        parts.append(
            '<polyline points="'
            + " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(xv, y, strict=True))
            + f'" fill="none" stroke="{CART}" stroke-width="2.2"/>'
        )
        for v in _nice_ticks(x0, x1, 6):
            parts.append(_text(sx(v), H - bottom + 16, f"{v:g}", 10, "middle", GREY))
        try:
            c = float(current)  # type: ignore[arg-type]
            if x0 <= c <= x1:
                parts.append(
                    f'<line x1="{sx(c):.1f}" x2="{sx(c):.1f}" y1="{top}" '
                    f'y2="{H - bottom}" stroke="#111827" stroke-dasharray="4 3"/>'
                )
        except (TypeError, ValueError):
            pass
    parts.append(_text((left + W - right) / 2, H - 10, xlabel, 11, "middle", GREY))
    parts.append(
        f'<text x="14" y="{(top + H - bottom) / 2:.1f}" font-size="11" fill="{GREY}" '
        f'text-anchor="middle" transform="rotate(-90 14 {(top + H - bottom) / 2:.1f})">'
        f"{escape(ylabel)}</text>"
    )
    return _svg(W, H, alt, "".join(parts))
