"""Compare the loss gate and the slope gate on the rows of ``benchmarks.bench_selection``.

python experiments/benchmarks/learner_selection_rules/compare_gates.py [ROWS.jsonl ...]

Per row (one cohort and target) each rule picks what it would show, recomputed from the recorded
held-out statistics: "loss" = the lowest-DR-loss learner if it beats the constant by more than 2 SE
of the paired difference (the run's rule until now, also recorded by the bench as ``chosen``);
"slope" = the lowest-DR-loss learner whose held-out calibration-slope z exceeds the one-sided
Bonferroni bound for the number of learners (family-wise 2.5%). Prints, per scenario and target:
the share of cohorts where a learner is shown, the shown model's mean nMSE against the truth, its
per-patient interval coverage and the share of its intervals excluding zero.
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from scipy.stats import norm

HERE = Path(__file__).parent
SKIP = {"constant", "stack"}


def slope_pick(row: dict) -> str:
    learners = sorted((k for k in row["dr_loss"] if k not in SKIP), key=row["dr_loss"].get)
    bound = norm.ppf(1 - 0.025 / max(len(learners), 1))
    z = row.get("calibration_slope_z", {})
    return next((k for k in learners if z.get(k, 0.0) > bound), "constant")


def loss_pick(row: dict) -> str:
    return row["chosen"]


def figures(row: dict, pick: str) -> tuple[float, float, float]:
    nmse = row["nmse"].get(pick, math.nan)
    if pick == "constant":
        same = row["chosen"] == "constant"
        cov = row["shown_coverage"] if same else math.nan
        excl = row["shown_excluding_zero"] if same else math.nan
    else:
        cov = row["own_coverage"].get(pick, math.nan)
        excl = row.get("own_excluding_zero", {}).get(pick, math.nan)
    return nmse, cov, excl


def mean(xs) -> float:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else math.nan


def main(paths: list[str]) -> None:
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line]
    rows = [r for r in rows if "error" not in r]
    groups = defaultdict(list)
    for r in rows:
        groups[(r["scenario"], r["target"])].append(r)
    print(
        "| scenario | target | cohorts | gate | learner shown | shown nMSE | shown coverage "
        "| intervals excluding 0 | picks |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (scenario, target), rs in sorted(groups.items()):
        for gate, rule in (("loss", loss_pick), ("slope", slope_pick)):
            picks = [rule(r) for r in rs]
            figs = [figures(r, p) for r, p in zip(rs, picks, strict=True)]
            shown = sum(p != "constant" for p in picks)
            print(
                f"| {scenario} | {target} | {len(rs)} | {gate} | {shown}/{len(rs)} | "
                f"{mean(f[0] for f in figs):.3f} | {mean(f[1] for f in figs):.3f} | "
                f"{mean(f[2] for f in figs):.3f} | {', '.join(picks)} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:] or [str(p) for p in sorted(HERE.glob("*/rows.jsonl"))])
