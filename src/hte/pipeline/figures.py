"""Run-folder figures: per-patient effect distributions and propensity overlap by arm.

Drawn with matplotlib's object API (``Figure``), never pyplot, so writing a run folder does not
change the plotting backend of a notebook that calls the pipeline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hte.figure_text import plain_text
from hte.pipeline.stages import AnalysisData, FittedEffect
from hte.runs import FIGURES_DIR, cate_figure_name, overlap_figure_name

plain_text()  # data text in labels, never mathtext

DPI = 100


def cate_figure(label: str, fits: list[FittedEffect]):
    """One panel per target: histogram of each estimator's per-patient effects."""
    from matplotlib.figure import Figure

    ok = [f for f in fits if f.estimate is not None]
    targets = list(dict.fromkeys((f.target, f.horizon) for f in ok))
    fig = Figure(figsize=(4.2 * len(targets), 3.4), layout="tight")
    axes = fig.subplots(1, len(targets), squeeze=False)[0]
    for ax, (target, horizon) in zip(axes, targets, strict=True):
        panel = [f for f in ok if f.target == target]
        values = np.concatenate([np.asarray(f.estimate.effect, dtype=float) for f in panel])
        bins = np.histogram_bin_edges(values, bins=30)  # shared, so estimators compare
        for fit in panel:
            ax.hist(fit.estimate.effect, bins=bins, histtype="step", label=fit.estimator)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(target + (f" ({horizon:g} months)" if horizon else ""))
        ax.set_xlabel("effect, CAR-T minus teclistamab")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("patients")
    fig.suptitle(f"Per-patient effects, {label} time zero")
    return fig


def overlap_figure(data: AnalysisData):
    """Histogram of the cross-fitted propensity by arm."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 3.4), layout="tight")
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    for arm, name in ((1, "CAR-T"), (0, "teclistamab")):
        ax.hist(data.propensity[data.treatment == arm], bins=bins, alpha=0.5, label=name)
    ax.set_xlabel("propensity P(CAR-T | x), cross-fitted")
    ax.set_ylabel("patients")
    ax.set_title(f"Overlap, {data.label} time zero")
    ax.legend()
    return fig


def write_figures(
    run_dir: Path, analyses: list[AnalysisData], fits: dict[str, list[FittedEffect]]
) -> list[str]:
    """Write ``figures/cate_<analysis>.png`` and ``figures/overlap_<analysis>.png``; returns the
    file names written."""
    written = []
    for data in analyses:
        figures = {}
        if any(f.estimate is not None for f in fits[data.label]):
            figures[cate_figure_name(data.label)] = cate_figure(data.label, fits[data.label])
        if data.propensity is not None:
            figures[overlap_figure_name(data.label)] = overlap_figure(data)
        for name, fig in figures.items():
            fig.savefig(Path(run_dir) / FIGURES_DIR / name, dpi=DPI)
            written.append(name)
    return written
