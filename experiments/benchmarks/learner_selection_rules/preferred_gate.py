"""The slope gate with and without its own test for the prespecified model average.

python experiments/benchmarks/learner_selection_rules/preferred_gate.py ROWS.jsonl [...]

Recomputes, from the recorded held-out calibration-slope z of every learner in the rows of
``benchmarks.bench_selection``, what two rules show for the OS targets (where the run's model
average is the prespecified learner):

* "even": Bonferroni over all learners at a family-wise one-sided 2.5% (the rule until
  2026-12-07). When any learner passes, the prespecified average is shown in its place (the
  run's rule does so unless the average's held-out loss is worse by more than 2 SE, which the
  rows do not record; every recorded pick with a passing learner in these rows is the average);
* "weighted": the average tested first at 80% of the level (z > 2.05), the other learners at
  the rest, Bonferroni over them; a passing other learner again brings in the average.

Prints per scenario, folds and target: how often a learner is shown, the shown model's mean
nMSE against the truth (the constant's when it is shown), and the average's per-patient band
coverage where it is shown. Per-row picks follow.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from scipy.stats import norm

from hte.config.sections import HeldoutFolds

AVERAGE = "model_average"
SKIP = {"constant", "stack"}
LEVEL, SHARE = 0.025, 0.8
RUN_FOLDS_LABEL = f"the run's (OS {HeldoutFolds().os})"  # rows of bench_selection --folds 0


def learners(row: dict) -> list[str]:
    return [k for k in row["calibration_slope_z"] if k not in SKIP]


def even_pick(row: dict) -> str:
    z = row["calibration_slope_z"]
    bound = norm.ppf(1 - LEVEL / len(learners(row)))
    return AVERAGE if any(z[k] > bound for k in learners(row)) else "constant"


def weighted_pick(row: dict) -> str:
    z = row["calibration_slope_z"]
    others = [k for k in learners(row) if k != AVERAGE]
    if z[AVERAGE] > norm.ppf(1 - LEVEL * SHARE):
        return AVERAGE
    bound = norm.ppf(1 - LEVEL * (1 - SHARE) / len(others))
    return AVERAGE if any(z[k] > bound for k in others) else "constant"


def main(paths: list[str]) -> None:
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line]
    rows = [r for r in rows if "error" not in r and AVERAGE in r.get("calibration_slope_z", {})]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["scenario"], r.get("n_folds", 2), r["target"])].append(r)
    print(
        "| scenario | folds | target | cohorts | rule | learner shown | shown nMSE | average's "
        "band coverage where shown |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (scenario, folds, target), group in sorted(groups.items()):
        for name, pick in (("even", even_pick), ("weighted", weighted_pick)):
            picks = [pick(r) for r in group]
            shown = sum(p != "constant" for p in picks)
            nmse = [r["nmse"].get(p, math.nan) for r, p in zip(group, picks, strict=True)]
            cover = [
                r["own_coverage"][AVERAGE]
                for r, p in zip(group, picks, strict=True)
                if p == AVERAGE
            ]
            nmse_text = "-" if scenario == "null_effect" else f"{sum(nmse) / len(nmse):.3f}"
            cover_text = f"{sum(cover) / len(cover):.3f}" if cover else "-"
            print(
                f"| {scenario} | {folds or RUN_FOLDS_LABEL} | {target} | {len(group)} | {name} | {shown}/{len(group)}"
                f" | {nmse_text} | {cover_text} |"
            )
    print()
    for r in sorted(
        rows, key=lambda r: (r["scenario"], r.get("n_folds", 2), r["target"], r["seed"])
    ):
        z = r["calibration_slope_z"]
        print(
            f"{r['scenario']} folds={r.get('n_folds', 2)} seed={r['seed']} {r['target']}: "
            f"average z {z[AVERAGE]:.2f}, largest other z {max(z[k] for k in learners(r) if k != AVERAGE):.2f}; "
            f"even -> {even_pick(r)}, weighted -> {weighted_pick(r)} (recorded: {r['chosen']})"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
