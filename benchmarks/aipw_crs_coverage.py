"""Does the run's AIPW interval for the average CRS effect cover the truth as often as it says?

When the model choice shows the constant for a CRS target, the explorer's "patients like this"
interval is the run's AIPW risk difference for the whole cohort (``baseline_averages``, from the
shared cross-fitted nuisances). The model-choice records count how often that interval held the
cohort's mean true effect, but over ten cohorts one miss moves the share by 0.1. This benchmark
draws many default cohorts (n = 2,000), runs the run's own stages up to the baselines, and
compares each 95% interval with the mean of ``true_cate_crs`` / ``true_cate_crs_g3`` over the
patients the estimate is for. It prints one row per cohort and outcome, then the coverage and the
mean and SD of z = (estimate - truth) / (interval width / 3.92), which should be near 0 and 1.

    python -m benchmarks.aipw_crs_coverage --seeds 1-40
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from hte.config import load_config
from hte.pipeline.stages import (
    baseline_averages,
    crs_nuisances,
    design_diagnostics,
    fit_analysis_nuisances,
    prepare_analysis,
    prepare_cohort,
)

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
TRUTH = {"crs": "true_cate_crs", "crs_g3": "true_cate_crs_g3"}
Z_95 = 3.92  # width of a 95% normal interval in standard errors


def seed_range(text: str) -> list[int]:
    """``"1-40"`` or ``"3"`` as a list of seeds."""
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def cohort_rows(seed: int, n: int, scenario: str = "default") -> list[dict]:
    """The AIPW estimate, interval and true mean effect of both CRS outcomes of one cohort."""
    config = load_config(
        CONFIG, [f"data.scenario={scenario}", f"data.n={n}", f"seeds.global={seed}"]
    )
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    fit_analysis_nuisances(data, config)
    design_diagnostics(data, seed)
    baselines = baseline_averages(data, config)
    rows = []
    for outcome, column in TRUTH.items():
        effect = baselines[f"ate_{outcome}_aipw"]
        keep = crs_nuisances(data, outcome, seed)[0]
        truth = float(data.cohort[column].to_numpy(float)[keep].mean())
        se = (effect["upper"] - effect["lower"]) / Z_95
        rows.append(
            {
                "seed": seed,
                "outcome": outcome,
                "estimate": effect["estimate"],
                "lower": effect["lower"],
                "upper": effect["upper"],
                "truth": truth,
                "covered": bool(effect["lower"] <= truth <= effect["upper"]),
                "z": (effect["estimate"] - truth) / se,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=seed_range, default=seed_range("1-40"))
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args(argv)
    print("| seed | outcome | estimate | 95% interval | true mean effect | covered | z |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for seed in args.seeds:
        for r in cohort_rows(seed, args.n):
            rows.append(r)
            print(
                f"| {r['seed']} | {r['outcome']} | {r['estimate']:.4f} | "
                f"[{r['lower']:.4f}, {r['upper']:.4f}] | {r['truth']:.4f} | "
                f"{'yes' if r['covered'] else 'no'} | {r['z']:.2f} |",
                flush=True,
            )
    print("\n| outcome | cohorts | coverage | mean z | SD of z |\n|---|---|---|---|---|")
    for outcome in TRUTH:
        z = np.array([r["z"] for r in rows if r["outcome"] == outcome])
        covered = np.mean([r["covered"] for r in rows if r["outcome"] == outcome])
        print(f"| {outcome} | {z.size} | {covered:.3f} | {z.mean():.2f} | {z.std(ddof=1):.2f} |")


if __name__ == "__main__":
    main()
