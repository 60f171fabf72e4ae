"""Trial of Bayesian causal forests (stochtree's BCF) for issue 10, item 2, against the synthetic truth.

BCF models y = mu(x) + tau(x) w + noise with BART priors that shrink tau toward a constant, and
its posterior gives per-patient intervals. It is tried here, outside the package, on:

* CRS (any grade): y = the 0/1 CRS flag, so tau is the risk difference (a linear-probability BCF);
* OS, survival at 12 months and RMST to 24 months: y = the cross-fitted AIPCW pseudo-outcome Y*
  of hte.estimators.nuisance, whose conditional mean given (x, w) is E[f(T) | x, w], so tau is the
  CATE on the same scale as the causal survival forest's.

It runs the shipped estimators (``hte.estimators.bcf``, defaults unless --num-mcmc / --mu-trees
/ --tau-trees say otherwise). Scored against the cohort's ``true_cate_*`` columns: normalized MSE
(MSE / variance of the truth), coverage of the 95% posterior interval, share of intervals
excluding 0, wall seconds (nuisances included):

    python -m benchmarks.bcf_trial --seeds 1 2 3 --n 2000 --scenario default

Prints a markdown table of means over seeds and appends one JSON row per seed and target to
``experiments/benchmarks/bcf_trial.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hte.config import load_config
from hte.estimators.bcf import BayesianCausalForest, CRSBayesianCausalForest
from hte.pipeline.stages import design_diagnostics, prepare_analysis, prepare_cohort

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {  # target -> (truth column, horizon)
    "crs": ("true_cate_crs", None),
    "survival": ("true_cate_surv12", 12.0),
    "rmst": ("true_cate_rmst24", 24.0),
}


def cohort(scenario: str, n: int, seed: int):
    overrides = [f"data.scenario={scenario}", f"data.n={n}", f"seeds.global={seed}"]
    config = load_config(ROOT / "configs" / "default.yaml", overrides)
    frame, _ = prepare_cohort(config)
    data = prepare_analysis(frame, config.time_zero[0])
    design_diagnostics(data, seed)
    return data


def fit_and_predict(data, target: str, horizon: float | None, seed: int, settings: dict):
    """The shipped estimator (hte.estimators.bcf) with ``settings`` over its defaults: posterior
    mean and 95% interval for every patient of the cohort."""
    if target == "crs":
        est = CRSBayesianCausalForest(random_state=seed, **settings)
        est.fit(data.X, crs=data.cohort["crs"].to_numpy(int), treatment=data.treatment)
    else:
        t, d = data.survival_outcome()
        est = BayesianCausalForest(target=target, horizon=horizon, random_state=seed, **settings)
        est.fit(data.X, time=t, event=d, treatment=data.treatment)
    lo, hi = est.predict_interval(data.X, alpha=0.05)
    return est.predict(data.X), (lo, hi)


def pseudo_outcome_cases(seed: int, n: int = 2000, scenario: str = "default"):
    """For survival at 12 months and RMST to 24 months of one cohort: (target, X, W, Y*, e,
    plug-in arm means (mu1, mu0, m), true effect), from the shared nuisances cross-fitted once;
    the inputs the BCF sampler gets in ``hte.estimators.bcf`` (e clipped at 0.01)."""
    from hte.estimators.shared_nuisances import fit_nuisances

    data = cohort(scenario, n, seed)
    t, d = data.survival_outcome()
    X = np.asarray(data.X, dtype=float)
    W = np.asarray(data.treatment, dtype=float)
    nuisances = fit_nuisances(data.effect_data, horizons=(12.0, 24.0), random_state=seed)
    for target in ("survival", "rmst"):
        column, horizon = TARGETS[target]
        out = nuisances.pseudo_outcomes(t, d, target=target, horizon=horizon)
        e = np.clip(out["e"], 0.01, 0.99)
        plug_in = (out["mu1"], out["mu0"], out["m"])
        truth = data.cohort[column].to_numpy(float)
        yield target, X, W, out["pseudo_outcome"], e, plug_in, truth


def print_rows_per_seed(rows_for_seed, argv: list[str], usage: str) -> None:
    """The command line of the trials that take seeds: one JSON line per row of each seed."""
    if not argv:
        raise SystemExit(usage)
    for seed in (int(s) for s in argv):
        for row in rows_for_seed(seed):
            print(json.dumps(row), flush=True)


def posterior_scores(model, X, W, e, truth) -> dict:
    """nMSE of a sampled BCF's posterior-mean effect, coverage of its 95% interval and the
    share of intervals excluding 0, rounded to 3 digits."""
    draws = model.predict(X, np.zeros(len(W)), e, terms="cate", type="posterior")
    draws = np.asarray(draws, dtype=float).reshape(len(W), -1)
    band = tuple(np.quantile(draws, [0.025, 0.975], axis=1))
    scores = score(draws.mean(axis=1), band, truth)
    return {k: round(scores[k], 3) for k in ("nmse", "coverage", "excludes_0")}


def score(pred, band, truth) -> dict:
    lo, hi = band
    var = float(np.var(truth))
    return {
        "nmse": float(np.mean((pred - truth) ** 2) / var) if var > 1e-12 else None,
        "coverage": float(np.mean((lo <= truth) & (truth <= hi))),
        "excludes_0": float(np.mean((lo > 0) | (hi < 0))),
        "truth_sd": float(np.std(truth)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--num-mcmc", type=int, help="retained draws (default: the class's)")
    parser.add_argument("--mu-trees", type=int, help="prognostic trees (default: the class's)")
    parser.add_argument("--tau-trees", type=int, help="effect trees (default: the class's)")
    parser.add_argument("--variance-trees", type=int, help="noise-variance trees (default: 0)")
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--out", type=Path, default=ROOT / "experiments/benchmarks/bcf_trial.jsonl")
    parser.add_argument("--summary-only", action="store_true", help="print the table of --out")
    args = parser.parse_args()
    if args.summary_only:
        print(summary(args.out))
        return
    names = ("num_mcmc", "mu_trees", "tau_trees", "variance_trees")
    settings = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    rows = []
    for seed in args.seeds:
        data = cohort(args.scenario, args.n, seed)
        for target in args.targets:
            truth_col, horizon = TARGETS[target]
            clock = time.perf_counter()
            pred, band = fit_and_predict(data, target, horizon, seed, settings)
            row = {
                "scenario": args.scenario,
                "n": args.n,
                "seed": seed,
                "target": target,
                "settings": settings or "defaults",
                **score(pred, band, data.cohort[truth_col].to_numpy(float)),
                "seconds": round(time.perf_counter() - clock, 1),
            }
            rows.append(row)
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    print(summary(args.out))


_MEANS = ("coverage", "excludes_0", "seconds")


def summary(path: Path) -> str:
    """Markdown table of means over seeds of every (settings, scenario, target) in ``path``."""
    groups: dict[tuple, list[dict]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        key = (json.dumps(row.get("settings", "?")), row["scenario"], row["n"], row["target"])
        groups.setdefault(key, []).append(row)
    lines = [
        "| settings | scenario | n | target | seeds | nMSE | 95% coverage | excl. 0 | seconds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (settings, scenario, n, target), rows in sorted(groups.items()):
        nmse = [r["nmse"] for r in rows if r["nmse"] is not None]
        cov, excl, secs = (float(np.mean([r[k] for r in rows])) for k in _MEANS)
        lines.append(
            f"| {settings.strip(chr(34))} | {scenario} | {n} | {target} | {len(rows)} | "
            f"{f'{np.mean(nmse):.3f}' if nmse else '-'} | {cov:.3f} | {excl:.3f} | {secs:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
