"""Benchmark of the robustness checks on the default synthetic cohort.

    python -m benchmarks.bench_robustness [--draws 10] [--config configs/default.yaml]

1. ``robustness_checks`` once (wall and CPU seconds, every refutation and E-value);
2. calibration of the refuters with the correct doubly robust estimators: over ``--draws`` seeds,
   the placebo z-values (should look standard normal: about 1 in 20 outside +-1.96) and the
   random-common-cause moves in original SEs (what the tolerance must allow).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from hte.config import load_config
from hte.data.columns import CRS
from hte.evaluation.average_effects import aipcw_survival_difference, aipw_risk_difference
from hte.evaluation.refutation import placebo_treatment, random_common_cause

Z95 = 1.959964


def _prepared(config_path: str):
    from hte.pipeline.stages import (
        baseline_averages,
        design_diagnostics,
        prepare_analysis,
        prepare_cohort,
    )

    config = load_config(config_path)
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    design_diagnostics(data, config.seed)
    return config, data, baseline_averages(data, config)


def time_checks(config, data, baselines) -> dict:
    from hte.pipeline.robustness import robustness_checks

    wall, cpu = time.perf_counter(), time.process_time()
    out = robustness_checks(data, baselines, config, config.seed)
    return {
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": time.process_time() - cpu,
        "result": out,
    }


def calibrate(config, data, draws: int, horizon: float = 12.0) -> dict:
    X, W = data.X.to_numpy(dtype=float), data.treatment
    t, d = data.survival_outcome()
    y = data.cohort[CRS].to_numpy(dtype=int)

    def crs(X, W, y, seed):
        return aipw_risk_difference(X, W, y, seed).as_pair()

    def survival(X, W, t, d, seed):
        return aipcw_survival_difference(X, W, t, d, seed, horizon=horizon, n_jobs=2).as_pair()

    out = {}
    for name, fn, outcome in (("crs", crs, (y,)), ("survival", survival, (t, d))):
        orig = fn(X, W, *outcome, seed=config.seed)
        z, move = [], []
        for s in range(draws):
            p = placebo_treatment(fn, X, W, outcome, seed=1000 + s, original=orig)
            z.append(p.estimate / ((p.upper - p.lower) / (2 * Z95)))
            r = random_common_cause(fn, X, W, outcome, seed=1000 + s, original=orig)
            move.append(abs(r.estimate - orig[0]) / orig[1])
        z, move = np.array(z), np.array(move)
        out[name] = {
            "draws": draws,
            "placebo_z_mean": float(z.mean()),
            "placebo_z_sd": float(z.std(ddof=1)),
            "placebo_outside_1_96": int((np.abs(z) > Z95).sum()),
            "rcc_move_se_median": float(np.median(move)),
            "rcc_move_se_max": float(move.max()),
            "rcc_move_over_0_5": int((move > 0.5).sum()),
            "rcc_move_over_1": int((move > 1.0).sum()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    config, data, baselines = _prepared(args.config)
    report = {"checks": time_checks(config, data, baselines)}
    print(json.dumps(report, indent=1), flush=True)
    if args.draws > 0:
        print(json.dumps({"calibration": calibrate(config, data, args.draws)}, indent=1))


if __name__ == "__main__":
    main()
