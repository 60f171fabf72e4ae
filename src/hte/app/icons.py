"""An icon array of 100 people as inline HTML/SVG (no external assets): "out of 100 patients
like this ...", as in the PREDICT tools' per-patient displays."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_PERSON_PATH = "M10 1a5 5 0 1 1 0 10a5 5 0 1 1 0-10ZM2 27C2 15 18 15 18 27Z"
CELL_W, CELL_H = 22, 28  # one person's cell in the array's coordinates


def rounded_counts(shares: Sequence[float], total: int = 100) -> list[int]:
    """Shares (summing to about 1) as whole counts summing to ``total`` (largest remainders)."""
    raw = [max(0.0, float(s)) * total for s in shares]
    counts = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: max(0, total - sum(counts))]:
        counts[i] += 1
    while sum(counts) > total:  # shares summing to more than 1: trim the largest group
        counts[counts.index(max(counts))] -= 1
    return counts


def icon_array(groups: Sequence[tuple[str, int, str]], caption: str = "") -> str:
    """100 person icons coloured by group, as one small SVG (one shared path, 100 uses: a few
    kilobytes, drawn by the browser); ``groups`` = (label, count, CSS colour), in order."""
    colours: list[str] = []
    for _, count, colour in groups:
        colours += [colour] * int(count)
    colours = colours[:100]
    colours += ["#e5e7eb"] * (100 - len(colours))
    people = "".join(
        f'<use href="#hte-person" x="{CELL_W * (i % 10)}" y="{CELL_H * (i // 10)}" '
        f'fill="{escape(c)}"/>'
        for i, c in enumerate(colours)
    )
    grid = (
        f'<svg class="hte-icon-grid" viewBox="0 0 {CELL_W * 10} {CELL_H * 10}" width="220" '
        f'role="img" aria-label="{escape(caption)}" xmlns="http://www.w3.org/2000/svg">'
        f'<title>{escape(caption)}</title><defs><path id="hte-person" d="{_PERSON_PATH}"/></defs>'
        f"{people}</svg>"
    )
    legend = "".join(
        f'<span class="hte-legend"><span class="hte-swatch" style="background:{escape(c)}"></span>'
        f"{int(n)} {escape(label)}</span>"
        for label, n, c in groups
    )
    return (
        f'<div class="hte-icons">{grid}'
        f'<div class="hte-icon-legend">{legend}</div>'
        f'<div class="hte-icon-caption">{escape(caption)}</div></div>'
    )


ICON_CSS = """
.hte-icon-grid {display: block; height: auto;}
.hte-icon-legend {margin-top: 10px; display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 0.9em;}
.hte-legend {display: inline-flex; align-items: center; gap: 6px;}
.hte-swatch {display: inline-block; width: 12px; height: 12px; border-radius: 3px;}
.hte-icon-caption {margin-top: 6px; font-size: 0.85em; color: #6b7280;}
"""
