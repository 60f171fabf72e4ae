"""Report figures, drawn from the run folder's numbers and embedded as base64 PNG data URIs.

matplotlib's object API (``Figure`` with the Agg canvas) only: no pyplot state, no display.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hte.figure_text import plain_text
from hte.report.format import short_unit, target_name, target_scale
from hte.runs import EFFECT, LOWER, SHAP_PREFIX, UPPER, effects_column, fit_key

plain_text()  # data text in labels, never mathtext

DPI = 90
CART, TEC = "#b03a2e", "#2471a3"
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def data_uri(fig: Figure) -> str:
    """The figure as a ``data:image/png;base64,...`` URI (self-contained HTML)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_uri(path: Path) -> str:
    """A PNG file of the run folder as a data URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)


def overlap_figure(overlaps: dict[str, dict]) -> str | None:
    """Propensity histograms by arm, one panel per analysis (from metrics' overlap bins)."""
    usable = {k: v for k, v in overlaps.items() if {"bin_edges", "hist_cart", "hist_tec"} <= set(v)}
    if not usable:
        return None
    fig = _figure(4.4 * len(usable), 2.9)
    axes = fig.subplots(1, len(usable), squeeze=False)[0]
    for ax, (label, ov) in zip(axes, usable.items(), strict=True):
        edges = np.asarray(ov["bin_edges"], dtype=float)
        mids, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        ax.bar(mids, ov["hist_cart"], width=width, color=CART, alpha=0.55, label="CAR-T")
        ax.bar(mids, ov["hist_tec"], width=width, color=TEC, alpha=0.55, label="teclistamab")
        ax.set_title(f"{label} time zero", fontsize=10)
        ax.set_xlabel("propensity P(CAR-T | x)", fontsize=9)
        ax.set_xlim(0, 1)
        _style(ax)
    axes[0].set_ylabel("patients", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, frameon=False, loc="outside lower center", ncols=2)
    return data_uri(fig)


def balance_figure(balances: dict[str, dict]) -> str | None:
    """Love plot: absolute standardized mean difference per covariate before and after IPTW."""
    usable = {
        k: v["smd"] for k, v in balances.items() if isinstance(v.get("smd"), dict) and v["smd"]
    }
    if not usable:
        return None
    first = next(iter(usable.values()))
    order = sorted(first, key=lambda c: abs(first[c].get("unweighted") or 0))
    fig = _figure(4.4 * len(usable), 0.22 * len(order) + 1.3)
    axes = fig.subplots(1, len(usable), squeeze=False, sharey=True)[0]
    for ax, (label, smd) in zip(axes, usable.items(), strict=True):
        y = np.arange(len(order))
        raw = [abs(smd.get(c, {}).get("unweighted") or np.nan) for c in order]
        wtd = [abs(smd.get(c, {}).get("iptw") or np.nan) for c in order]
        ax.scatter(raw, y, s=18, facecolors="none", edgecolors="0.35", label="before weighting")
        ax.scatter(wtd, y, s=18, color=CART, label="after IPTW")
        ax.axvline(0.1, color="0.6", lw=0.8, ls="--")
        ax.set_yticks(y, order, fontsize=7)
        ax.set_xlabel("|standardized mean difference|", fontsize=9)
        ax.set_title(f"{label} time zero", fontsize=10)
        _style(ax)
    axes[0].legend(fontsize=7, frameon=False, loc="lower right")
    return data_uri(fig)


def cate_figure(effects: pd.DataFrame, panels: list[dict], level: str) -> str | None:
    """One row per target: histograms of every estimator's per-patient effects (shared bins) and,
    beside them, one estimator's effects sorted with their intervals ("caterpillar").

    ``panels``: dicts with ``target``, ``horizon``, ``estimators`` (names with an effect column)
    and ``interval_estimator`` (a name with intervals, or None); ``level`` labels the intervals
    (the run's level, e.g. "95%").
    """
    if not panels:
        return None
    fig = _figure(10, 2.7 * len(panels))
    axes = fig.subplots(len(panels), 2, squeeze=False)
    for row, panel in zip(axes, panels, strict=True):
        target, scale = panel["target"], target_scale(panel["target"])
        cols = [effects_column(fit_key(e, target), EFFECT) for e in panel["estimators"]]
        values = np.concatenate([scale * effects[c].to_numpy(dtype=float) for c in cols])
        values = values[np.isfinite(values)]
        # shared bins over the central 99% of all estimators' effects: a few extreme
        # predictions of one learner would otherwise squash every histogram into one bar
        lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (-1.0, 1.0)
        bins = np.linspace(lo, hi, 31) if hi > lo else 10
        ax = row[0]
        for i, (name, col) in enumerate(zip(panel["estimators"], cols, strict=True)):
            v = scale * effects[col].to_numpy(dtype=float)
            ax.hist(
                np.clip(v[np.isfinite(v)], lo, hi) if hi > lo else v[np.isfinite(v)],
                bins=bins,
                histtype="step",
                lw=1.3,
                color=PALETTE[i % len(PALETTE)],
                label=name,
            )
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_title(target_name(target, panel["horizon"]), fontsize=10)
        ax.set_xlabel(f"CAR-T minus teclistamab ({short_unit(target)})", fontsize=9)
        ax.set_ylabel("patients", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
        _style(ax)
        _caterpillar(row[1], effects, panel, scale, level)
    return data_uri(fig)


def _caterpillar(ax, effects: pd.DataFrame, panel: dict, scale: float, level: str) -> None:
    name = panel.get("interval_estimator")
    if name is None:
        ax.text(
            0.5,
            0.5,
            "no estimator with per-patient intervals",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize=9,
            color="0.4",
        )
        ax.set_axis_off()
        return
    est, lo, hi = (
        effects_column(fit_key(name, panel["target"]), p) for p in (EFFECT, LOWER, UPPER)
    )
    frame = effects[[est, lo, hi]].dropna().sort_values(est)
    x = np.arange(len(frame))
    ax.fill_between(
        x,
        scale * frame[lo],
        scale * frame[hi],
        color=PALETTE[0],
        alpha=0.25,
        lw=0,
        label=f"{level} interval",
    )
    ax.plot(x, scale * frame[est], color=PALETTE[0], lw=1.2, label="estimate")
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_title(f"{name}: patients ranked by estimated effect", fontsize=10)
    ax.set_xlabel("patients, ranked", fontsize=9)
    ax.set_ylabel(short_unit(panel["target"]), fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    _style(ax)


def benefit_harm_figure(panels: list[dict]) -> str | None:
    """Per-patient OS benefit (x) against CRS harm (y), one panel per analysis, by arm.

    ``panels``: dicts with ``label``, ``x``, ``y`` (arrays on the display scale), ``arm``
    (array of "cart"/"tec"), ``x_label``, ``y_label``.
    """
    if not panels:
        return None
    fig = _figure(max(4.8 * len(panels), 6.0), 4.3)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, p in zip(axes, panels, strict=True):
        for arm, colour, name in (
            ("tec", TEC, "treated with teclistamab"),
            ("cart", CART, "treated with CAR-T"),
        ):
            m = np.asarray(p["arm"]) == arm
            ax.scatter(p["x"][m], p["y"][m], s=7, alpha=0.45, color=colour, lw=0, label=name)
        ax.axvline(0, color="0.4", lw=0.8)
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_xlabel(p["x_label"], fontsize=9)
        ax.set_ylabel(p["y_label"], fontsize=9)
        ax.set_title(f"{p['label']} time zero", fontsize=10)
        ax.text(
            0.98,
            0.02,
            "more OS gain →",
            transform=ax.transAxes,
            ha="right",
            fontsize=7,
            color="0.4",
        )
        ax.text(
            0.02,
            0.98,
            "↑ more CRS with CAR-T",
            transform=ax.transAxes,
            va="top",
            fontsize=7,
            color="0.4",
        )
        _style(ax)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        fontsize=8,
        frameon=False,
        loc="outside lower center",
        ncols=2,
        markerscale=2.5,
    )
    return data_uri(fig)


def toc_figure(curves: list[dict]) -> str | None:
    """TOC curves: one panel per target, one line (with band) per estimator.

    ``curves``: dicts with ``target``, ``horizon``, ``estimator``, ``q``, ``toc``, ``lower``,
    ``upper`` (lists).
    """
    if not curves:
        return None
    targets = list(dict.fromkeys((c["target"], c["horizon"]) for c in curves))
    fig = _figure(4.4 * min(len(targets), 3), 3.0 * ((len(targets) + 2) // 3))
    axes = fig.subplots((len(targets) + 2) // 3, min(len(targets), 3), squeeze=False).ravel()
    for ax, (target, horizon) in zip(axes, targets, strict=False):
        scale = target_scale(target)
        mine = [c for c in curves if c["target"] == target]
        for i, c in enumerate(mine):
            colour = PALETTE[i % len(PALETTE)]
            q = np.asarray(c["q"], dtype=float)
            ax.plot(
                q,
                scale * np.asarray(c["toc"], dtype=float),
                color=colour,
                lw=1.3,
                label=c["estimator"],
            )
            if c.get("lower") is not None and c.get("upper") is not None:
                ax.fill_between(
                    q,
                    scale * np.asarray(c["lower"], dtype=float),
                    scale * np.asarray(c["upper"], dtype=float),
                    color=colour,
                    alpha=0.12,
                    lw=0,
                )
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set_title(target_name(target, horizon), fontsize=10)
        ax.set_xlabel("share of patients treated first (by priority)", fontsize=9)
        ax.set_ylabel(f"gain over average ({short_unit(target)})", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
        _style(ax)
    for ax in axes[len(targets) :]:
        ax.set_axis_off()
    return data_uri(fig)


def swarm_figure(shap: pd.DataFrame, features: list[str], target: str) -> str:
    """A plain beeswarm of SHAP values (no feature colouring: the run folder keeps no covariate
    values), used when the run's own coloured beeswarm PNG is absent."""
    scale = target_scale(target)
    fig = _figure(5.5, 0.32 * len(features) + 1.0)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)  # jitter only; fixed so the report is reproducible
    for pos, name in enumerate(reversed(features)):
        v = scale * shap[SHAP_PREFIX + name].to_numpy(dtype=float)
        ax.scatter(v, pos + rng.uniform(-0.3, 0.3, v.size), s=5, color=PALETTE[0], alpha=0.5, lw=0)
    ax.set_yticks(range(len(features)), list(reversed(features)), fontsize=8)
    ax.axvline(0, color="0.4", lw=0.8)
    ax.set_xlabel(f"SHAP value ({short_unit(target)})", fontsize=9)
    _style(ax)
    return data_uri(fig)
