"""Plots of SHAP attributions: beeswarm, bar importance, dependence, per-patient waterfall.

Built on matplotlib's object API (``matplotlib.figure.Figure`` with the Agg canvas), so nothing is
ever displayed and no global pyplot state is touched. Every function returns the Figure and, given
``path``, also saves it (PNG/SVG/PDF from the suffix). Each figure carries a footnote saying what
was explained and, when a surrogate was used, its fidelity R^2 against the model's own CATE.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from hte.explain.attributions import CateAttributions, global_importance
from hte.figure_text import plain_text

plain_text()  # data text in labels, never mathtext

CMAP = "coolwarm"
POSITIVE, NEGATIVE = "#c0392b", "#2e86c1"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, attr: CateAttributions, path) -> Figure:
    fig.text(0.01, 0.005, attr.fidelity_text, fontsize=8, ha="left", va="bottom", color="0.3")
    fig.get_layout_engine().set(h_pad=0.25)
    if path is not None:
        fig.savefig(Path(path), dpi=120)
    return fig


def _top(attr: CateAttributions, max_display: int) -> list[str]:
    if int(max_display) < 1:
        raise ValueError(f"max_display must be >= 1; got {max_display}")
    return list(global_importance(attr).index[: int(max_display)])


def _feature_index(attr: CateAttributions, feature: str) -> int:
    if feature not in attr.feature_names:
        raise ValueError(f"feature {feature!r} is not among the attributed features")
    return attr.feature_names.index(feature)


def _scaled(x: np.ndarray) -> np.ndarray:
    """Feature values to [0, 1] between their 5th and 95th percentiles (robust colouring)."""
    lo, hi = np.percentile(x, [5, 95])
    if hi <= lo:
        lo, hi = x.min(), x.max()
    if hi <= lo:
        return np.full(x.shape, 0.5)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _swarm_offsets(v: np.ndarray, width: float = 0.4, bins: int = 60) -> np.ndarray:
    """Deterministic vertical spread: points sharing a bin of SHAP values fan out around 0."""
    if np.ptp(v) == 0:
        edges = np.array([v.min() - 1, v.min() + 1])
    else:
        edges = np.linspace(v.min(), v.max(), bins + 1)
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    offsets = np.zeros(v.shape)
    counts = np.bincount(which)
    scale = width / max(counts.max(), 1)
    for b in np.flatnonzero(counts):
        idx = np.flatnonzero(which == b)
        rank = np.arange(idx.size)
        offsets[idx] = np.where(rank % 2 == 0, 1, -1) * ((rank + 1) // 2) * scale
    return offsets


def plot_beeswarm(attr: CateAttributions, *, max_display: int = 15, path=None) -> Figure:
    """One row per feature (most important on top): each patient's SHAP value, coloured by the
    patient's feature value (blue low, red high)."""
    feats = _top(attr, max_display)
    fig = _figure(8, 0.4 * len(feats) + 1.6)
    ax = fig.add_subplot()
    cmap = colormaps[CMAP]
    for pos, name in enumerate(reversed(feats)):
        j = attr.feature_names.index(name)
        v = attr.values[:, j]
        x = attr.X.iloc[:, j].to_numpy(dtype=float)
        ax.scatter(v, pos + _swarm_offsets(v), c=cmap(_scaled(x)), s=8, linewidths=0)
    ax.set_yticks(range(len(feats)), list(reversed(feats)))
    ax.axvline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(f"SHAP value (contribution to {attr.label})")
    bar = fig.colorbar(_mappable(cmap), ax=ax, ticks=[0, 1], label="feature value")
    bar.ax.set_yticklabels(["low", "high"])
    ax.set_title(f"Attributions of the {attr.label}: {attr.X.shape[0]} patients")
    return _finish(fig, attr, path)


def _mappable(cmap) -> ScalarMappable:
    return ScalarMappable(norm=Normalize(0, 1), cmap=cmap)


def plot_importance(attr: CateAttributions, *, max_display: int = 15, path=None) -> Figure:
    """Bar chart of mean |SHAP| per feature (global importance)."""
    imp = global_importance(attr)[_top(attr, max_display)]
    fig = _figure(7, 0.35 * len(imp) + 1.5)
    ax = fig.add_subplot()
    ax.barh(range(len(imp)), imp.to_numpy()[::-1], color=POSITIVE)
    ax.set_yticks(range(len(imp)), list(imp.index[::-1]))
    ax.set_xlabel(f"mean |SHAP| (average shift of the {attr.label})")
    ax.set_title(f"Global importance for the {attr.label}")
    return _finish(fig, attr, path)


def _auto_colour_feature(attr: CateAttributions, j: int) -> int | None:
    """The other feature whose values correlate most (in absolute value) with feature j's SHAP."""
    v = attr.values[:, j]
    best, best_r = None, -1.0
    for k in range(len(attr.feature_names)):
        x = attr.X.iloc[:, k].to_numpy(dtype=float)
        if k == j or np.ptp(x) == 0 or np.ptp(v) == 0:
            continue
        r = abs(np.corrcoef(x, v)[0, 1])
        if r > best_r:
            best, best_r = k, r
    return best


def plot_dependence(
    attr: CateAttributions, feature: str, *, color_by: str | None = "auto", path=None
) -> Figure:
    """Feature value against its SHAP value, coloured by ``color_by`` (a feature name, "auto" =
    the other feature most correlated with these SHAP values, or None)."""
    j = _feature_index(attr, feature)
    k = _auto_colour_feature(attr, j) if color_by == "auto" else None
    if color_by not in ("auto", None):
        k = _feature_index(attr, color_by)
    fig = _figure(6.5, 4.5)
    ax = fig.add_subplot()
    x = attr.X.iloc[:, j].to_numpy(dtype=float)
    if k is None:
        ax.scatter(x, attr.values[:, j], s=10, color=POSITIVE, linewidths=0)
    else:
        c = attr.X.iloc[:, k].to_numpy(dtype=float)
        sc = ax.scatter(x, attr.values[:, j], c=c, cmap=CMAP, s=10, linewidths=0)
        fig.colorbar(sc, ax=ax, label=attr.feature_names[k])
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(feature)
    ax.set_ylabel(f"SHAP value for {feature}")
    ax.set_title(f"Dependence of the {attr.label} on {feature}")
    return _finish(fig, attr, path)


def plot_waterfall(attr: CateAttributions, row: int, *, max_display: int = 10, path=None) -> Figure:
    """One patient: from the base value, each feature's push (largest first) to the effect shown.

    ``row`` is the position (0-based) in ``attr.X``. Features beyond ``max_display`` are summed
    into one bar, so the bars always end at ``base_value + sum(values) == effect``.
    """
    n = attr.values.shape[0]
    if not 0 <= int(row) < n:
        raise ValueError(f"row must be in [0, {n}); got {row}")
    if int(max_display) < 1:
        raise ValueError(f"max_display must be >= 1; got {max_display}")
    v = attr.values[int(row)]
    order = np.argsort(-np.abs(v), kind="stable")
    shown, rest = order[: int(max_display)], order[int(max_display) :]
    labels = [f"{attr.feature_names[j]} = {attr.X.iloc[int(row), j]:.4g}" for j in shown]
    pushes = list(v[shown])
    if rest.size:
        labels.append(f"{rest.size} other features")
        pushes.append(float(v[rest].sum()))
    fig = _figure(8, 0.4 * len(pushes) + 1.8)
    ax = fig.add_subplot()
    start = attr.base_value
    for pos, push in enumerate(pushes):
        y = len(pushes) - 1 - pos
        ax.barh(y, push, left=start, color=POSITIVE if push >= 0 else NEGATIVE)
        ax.text(start + push, y, f" {push:+.3g}", va="center", fontsize=8)
        start += push
    ax.axvline(attr.base_value, color="0.5", lw=0.8, ls="--")
    ax.axvline(start, color="0.2", lw=0.8)
    ax.margins(x=0.12)
    ax.set_yticks(range(len(pushes)), labels[::-1])
    ax.set_xlabel(
        f"{attr.label}: base value {attr.base_value:.3g} -> shown {attr.effect[int(row)]:.3g} "
        f"(model {attr.model_effect[int(row)]:.3g})"
    )
    ax.set_title(f"Why this patient's {attr.label} (patient {attr.X.index[int(row)]})")
    return _finish(fig, attr, path)
