"""Trial for issue 10: the causal survival forest read plainly or local-linearly, against truth.

    python -m benchmarks.local_linear_trial --seeds 1 2 3 4 5 [--n 2000] [--scenario default]
        [--lambdas 0.1 1.0]

For each seed, draws the synthetic cohort, cross-fits the shared nuisances once and fits the
causal survival forest (the default run's settings: 2,000 trees, leaves of 15) for survival at 12
months and RMST to 24 months with the run's own stages, once plainly and once per local-linear
ridge penalty and number of slope covariates (``local_linear``, ``local_linear_variables``;
``hte.estimators.histogram_local_linear``). Scores each on the
cohort's true effects: normalized MSE, the coverage of its 95% intervals and their mean width,
the share of intervals excluding 0. One JSON row per seed, target and reading, then means.
The scoring is on the training patients, as for every learner in the synthetic-truth benchmarks.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hte.config import load_config
from hte.pipeline.stages import (
    fit_analysis_nuisances,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)

ROOT = Path(__file__).resolve().parents[1]
TRUTH = {"survival": "true_cate_surv12", "rmst": "true_cate_rmst24"}


def forests(lambdas: list[float], variables: list[int]) -> str:
    """The estimators override: the plain forest and one local-linear forest per penalty and
    number of slope covariates (0: every covariate)."""
    specs = ["{name: plain, kind: causal_survival_forest}"]
    specs += [
        f"{{name: 'local_linear_{lam:g}_{k}', kind: causal_survival_forest, "
        f"params: {{local_linear: {lam}, local_linear_variables: {k or 'null'}}}}}"
        for lam in lambdas
        for k in variables
    ]
    return "[" + ", ".join(specs) + "]"


def scores(estimate, truth: np.ndarray) -> dict:
    """nMSE, coverage, mean width and share excluding 0 of one estimate."""
    effect, lo, hi = estimate.effect, estimate.lower, estimate.upper
    var = float(np.var(truth))
    return {
        "nmse": round(float(np.mean((effect - truth) ** 2) / var), 3) if var > 1e-12 else None,
        "coverage": round(float(np.mean((lo <= truth) & (truth <= hi))), 3),
        "width": round(float(np.mean(hi - lo)), 4),
        "excludes_0": round(float(np.mean((lo > 0) | (hi < 0))), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument(
        "--variables",
        type=int,
        nargs="+",
        default=[3],
        help="slope covariates: the forest's most split-on (0: every covariate)",
    )
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        overrides = [
            f"data.n={args.n}",
            f"data.scenario={args.scenario}",
            f"seeds.global={seed}",
            f"estimators={forests(args.lambdas, args.variables)}",
            "evaluation.model_average=null",
            "outcomes.crs.enabled=false",
        ]
        config = load_config(ROOT / "configs" / "default.yaml", overrides)
        cohort, _ = prepare_cohort(config)
        data = prepare_analysis(cohort, config.time_zero[0])
        fit_analysis_nuisances(data, config)
        start = time.perf_counter()
        for fit in fit_estimators(data, config):
            if fit.error is not None:
                raise RuntimeError(f"{fit.key}: {fit.error}")
            truth = data.cohort[TRUTH[fit.target]].to_numpy(float)
            row = {"seed": seed, "n": args.n, "scenario": args.scenario, "target": fit.target}
            row |= {"reading": fit.estimator, **scores(fit.estimate, truth)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(f"seed {seed}: fits {time.perf_counter() - start:.1f} s", flush=True)
    print("| target | reading | seeds | nMSE | coverage | mean width | excluding 0 |")
    print("|---|---|---|---|---|---|---|")
    for target in TRUTH:
        for reading in dict.fromkeys(r["reading"] for r in rows):
            sel = [r for r in rows if r["target"] == target and r["reading"] == reading]
            if not sel:
                continue
            mean = {k: np.mean([r[k] for r in sel]) for k in ("coverage", "width", "excludes_0")}
            nmse = [r["nmse"] for r in sel if r["nmse"] is not None]
            print(
                f"| {target} | {reading} | {len(sel)} | "
                f"{f'{np.mean(nmse):.3f}' if nmse else '-'} | {mean['coverage']:.3f} | "
                f"{mean['width']:.4f} | {mean['excludes_0']:.3f} |"
            )


if __name__ == "__main__":
    main()
