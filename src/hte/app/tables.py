"""Small helpers that turn run-folder JSON into display tables and rounded numbers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

NOT_IN_RUN = "not in this run folder"
LABEL_KEYS = ("label", "subgroup", "name", "rule", "description", "test", "kind")


def fmt(x: Any, digits: int = 3) -> str:
    """A number rounded for reading (``digits`` significant digits); text as it is."""
    if x is None:
        return "-"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    if isinstance(x, float | np.floating):
        if not np.isfinite(x):
            return "-"
        if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
            return f"{x:.2e}"
        return f"{x:.{digits}g}"
    return str(x)


def interval(est: float | None, lo: float | None, hi: float | None, pct: bool = False) -> str:
    """ "+0.12 (0.05 to 0.19)" or, as percentage points, "+12.0 pp (5.0 to 19.0)"."""
    if est is None:
        return "-"
    if pct:
        text = f"{100 * est:+.1f} pp"
        if lo is not None and hi is not None:
            text += f" ({100 * lo:+.1f} to {100 * hi:+.1f})"
        return text
    text = f"{est:+.2f}"
    if lo is not None and hi is not None:
        text += f" ({lo:+.2f} to {hi:+.2f})"
    return text


def _cell(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return fmt(v)
    if isinstance(v, Mapping | list | tuple):
        return json.dumps(v, default=str)[:200]
    return v


def records_frame(obj: Any) -> pd.DataFrame:
    """A list of dicts (or a dict of dicts, keyed in a first column) as a rounded table."""
    if obj is None:
        return pd.DataFrame({"": [NOT_IN_RUN]})
    if isinstance(obj, Mapping):
        if all(isinstance(v, Mapping) for v in obj.values()):
            obj = [{"name": k, **v} for k, v in obj.items()]
        else:
            obj = [{"name": k, "value": v} for k, v in obj.items()]
    rows = [r if isinstance(r, Mapping) else {"value": r} for r in obj]
    if not rows:
        return pd.DataFrame({"": ["none"]})
    frame = pd.DataFrame(rows)
    return frame.apply(lambda col: col.map(_cell)).astype(str)


def label_column(rows: Sequence[Mapping]) -> str | None:
    """The key that names each row (label, subgroup, name, ...), if any."""
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    return next((k for k in LABEL_KEYS if k in keys), None)


def interval_rows(rows: Any) -> pd.DataFrame | None:
    """Rows with estimate/lower/upper and a label, for a forest plot; None when not that shape."""
    if not isinstance(rows, list) or not rows or not all(isinstance(r, Mapping) for r in rows):
        return None
    label = label_column(rows)
    if label is None or not all({"estimate", "lower", "upper"} <= set(r) for r in rows):
        return None
    frame = pd.DataFrame(rows)
    frame = frame.dropna(subset=["estimate", "lower", "upper"])
    return frame.rename(columns={label: "label"}) if len(frame) else None
