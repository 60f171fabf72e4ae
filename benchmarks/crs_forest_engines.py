"""The CRS causal forest's two engines against the synthetic truth: accuracy, coverage and CPU.

python -m benchmarks.crs_forest_engines [--seeds 1 2 3 4 5] [--n 2000]

For each seed, the default and the null_effect cohorts (n = 2,000) are drawn; the CRS causal
forest (any-grade CRS, 500 trees, the run's other settings) is fitted with hte's histogram
builder on the analysis's shared nuisances (the pipeline's path) and with econml's
``CausalForestDML`` (its own random-forest nuisances). Each row: normalized MSE against the
cohort's ``true_cate_crs``, 95% coverage, the share of intervals excluding 0 and the fit's CPU
seconds (``time.process_time``; the shared nuisances' cross-fit is not in the histogram figure,
since the run fits them once for every CRS consumer). Prints one line per fit and the means.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.bcf_trial import cohort
from hte.estimators.crs_forest import CRSCausalForest
from hte.estimators.shared_nuisances import fit_nuisances


def fit_scores(data, seed: int, engine: str) -> dict:
    truth = data.cohort["true_cate_crs"].to_numpy()
    kwargs = {}
    if engine == "histogram":
        kwargs["nuisances"] = fit_nuisances(
            data.effect_data, crs_outcomes=("crs",), random_state=seed
        )
    clock = time.process_time()
    model = CRSCausalForest(forest_engine=engine, n_estimators=500, random_state=seed)
    model.fit(data.effect_data, **kwargs)
    cpu = time.process_time() - clock
    effect = model.predict(data.X)
    lo, hi = model.predict_interval(data.X)
    spread = np.var(truth)
    return {
        "nmse": np.mean((effect - truth) ** 2) / spread if spread > 0 else np.nan,
        "coverage": np.mean((lo <= truth) & (truth <= hi)),
        "excluding_0": np.mean((lo > 0) | (hi < 0)),
        "cpu_seconds": cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    rows: dict[tuple[str, str], list[dict]] = {}
    for scenario in ("default", "null_effect"):
        for seed in args.seeds:
            data = cohort(scenario, args.n, seed)
            for engine in ("histogram", "econml"):
                row = fit_scores(data, seed, engine)
                rows.setdefault((scenario, engine), []).append(row)
                shown = " ".join(f"{k} {v:.3f}" for k, v in row.items())
                print(f"{scenario} seed {seed} {engine}: {shown}", flush=True)
    print("\n| scenario | engine | seeds | nMSE | coverage | excluding 0 | fit CPU s |")
    print("|---|---|---|---|---|---|---|")
    for (scenario, engine), fits in rows.items():
        mean = {k: np.nanmean([f[k] for f in fits]) for k in fits[0]} if fits else {}
        nmse = "-" if np.isnan(mean["nmse"]) else f"{mean['nmse']:.3f}"
        print(
            f"| {scenario} | {engine} | {len(fits)} | {nmse} | {mean['coverage']:.3f} | "
            f"{mean['excluding_0']:.3f} | {mean['cpu_seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
