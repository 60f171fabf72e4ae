"""Run-folder figures: per-patient effect distributions and propensity overlap by arm."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hte.pipeline.stages import AnalysisData
from hte.runs import FIGURES_DIR

# --------------------------------------------------------------------------------------------------
# Figures


def write_figures(run_dir: Path, analyses: list[AnalysisData], fits: dict[str, list]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for data in analyses:
        ok = [f for f in fits[data.label] if f.estimate is not None]
        targets = list(dict.fromkeys(f.target for f in ok))
        if targets:
            fig, axes = plt.subplots(1, len(targets), figsize=(4.2 * len(targets), 3.4))
            for ax, target in zip(np.atleast_1d(axes), targets, strict=True):
                for f in (f for f in ok if f.target == target):
                    ax.hist(f.estimate.effect, bins=30, histtype="step", label=f.estimator)
                ax.axvline(0, color="grey", lw=0.8)
                ax.set_title(f"{target}" + (f" ({f.horizon:g} mo)" if f.horizon else ""))
                ax.set_xlabel("CATE, CAR-T minus teclistamab")
            np.atleast_1d(axes)[0].set_ylabel("patients")
            np.atleast_1d(axes)[-1].legend(fontsize=7)
            fig.suptitle(f"Per-patient effects, {data.label} time zero")
            fig.tight_layout()
            name = f"cate_{data.label}.png"
            fig.savefig(run_dir / FIGURES_DIR / name, dpi=100)
            plt.close(fig)
            written.append(name)
        if data.propensity is not None:
            fig, ax = plt.subplots(figsize=(4.5, 3.4))
            bins = np.linspace(0, 1, 21)
            for arm, label in ((1, "CAR-T"), (0, "teclistamab")):
                ax.hist(data.propensity[data.treatment == arm], bins=bins, alpha=0.5, label=label)
            ax.set_xlabel("propensity P(CAR-T | x), cross-fitted")
            ax.set_ylabel("patients")
            ax.set_title(f"Overlap, {data.label} time zero")
            ax.legend()
            fig.tight_layout()
            name = f"overlap_{data.label}.png"
            fig.savefig(run_dir / FIGURES_DIR / name, dpi=100)
            plt.close(fig)
            written.append(name)
    return written
