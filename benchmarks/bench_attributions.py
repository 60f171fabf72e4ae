"""Benchmark: SHAP attributions of fitted CATE models for 1,000 patients (goal: under 10 s on 2 cores).

    python -m benchmarks.bench_attributions [--n 2000] [--n-explain 1000] [--repeats 3]

Fits the causal survival forest (12-month survival) and the CRS causal forest on the default
synthetic cohort, then times ``hte.explain.attributions.explain_cate`` on ``--n-explain`` patients
(surrogate + TreeSHAP, 5-fold cross-validated fidelity included) and checks additivity. Writes
``experiments/benchmarks/attributions_speed.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path("experiments/benchmarks/attributions_speed.md")


def _cohort(n: int, seed: int):
    from hte.data.simulate import simulate_cohort
    from hte.design.design_matrix import build_design_matrix, treatment_array

    cohort = simulate_cohort(n, seed, "default")
    design = build_design_matrix(cohort)
    return cohort, design.X, treatment_array(cohort)


def _fitted_models(cohort, X, W, seed: int) -> dict:
    from hte.estimators import CausalSurvivalForest, CRSCausalForest

    time_, event = cohort["os_months"].to_numpy(), cohort["death"].to_numpy(dtype=bool)
    csf = CausalSurvivalForest(target="survival", horizon=12.0, random_state=seed)
    csf.fit(X, time=time_, event=event, treatment=W)
    crs = CRSCausalForest(random_state=seed).fit(X, cohort["crs"].to_numpy(dtype=int), W)
    return {"causal survival forest (12-month survival)": csf, "CRS causal forest": crs}


def time_attributions(model, X, repeats: int, seed: int) -> dict:
    """Wall and CPU seconds of ``explain_cate`` (best and median of ``repeats``), fidelity and the
    largest additivity error."""
    from hte.explain.attributions import explain_cate

    walls, cpus = [], []
    attr = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        attr = explain_cate(model, X, random_state=seed)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    additivity = float(np.max(np.abs(attr.base_value + attr.values.sum(axis=1) - attr.effect)))
    return {
        "wall_median": float(np.median(walls)),
        "wall_best": float(np.min(walls)),
        "cpu_median": float(np.median(cpus)),
        "fidelity_r2_cv": attr.surrogate_r2,
        "additivity_error": additivity,
    }


def _markdown(rows: dict, args, n_features: int) -> str:
    lines = [
        "# SHAP attributions: speed for 1,000 patients",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m "
        f"benchmarks.bench_attributions --n {args.n} --n-explain {args.n_explain} --repeats "
        f"{args.repeats}` (Python {platform.python_version()}, shared 2-core machine: timings are "
        "pessimistic). Default synthetic cohort, models fitted on all patients, attributions of "
        f"{args.n_explain} patients x {n_features} features: boosted-tree surrogate of the model's "
        "CATE, exact TreeSHAP, 5-fold cross-validated fidelity R^2 included in the time.",
        "",
        "| model | wall s (median) | wall s (best) | CPU s | fidelity R^2 (CV) | max additivity error |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['wall_median']:.2f} | {r['wall_best']:.2f} | {r['cpu_median']:.2f} | "
            f"{r['fidelity_r2_cv']:.3f} | {r['additivity_error']:.1e} |"
        )
    worst = max(r["wall_median"] for r in rows.values())
    verdict = "meets" if worst < 10 else "misses"
    lines += [
        "",
        f"Goal: under 10 s for 1,000 patients on 2 cores: **{verdict}** it "
        f"(slowest median {worst:.2f} s).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_attributions")
    parser.add_argument("--n", type=int, default=2000, help="cohort size the models are fitted on")
    parser.add_argument("--n-explain", type=int, default=1000, help="patients explained")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    cohort, X, W = _cohort(args.n, args.seed)
    models = _fitted_models(cohort, X, W, args.seed)
    explain = X.iloc[: args.n_explain]
    rows = {
        name: time_attributions(m, explain, args.repeats, args.seed) for name, m in models.items()
    }
    text = _markdown(rows, args, X.shape[1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
