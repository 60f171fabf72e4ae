"""Trial for issue 10: equal-weight averages of the OS learners against the synthetic truth.

    python -m benchmarks.model_average_trial --seeds 1 2 3 4 5 [--n 2000] [--scenario default]

For each seed, draws the synthetic cohort, cross-fits the shared nuisances once and fits four OS
learners with the run's own stages (BCF, the S-learner with gradient-boosted survival, Cox with
interactions, the T-learner with random survival forests) for survival at 12 months and RMST to
24 months. Every subset of two or more learners is averaged with equal weights and scored on the
cohort's true effects: normalized MSE (MSE / variance of the truth), and, for averages that contain
BCF, the coverage of BCF's 95% posterior interval moved to the average and the share of those
intervals excluding 0, and the same for the band the run ships (``widened_band``: BCF's interval
around the average, widened by the members' spread). Prints one JSON row per seed and target, then a table of means over seeds
(docs/model_average.md). The scoring is on the training patients, as for every learner in the
synthetic-truth benchmarks; which average the run ships was chosen from seeds 1-5 and checked on
seeds 6-10.

``--gbsa-params "{max_depth: 3}"`` sets the S-learner's boosting parameters (a variant to measure).

``--crs`` does the same for the three CRS learners of ``configs/default.yaml`` (the CRS BCF, the
CRS causal forest, logistic with interactions; the band from the CRS BCF) and the any-grade CRS
risk difference.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from hte.config import load_config
from hte.estimators.model_average import moved_band, widened_band
from hte.pipeline.stages import (
    fit_analysis_nuisances,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)

ROOT = Path(__file__).resolve().parents[1]
LEARNERS = (
    "[{name: bcf, kind: bcf}, {name: s_learner_gbsa, kind: s_learner, params: {base_learner: "
    "gbsa}}, {name: cox_interaction, kind: cox_interaction}, {name: t_learner_rsf, kind: "
    "t_learner, params: {base_learner: rsf}}]"
)


def os_learners(gbsa_params: str | None = None) -> str:
    """The OS learners; ``gbsa_params`` (a YAML mapping) as the S-learner's boosting parameters."""
    if gbsa_params is None:
        return LEARNERS
    return LEARNERS.replace(
        "{base_learner: gbsa}", f"{{base_learner: gbsa, base_params: {gbsa_params}}}"
    )


TRUTH = {"survival": "true_cate_surv12", "rmst": "true_cate_rmst24"}
BAND_MEMBER = "bcf"
# --crs: the CRS learners of configs/default.yaml against the any-grade CRS risk difference
CRS_LEARNERS = (
    "[{name: crs_bcf, kind: crs_bcf}, {name: crs_causal_forest, kind: crs_causal_forest, params:"
    " {n_estimators: 500}}, {name: logistic_interaction, kind: logistic_interaction, params:"
    " {penalty: 0.1}}]"
)
CRS_TRUTH = {"crs": "true_cate_crs"}
CRS_BAND_MEMBER = "crs_bcf"


def learner_estimates(
    seed: int, n: int, scenario: str, crs: bool = False, gbsa_params: str | None = None
) -> tuple[dict, dict]:
    """target -> learner -> EffectEstimate, and target -> true effects, for one cohort (the OS
    learners and targets, or with ``crs`` the CRS ones)."""
    overrides = [
        f"data.n={n}",
        f"data.scenario={scenario}",
        f"seeds.global={seed}",
        f"estimators={CRS_LEARNERS if crs else os_learners(gbsa_params)}",
        "evaluation.model_average=null",
    ]
    if crs:
        overrides.append("outcomes.crs.grade3=false")  # the any-grade CRS target only
    config = load_config(ROOT / "configs" / "default.yaml", overrides)
    cohort, _ = prepare_cohort(config)
    data = prepare_analysis(cohort, config.time_zero[0])
    fit_analysis_nuisances(data, config)
    estimates: dict[str, dict] = {}
    for fit in fit_estimators(data, config):
        if fit.error is not None:
            raise RuntimeError(f"{fit.key}: {fit.error}")
        estimates.setdefault(fit.target, {})[fit.estimator] = fit.estimate
    truth = {t: data.cohort[c].to_numpy(float) for t, c in (CRS_TRUTH if crs else TRUTH).items()}
    return estimates, truth


def average_scores(
    estimates: dict, truth: np.ndarray, band_member: str = BAND_MEMBER
) -> dict[str, dict]:
    """Per subset of learners ('a+b+...'): nMSE of the average and, with the band member (BCF)
    in it, the moved band's coverage and share excluding 0."""
    var = float(np.var(truth))
    out = {}
    names = sorted(estimates)
    for size in range(1, len(names) + 1):
        for subset in itertools.combinations(names, size):
            point = np.mean([estimates[k].effect for k in subset], axis=0)
            # no nMSE under a null effect: the truth has no spread to normalize by
            nmse = np.mean((point - truth) ** 2) / var if var > 1e-12 else None
            row = {"nmse": None if nmse is None else round(float(nmse), 3)}
            if band_member in subset:
                own = estimates[band_member]
                lo, hi = moved_band(point, own.effect, own.lower, own.upper)
                row["coverage"] = round(float(np.mean((lo <= truth) & (truth <= hi))), 3)
                row["excludes_0"] = round(float(np.mean((lo > 0) | (hi < 0))), 3)
                if size > 1:  # the band the run ships: widened by the members' spread
                    spread = [estimates[k].effect for k in subset]
                    lo, hi = widened_band(
                        point, own.effect, own.lower, own.upper, spread, own.alpha
                    )
                    row["coverage_total"] = round(float(np.mean((lo <= truth) & (truth <= hi))), 3)
                    row["excludes_0_total"] = round(float(np.mean((lo > 0) | (hi < 0))), 3)
            out["+".join(subset)] = row
    return out


def summary(rows: list[dict]) -> str:
    """Markdown table of means over seeds per target and subset, best nMSE first."""
    lines = [
        "| target | learners averaged | seeds | nMSE | moved-band coverage | excluding 0 |"
        " widened-band coverage | excluding 0 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for target in dict.fromkeys(r["target"] for r in rows):
        per_target = [r for r in rows if r["target"] == target]
        if not per_target:
            continue
        subsets = per_target[0]["scores"]
        means = {
            k: float(
                np.mean(
                    [
                        np.nan if r["scores"][k]["nmse"] is None else r["scores"][k]["nmse"]
                        for r in per_target
                    ]
                )
            )
            for k in subsets
        }
        for k in sorted(means, key=lambda k: (np.isnan(means[k]), means[k], k)):
            cells = []
            for key in ("coverage", "excludes_0", "coverage_total", "excludes_0_total"):
                values = [r["scores"][k].get(key) for r in per_target]
                cells.append(f"{np.mean(values):.3f}" if None not in values else "-")
            lines.append(
                f"| {target} | {k} | {len(per_target)} | "
                f"{'-' if np.isnan(means[k]) else f'{means[k]:.3f}'} | {' | '.join(cells)} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--crs", action="store_true", help="the CRS learners and target instead")
    parser.add_argument(
        "--gbsa-params",
        help="the S-learner's boosting parameters, a YAML mapping: '{max_depth: 3}'",
    )
    args = parser.parse_args()
    band_member = CRS_BAND_MEMBER if args.crs else BAND_MEMBER
    rows = []
    for seed in args.seeds:
        estimates, truth = learner_estimates(
            seed, args.n, args.scenario, crs=args.crs, gbsa_params=args.gbsa_params
        )
        for target in truth:
            row = {"n": args.n, "scenario": args.scenario, "seed": seed, "target": target}
            row["scores"] = average_scores(estimates[target], truth[target], band_member)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(summary(rows))


if __name__ == "__main__":
    main()
