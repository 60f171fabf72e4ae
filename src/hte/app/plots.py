"""Matplotlib figures of the app. Drawing only: every number comes from a run folder or the
pipeline's profile explorer. CAR-T and teclistamab keep the same colours in every figure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hte.figure_text import plain_text
from hte.runs import SHAP_PREFIX

plain_text()  # data text in labels, never mathtext

CART_COLOUR = "#0072B2"  # CAR-T: Okabe-Ito blue (colour-blind safe palette)
TEC_COLOUR = "#E69F00"  # teclistamab: Okabe-Ito orange
BENEFIT_COLOUR = "#009E73"  # OS gain with CAR-T: bluish green
HARM_COLOUR = "#D55E00"  # extra CRS with CAR-T: vermillion
NEUTRAL = "#6b7280"
ARM_COLOURS = {"cart": CART_COLOUR, "tec": TEC_COLOUR}
ARM_NAMES = {"cart": "CAR-T", "tec": "teclistamab"}


def _figure(width: float = 6.4, height: float = 3.6) -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(width, height), dpi=100, layout="constrained")
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25, linewidth=0.6)
    return fig, ax


def message_figure(text: str, width: float = 6.4, height: float = 2.0) -> Figure:
    """A figure that only says why there is nothing to draw."""
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, color=NEUTRAL, fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# Patient what-if


def survival_curves(
    times: Sequence[float],
    arms: Mapping[str, Mapping[str, Sequence[float]]],
    horizon: float | None = None,
) -> Figure:
    """Survival under each arm with its band: ``arms[arm] = {"survival", "lower", "upper"}``."""
    fig, ax = _figure(6.4, 3.8)
    t = np.asarray(times, dtype=float)
    for arm in ("cart", "tec"):
        curve = arms.get(arm)
        if not curve:
            continue
        colour = ARM_COLOURS[arm]
        ax.step(t, curve["survival"], where="post", color=colour, lw=2.2, label=ARM_NAMES[arm])
        if curve.get("lower") is not None and curve.get("upper") is not None:
            ax.fill_between(
                t, curve["lower"], curve["upper"], step="post", color=colour, alpha=0.18, lw=0
            )
    if horizon is not None:
        ax.axvline(horizon, color=NEUTRAL, ls="--", lw=1)
        ax.text(horizon, 0.03, f" {horizon:g} mo", color=NEUTRAL, fontsize=9)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, float(t.max()) if t.size else 1)
    ax.set_xlabel("months from the treatment decision")
    ax.set_ylabel("probability alive")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(frameon=False, loc="lower left")
    ax.set_title("Predicted survival for this profile (shaded: interval)", loc="left", fontsize=11)
    return fig


def waterfall(
    features: Sequence[str],
    values: Sequence[float],
    base: float,
    total: float,
    title: str,
    unit: str = "",
    positive_is_good: bool = True,
) -> Figure:
    """A SHAP waterfall: from the cohort average (base) to this profile's effect (total)."""
    n = len(features)
    fig, ax = _figure(7.2, 0.36 * (n + 2) + 1.0)
    good, bad = (BENEFIT_COLOUR, HARM_COLOUR) if positive_is_good else (HARM_COLOUR, BENEFIT_COLOUR)
    start = base
    for i, v in enumerate(values):
        y = n - i
        ax.barh(y, v, left=start, color=good if v >= 0 else bad, height=0.6)
        ax.text(
            start + v, y, f" {v:+.3g}", va="center", ha="left" if v >= 0 else "right", fontsize=8
        )
        start += v
    ax.margins(x=0.18)
    ax.axvline(base, color=NEUTRAL, lw=1, ls=":")
    ax.axvline(total, color="black", lw=1.2)
    ax.set_yticks(range(n, 0, -1), list(features), fontsize=9)
    ax.set_xlabel(
        f"effect{f' ({unit})' if unit else ''}: from the cohort average {base:.3g} (dotted) to "
        f"this profile's {total:.3g} (solid)"
    )
    ax.set_title(title, loc="left", fontsize=11)
    return fig


def what_moves_it(
    x: Sequence,
    effect: Sequence[float],
    lower: Sequence[float] | None,
    upper: Sequence[float] | None,
    current: object,
    xlabel: str,
    ylabel: str,
    categorical: bool = False,
) -> Figure:
    """The effect as one covariate varies, the others held at the profile's values."""
    fig, ax = _figure(6.4, 3.4)
    y = np.asarray(effect, dtype=float)
    if categorical:
        pos = np.arange(len(x))
        err = None
        if lower is not None and upper is not None:
            err = np.vstack([y - np.asarray(lower, float), np.asarray(upper, float) - y])
        colours = [CART_COLOUR if str(v) == str(current) else NEUTRAL for v in x]
        ax.bar(pos, y, color=colours, yerr=err, capsize=4, width=0.6)
        ax.set_xticks(pos, [str(v) for v in x])
    else:
        xv = np.asarray(x, dtype=float)
        ax.plot(xv, y, color=CART_COLOUR, lw=2)
        if lower is not None and upper is not None:
            ax.fill_between(xv, lower, upper, color=CART_COLOUR, alpha=0.15, lw=0)
        try:
            ax.axvline(float(current), color="black", lw=1, ls="--")
        except (TypeError, ValueError):
            pass
    ax.axhline(0, color=NEUTRAL, lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"What moves it: {xlabel} (others held)", loc="left", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# Cohort and subgroups


def effect_distributions(
    os_effect: np.ndarray | None, crs_effect: np.ndarray | None, os_label: str, crs_label: str
) -> Figure:
    """Histograms of the per-patient OS benefit and CRS risk difference (CAR-T minus tec)."""
    panels = [
        (v, lab, c)
        for v, lab, c in (
            (os_effect, os_label, BENEFIT_COLOUR),
            (crs_effect, crs_label, HARM_COLOUR),
        )
        if v is not None
    ]
    if not panels:
        return message_figure("no per-patient effects in this run folder")
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(6.4 * len(panels) / 1.3, 3.2),
        dpi=100,
        layout="constrained",
        squeeze=False,
    )
    for ax, (values, label, colour) in zip(axes[0], panels, strict=True):
        values = np.asarray(values, dtype=float)
        ax.hist(values[np.isfinite(values)], bins=40, color=colour, alpha=0.85)
        ax.axvline(0, color="black", lw=1)
        ax.axvline(np.nanmean(values), color=NEUTRAL, ls="--", lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("patients")
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_title(f"mean {np.nanmean(values):+.3f}", loc="left", fontsize=10)
    return fig


def benefit_vs_harm(
    os_effect: np.ndarray, crs_effect: np.ndarray, crs_weight: float, os_label: str, crs_label: str
) -> Figure:
    """Per patient: OS benefit against extra CRS risk; coloured by net benefit at the weight."""
    fig, ax = _figure(6.4, 4.0)
    os_effect, crs_effect = np.asarray(os_effect, float), np.asarray(crs_effect, float)
    net = os_effect - crs_weight * crs_effect
    colours = np.where(net > 0, CART_COLOUR, TEC_COLOUR)
    ax.scatter(crs_effect, os_effect, c=colours, s=9, alpha=0.6, lw=0)
    lo, hi = np.nanmin(crs_effect), np.nanmax(crs_effect)
    xs = np.linspace(min(lo, 0), max(hi, 0), 50)
    ax.plot(xs, crs_weight * xs, color="black", lw=1, ls="--")
    ax.axhline(0, color=NEUTRAL, lw=0.8)
    ax.axvline(0, color=NEUTRAL, lw=0.8)
    share = float(np.mean(net > 0))
    ax.set_xlabel(f"extra CRS risk with CAR-T ({crs_label})")
    ax.set_ylabel(f"OS benefit with CAR-T ({os_label})")
    ax.set_title(
        f"Net benefit > 0 at CRS weight {crs_weight:g}: {share:.0%} of patients (blue)",
        loc="left",
        fontsize=10,
    )
    return fig


def toc_curve(toc: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Targeting operator characteristic: gain among the top q prioritized, with its band."""
    fig, ax = _figure(6.4, 3.4)
    q = np.asarray(toc["q"], float)
    ax.plot(q, toc["toc"], color=CART_COLOUR, lw=2)
    if toc.get("lower") is not None and toc.get("upper") is not None:
        ax.fill_between(q, toc["lower"], toc["upper"], color=CART_COLOUR, alpha=0.18, lw=0)
    ax.axhline(0, color=NEUTRAL, lw=0.8)
    ax.set_xlabel("share of patients treated first (by predicted benefit)")
    ax.set_ylabel("effect among them minus average")
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.set_title(title, loc="left", fontsize=11)
    return fig


def forest_plot(table: pd.DataFrame, label: str, title: str, xlabel: str) -> Figure:
    """Estimates with intervals, one row per subgroup (columns label, estimate, lower, upper)."""
    n = len(table)
    fig, ax = _figure(6.4, 0.38 * n + 1.2)
    y = np.arange(n)[::-1]
    est = table["estimate"].to_numpy(float)
    lo = table["lower"].to_numpy(float)
    hi = table["upper"].to_numpy(float)
    ax.errorbar(est, y, xerr=[est - lo, hi - est], fmt="o", color=CART_COLOUR, capsize=3)
    ax.axvline(0, color=NEUTRAL, lw=0.8)
    ax.set_yticks(y, table[label].astype(str).tolist(), fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# Attributions and diagnostics


def importance(shap: pd.DataFrame, title: str, max_display: int = 12) -> Figure:
    """Mean |SHAP| per feature from an attributions table (columns shap__<feature>)."""
    cols = [c for c in shap.columns if c.startswith(SHAP_PREFIX)]
    mean_abs = shap[cols].abs().mean().sort_values(ascending=False).head(max_display)
    names = [c.removeprefix(SHAP_PREFIX) for c in mean_abs.index]
    fig, ax = _figure(6.4, 0.33 * len(names) + 1.1)
    ax.barh(np.arange(len(names))[::-1], mean_abs.to_numpy(), color=CART_COLOUR)
    ax.set_yticks(np.arange(len(names))[::-1], names, fontsize=9)
    ax.set_xlabel("mean |SHAP| (effect units)")
    ax.set_title(title, loc="left", fontsize=11)
    return fig


def dependence(x: np.ndarray, shap_values: np.ndarray, feature: str, title: str) -> Figure:
    """SHAP dependence: one feature's value against its attribution, one dot per patient."""
    fig, ax = _figure(6.4, 3.4)
    x = np.asarray(x, float)
    if np.unique(x[np.isfinite(x)]).size <= 5:  # binary / few levels: jitter to show density
        rng = np.random.default_rng(0)
        x = x + rng.uniform(-0.12, 0.12, x.size)
    ax.scatter(x, shap_values, s=10, alpha=0.6, color=CART_COLOUR, lw=0)
    ax.axhline(0, color=NEUTRAL, lw=0.8)
    ax.set_xlabel(feature)
    ax.set_ylabel("SHAP value (effect units)")
    ax.set_title(title, loc="left", fontsize=11)
    return fig


def overlap(overlap_metrics: Mapping) -> Figure:
    """Propensity histograms per arm (mirrored), from metrics.json's overlap section."""
    edges = np.asarray(overlap_metrics.get("bin_edges", []), float)
    if edges.size < 2:
        return message_figure("no overlap histogram in this run folder")
    fig, ax = _figure(6.4, 3.4)
    width = np.diff(edges)
    cart = np.asarray(overlap_metrics["hist_cart"], float)
    tec = np.asarray(overlap_metrics["hist_tec"], float)
    ax.bar(edges[:-1], cart, width=width, align="edge", color=CART_COLOUR, label="CAR-T")
    ax.bar(edges[:-1], -tec, width=width, align="edge", color=TEC_COLOUR, label="teclistamab")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("propensity of CAR-T (cross-fitted)")
    ax.set_ylabel("patients (teclistamab below)")
    ax.legend(frameon=False)
    ax.set_title("Overlap of the arms", loc="left", fontsize=11)
    return fig


def balance(smd: Mapping[str, Mapping[str, float]]) -> Figure:
    """Standardized mean differences before and after IPTW (a love plot)."""
    if not smd:
        return message_figure("no balance table in this run folder")
    names = sorted(smd, key=lambda k: abs(smd[k].get("unweighted") or 0))
    fig, ax = _figure(6.4, 0.26 * len(names) + 1.2)
    y = np.arange(len(names))
    raw = [abs(smd[k].get("unweighted") or 0) for k in names]
    weighted = [abs(smd[k].get("iptw") or 0) for k in names]
    ax.scatter(raw, y, color=NEUTRAL, label="unweighted", s=22)
    ax.scatter(weighted, y, color=CART_COLOUR, label="IPTW", s=22)
    ax.axvline(0.1, color=HARM_COLOUR, ls="--", lw=1)
    ax.set_yticks(y, names, fontsize=8)
    ax.set_xlabel("|standardized mean difference| (dashed: 0.1)")
    ax.legend(frameon=False, loc="lower right")
    ax.set_title("Covariate balance", loc="left", fontsize=11)
    return fig
