"""CPU seconds of each held-out refit group of the default run, one after another in this process.

python -m benchmarks.heldout_cost [CONFIG]

Runs the default experiment's stages up to the fits (``configs/default.yaml`` unless CONFIG is
given; its ``evaluation.heldout_folds`` sets the folds, e.g. ``HTE_FOLDS=5`` in the environment
overrides them), then each group of ``hte.pipeline.heterogeneity.refit_groups`` in turn, single-threaded
as in a worker process, and prints its CPU and wall seconds. The sum against the held-out stage's
wall time in a run's ``timings.json`` shows what the stage loses to running beside the model
saving and to handing work to the worker processes (docs/speed.md).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from hte.config import load_config
from hte.pipeline import heterogeneity
from hte.pipeline.stages import (
    design_diagnostics,
    fit_analysis_nuisances,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> None:
    config = load_config(Path(argv[0]) if argv else ROOT / "configs" / "default.yaml")
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    fit_analysis_nuisances(data, config)
    design_diagnostics(data, config.seed)
    fits = [
        f
        for f in fit_estimators(data, config)
        if f.error is None and not heterogeneity.is_average(f)
    ]
    folds_env = os.environ.get("HTE_FOLDS")
    n_folds = int(folds_env) if folds_env else config.evaluation.heldout_folds
    clock = time.process_time()
    folds = heterogeneity.heldout_fold_nuisances(fits, data, config.seed, n_folds)
    print(f"folds: {n_folds}; fold nuisances {time.process_time() - clock:.1f} CPU s")
    total = 0.0
    print("| estimator | targets | CPU s | wall s |\n|---|---|---|---|")
    for group in heterogeneity.refit_groups(fits, data):
        light = [
            dataclasses.replace(f, model=heterogeneity._point_only(f.model), estimate=None, arms={})
            for f in group
        ]
        cpu, wall = time.process_time(), time.perf_counter()
        with threadpool_limits(1):
            heterogeneity._heldout_group(light, data, config.seed, folds, n_folds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        total += cpu
        targets = ", ".join(f.target for f in group)
        print(f"| {group[0].estimator} | {targets} | {cpu:.1f} | {wall:.1f} |", flush=True)
    print(f"| all | | {total:.1f} | |")


if __name__ == "__main__":
    main(sys.argv[1:])
