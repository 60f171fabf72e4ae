"""How many posterior draws does a BCF need for point effects? (held-out refits, docs/bcf.md)

Fits the shipped BCF (OS survival at 12 months, RMST to 24 months, any-grade CRS) on default
cohorts with 200, 100 and 50 retained draws after the same 10 warm-start sweeps and seed, and
prints, per fit, the nMSE of the posterior mean against the true effect and the mean squared
difference from the 200-draw posterior mean, both as shares of the true effect's variance.

    python -m benchmarks.bcf_point_draws --seeds 1 2 3
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.bcf_trial import TARGETS, cohort, fit_and_predict

DRAWS = (200, 100, 50)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args(argv)
    print("| seed | target | draws | nMSE | difference from 200 draws |\n|---|---|---|---|---|")
    for seed in args.seeds:
        data = cohort("default", args.n, seed)
        for target, (column, horizon) in TARGETS.items():
            truth = data.cohort[column].to_numpy()
            spread = np.var(truth)
            reference = None
            for draws in DRAWS:
                mean, _ = fit_and_predict(data, target, horizon, seed, {"num_mcmc": draws})
                reference = mean if reference is None else reference
                nmse = np.mean((mean - truth) ** 2) / spread
                moved = np.mean((mean - reference) ** 2) / spread
                print(f"| {seed} | {target} | {draws} | {nmse:.4f} | {moved:.4f} |", flush=True)


if __name__ == "__main__":
    main()
