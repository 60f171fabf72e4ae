"""Would showing the held-out stack help? Recomputed from the rows of ``benchmarks.bench_selection``.

python experiments/benchmarks/learner_selection_rules/stack_gate.py > \
    experiments/benchmarks/learner_selection_rules/stack_gate.md

Per row (one cohort and target): "slope" is the run's rule (``compare_gates.slope_pick``); "slope
+ stack" shows the cross-fitted stack instead of the slope gate's learner when the gate found a
learner and the stack's held-out DR loss is lower than that learner's; "slope + stack (z)" also
asks the stack to beat the constant by 2 SE of the paired loss difference. The stack's weights for
each fold were fitted on the other folds, so its held-out loss is honest. Prints the shown nMSE
against the truth (mean over cohorts) and the picks.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from compare_gates import mean, slope_pick

HERE = Path(__file__).parent


def stack_pick(row: dict) -> str:
    learner = slope_pick(row)
    if learner == "constant":
        return learner
    return "stack" if row["dr_loss"]["stack"] < row["dr_loss"][learner] else learner


def stack_z_pick(row: dict) -> str:
    pick = stack_pick(row)
    return pick if pick != "stack" or row["diff_vs_constant_z"]["stack"] < -2 else slope_pick(row)


def main() -> None:
    rows = [
        json.loads(line)
        for p in sorted(HERE.glob("*/rows.jsonl"))
        for line in p.read_text().splitlines()
        if line
    ]
    groups = defaultdict(list)
    for r in rows:
        if "error" not in r:
            groups[(r["scenario"], r["n"], r["target"])].append(r)
    print("| scenario | n | target | cohorts | rule | learner shown | shown nMSE | picks |")
    print("|---|---|---|---|---|---|---|---|")
    rules = (("slope", slope_pick), ("slope + stack", stack_pick), ("slope + stack (z)", stack_z_pick))
    for (scenario, n, target), rs in sorted(groups.items()):
        for name, rule in rules:
            picks = [rule(r) for r in rs]
            nmse = mean(r["nmse"].get(p, math.nan) for r, p in zip(rs, picks, strict=True))
            shown = sum(p != "constant" for p in picks)
            print(
                f"| {scenario} | {n} | {target} | {len(rs)} | {name} | {shown}/{len(rs)} | "
                f"{nmse:.3f} | {', '.join(picks)} |"
            )


if __name__ == "__main__":
    main()
