"""Benchmark every estimator against the simulated truth of the synthetic RRMM cohort.

For each scenario (``default``, ``null_effect``) and seed, draw a cohort of n patients, encode its
covariates, fit each estimator on the observed data only, and score its per-patient effects against
the cohort's ``true_*`` columns (hte.evaluation.truth_scoring) with the fit time. The grid runs as
an ``hte sweep`` (hte.sweep, on dask.distributed); from the project's root:

    python -m benchmarks.bench_synthetic [--n 2000] [--seeds 5] [--workers 2]
        [--out experiments/benchmarks/synthetic_truth]

which is the same grid as ``hte sweep configs/bench.yaml`` (what ``make bench`` runs).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hte.config import ExperimentConfig
from hte.sweep import run_sweep

# The benchmark's estimators, as config entries (class defaults; configs/bench.yaml lists the same).
BENCH_ESTIMATORS: tuple[dict[str, Any], ...] = (
    {"name": "causal_survival_forest", "kind": "causal_survival_forest"},
    {"name": "dr_learner", "kind": "dr_learner"},
    {"name": "t_learner_rsf", "kind": "t_learner", "params": {"base_learner": "rsf"}},
    {"name": "s_learner_gbsa", "kind": "s_learner", "params": {"base_learner": "gbsa"}},
    {"name": "cox_interaction", "kind": "cox_interaction"},
    {"name": "bcf", "kind": "bcf"},
    {"name": "crs_causal_forest", "kind": "crs_causal_forest"},
    {"name": "logistic_interaction", "kind": "logistic_interaction"},
    {"name": "crs_bcf", "kind": "crs_bcf"},
)
BENCH_SCENARIOS = ("default", "null_effect")


def bench_config(
    n: int = 2000, seeds: int = 5, scenarios: Sequence[str] = BENCH_SCENARIOS, name: str = "bench"
):
    """The benchmark as a sweep config (the grid of configs/bench.yaml with these n and seeds)."""
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "description": "Every estimator against the synthetic truth (make bench).",
            "data": {"source": "synthetic", "scenario": scenarios[0], "n": n},
            "time_zero": ["decision"],
            "outcomes": {"crs": {"grade3": False}},
            "estimators": [dict(e) for e in BENCH_ESTIMATORS],
            "evaluation": {"truth_metrics": True},
            "explanation": {"shap": False, "subgroup_rules": False},
            "sweep": {
                "scenarios": list(scenarios),
                "sizes": [n],
                "seeds": list(range(1, seeds + 1)),
            },
        }
    )


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark grid as a sweep on a local dask cluster (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--scenarios", nargs="+", default=list(BENCH_SCENARIOS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("experiments/benchmarks/synthetic_truth"))
    args = parser.parse_args(argv)
    command = (
        f"python -m benchmarks.bench_synthetic --n {args.n} --seeds {args.seeds} "
        f"--scenarios {' '.join(args.scenarios)} --workers {args.workers} --out {args.out}"
    )
    config = bench_config(args.n, args.seeds, args.scenarios)
    result = run_sweep(
        config, workers=args.workers, out_dir=args.out, command=command, progress=True
    )
    print(result.summary.to_string(index=False))


if __name__ == "__main__":
    main()
