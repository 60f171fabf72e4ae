"""An icon array of 100 people as inline HTML/SVG (no external assets): "out of 100 patients
like this ...", as in the PREDICT tools' per-patient displays."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_PERSON = (
    '<svg viewBox="0 0 20 28" width="18" height="25" aria-hidden="true">'
    '<circle cx="10" cy="6" r="5" fill="{c}"/>'
    '<path d="M2 27 C2 15 18 15 18 27 Z" fill="{c}"/></svg>'
)


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
    """100 person icons coloured by group; ``groups`` = (label, count, CSS colour), in order."""
    cells = []
    for _, count, colour in groups:
        cells += [_PERSON.format(c=escape(colour))] * int(count)
    cells = cells[:100]
    cells += [_PERSON.format(c="#e5e7eb")] * (100 - len(cells))
    legend = "".join(
        f'<span class="hte-legend"><span class="hte-swatch" style="background:{escape(c)}"></span>'
        f"{int(n)} {escape(label)}</span>"
        for label, n, c in groups
    )
    grid = "".join(f'<span class="hte-icon">{c}</span>' for c in cells)
    return (
        '<div class="hte-icons">'
        f'<div class="hte-icon-grid" role="img" aria-label="{escape(caption)}">{grid}</div>'
        f'<div class="hte-icon-legend">{legend}</div>'
        f'<div class="hte-icon-caption">{escape(caption)}</div></div>'
    )


ICON_CSS = """
.hte-icon-grid {display: grid; grid-template-columns: repeat(10, 18px); gap: 3px 4px;}
.hte-icon {line-height: 0;}
.hte-icon-legend {margin-top: 10px; display: flex; flex-wrap: wrap; gap: 6px 16px; font-size: 0.9em;}
.hte-legend {display: inline-flex; align-items: center; gap: 6px;}
.hte-swatch {display: inline-block; width: 12px; height: 12px; border-radius: 3px;}
.hte-icon-caption {margin-top: 6px; font-size: 0.85em; color: #6b7280;}
"""
