"""The report's building blocks: small dicts the template knows how to render.

A section is a list of blocks; each block has a ``kind`` (``text``, ``h3``, ``table``,
``figure``, ``cards``, ``missing``, ``pre``, ``bars``, ``grid``, ``caution``). Keeping the content
in plain data makes every section testable without parsing HTML.
"""

from __future__ import annotations

from typing import Any

from hte.report.format import NOT_RUN


def text(body: str, *, muted: bool = False) -> dict:
    return {"kind": "text", "body": body, "muted": muted}


def reading(body: str) -> dict:
    """The plain-language "what this shows" line under a figure or a table pair."""
    return {"kind": "reading", "body": body}


def h3(title: str, anchor: str | None = None) -> dict:
    return {"kind": "h3", "title": title, "anchor": anchor}


def table(
    headers: list[str],
    rows: list[list[Any]],
    *,
    reading: str | None = None,
    caption: str | None = None,
    numeric_from: int = 1,
    numeric_to: int | None = None,
    compact: bool = False,
) -> dict:
    """``reading``: the plain-language line under the table ("what this shows"). Columns from
    ``numeric_from`` up to (not including) ``numeric_to`` are right-aligned. Every row has one
    cell per header (``ValueError`` naming the table otherwise: a section bug, caught here and not
    as a template error)."""
    for i, r in enumerate(rows):
        if len(r) != len(headers):
            raise ValueError(
                f"report table {headers[:2]}...: row {i + 1} has {len(r)} cells for "
                f"{len(headers)} headers"
            )
    stop = len(headers) if numeric_to is None else numeric_to
    return {
        "kind": "table",
        "headers": headers,
        "rows": [["" if c is None else str(c) for c in r] for r in rows],
        "reading": reading,
        "caption": caption,
        "numeric": [numeric_from <= i < stop for i in range(len(headers))],
        "compact": compact,
    }


def failed_row(headers: list[str], leading: list[Any], message: str) -> list[Any]:
    """A table row for something that failed: the ``leading`` cells (what failed), the message,
    and empty cells for the rest of ``headers``: the cell count always follows the headers."""
    return [*leading, message] + [""] * (len(headers) - len(leading) - 1)


def figure(src: str | None, alt: str, caption: str | None = None, *, wide: bool = True) -> dict:
    if src is None:
        return missing(alt)
    return {"kind": "figure", "src": src, "alt": alt, "caption": caption, "wide": wide}


def cards(items: list[dict], title: str | None = None) -> dict:
    """Headline numbers: items with ``label``, ``value``, ``sub`` (interval, truth)."""
    return {"kind": "cards", "items": items, "title": title}


def missing(what: str, reason: str | None = None) -> dict:
    """Said plainly: this part was not in the run folder (never hidden silently)."""
    body = f"{what}: {NOT_RUN}" + (f" ({reason})" if reason else "") + "."
    return {"kind": "missing", "body": body}


def caution(body: str) -> dict:
    return {"kind": "caution", "body": body}


def pre(body: str, summary: str | None = None) -> dict:
    """Preformatted text; with ``summary`` it is folded under a click-to-open line."""
    return {"kind": "pre", "body": body, "summary": summary}


def bars(rows: list[tuple[str, float, str]], caption: str | None = None) -> dict:
    """Horizontal bars in HTML (name, share of the largest 0-1, value text)."""
    return {"kind": "bars", "rows": rows, "caption": caption}


def row(*items: dict) -> dict:
    """Blocks side by side (stacked on narrow screens)."""
    return {"kind": "row", "items": list(items)}


def grid(items: list[dict]) -> dict:
    """Cards side by side, each with ``title``, ``subtitle``, ``warn`` and its own ``blocks``."""
    return {"kind": "grid", "items": items}
