"""The Subgroups and policy section: subgroup rule trees, benefit-harm policy trees and
prespecified subgroups."""

from __future__ import annotations

from typing import Any

from hte.report import blocks as b
from hte.report.format import DASH, effect, interval, is_number, num, pct, pvalue, short_unit
from hte.report.loader import RunFolder
from hte.report.sections.common import FIDELITY_WARN, analyses_of, section, target_names, with_ci


def subgroups_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = analyses_of(run)
    reason = (run.metrics.get("explanation") or {}).get("subgroup_rules")
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        sub = a.get("subgroups")
        if not isinstance(sub, dict):
            blocks.append(
                b.missing(
                    "subgroup rules, policy trees and prespecified subgroups",
                    reason if isinstance(reason, str) else None,
                )
            )
            continue
        blocks += _rule_blocks(sub.get("rules"), target_names(run), run.level)
        blocks += _policy_blocks(sub.get("policy"), run.level)
        blocks += _prespecified_blocks(sub.get("prespecified"), target_names(run), run.level)
    if not analyses:
        blocks.append(b.missing("subgroups"))
    return section(
        "subgroups",
        "Subgroups and policy",
        "Shallow rule trees that describe who gains most, a benefit-harm policy tree, "
        "and prespecified subgroups.",
        blocks,
    )


def _rule_blocks(rules: Any, names: dict[str, str], level: str) -> list[dict]:
    if not isinstance(rules, dict) or not rules:
        return [b.missing("subgroup rule trees")]
    out = []
    for target, tree in rules.items():
        tree = tree or {}
        out.append(
            b.h3(
                f"Who gains: {names.get(target, target)} — rules from {tree.get('estimator', '?')}"
                f" (depth {tree.get('max_depth', DASH)}, fidelity R² "
                f"{num(tree.get('fidelity_r2'))})"
            )
        )
        rows = [
            [
                lf.get("rule", DASH),
                str(lf.get("n", DASH)),
                pct(lf.get("share"), 0),
                effect(lf.get("mean_cate"), target),
                with_ci(lf.get("estimate"), lf.get("lower"), lf.get("upper"), target),
            ]
            for lf in tree.get("leaves") or []
        ]
        out.append(
            b.table(
                [
                    "subgroup (rule)",
                    "n",
                    "share",
                    "mean CATE",
                    f"doubly robust estimate ({short_unit(target)}, {level} CI)",
                ],
                rows,
                reading=_fidelity_reading(
                    tree.get("fidelity_r2"),
                    "The rules describe "
                    "the estimator's per-patient effects with a shallow tree; each leaf's "
                    "own estimate and interval come from the doubly robust scores.",
                ),
            )
        )
    return out


def _fidelity_reading(r2: Any, text: str) -> str:
    if is_number(r2) and r2 < FIDELITY_WARN:
        return (
            text
            + f" The tree reproduces only R² = {r2:.2f} of the estimator's effects: read it loosely."
        )
    return text


def _policy_blocks(policy: Any, level: str) -> list[dict]:
    if not isinstance(policy, dict) or not policy.get("trees"):
        return [b.missing("benefit-harm policy trees")]
    units = policy.get("units") or ""
    out = [
        b.h3(
            f"Policy: who would get CAR-T when OS gain is weighed against CRS "
            f"({policy.get('os_target', '?')} vs {policy.get('crs_target', '?')})"
        )
    ]
    for tree in policy["trees"]:
        rows = [
            [
                lf.get("rule", DASH),
                str(lf.get("n", DASH)),
                str(lf.get("action", DASH)),
                f"{num(lf.get('net_benefit'), 3)} ({interval(lf.get('lower'), lf.get('upper'), 3)})",
            ]
            for lf in tree.get("leaves") or []
        ]
        value = tree.get("value") or {}
        for key, name in (
            ("policy", "value of this policy (in-sample, optimistic)"),
            ("policy_cross_validated", "value of the tree search, held out"),
            ("all_cart", "everyone CAR-T"),
            ("all_tec", "everyone teclistamab"),
        ):
            if key not in value:
                continue
            v = value.get(key) or {}
            rows.append(
                [
                    name,
                    "",
                    "",
                    f"{num(v.get('estimate'), 3)} ({interval(v.get('lower'), v.get('upper'), 3)})",
                ]
            )
        out.append(
            b.table(
                ["leaf (rule)", "n", "action", f"net benefit {units} ({level} CI)"],
                rows,
                caption=f"CRS weight {num(tree.get('crs_weight'))}: CAR-T for "
                f"{pct(tree.get('share_cart'), 0)} of patients",
                reading="Net benefit is OS gain minus the CRS weight times the extra CRS risk, "
                "relative to teclistamab for all. The tree was searched on these patients, so its "
                "in-sample value is optimistic; the held-out value (each patient's arm from a tree "
                "searched without them) is the honest one. A policy is a description of the data "
                "under a chosen weight, not a treatment rule.",
            )
        )
    return out


def _prespecified_blocks(rows_in: Any, names: dict[str, str], level: str) -> list[dict]:
    if not isinstance(rows_in, list) or not rows_in:
        return [b.missing("prespecified subgroups")]
    rows = []
    for r in rows_in:
        t = r.get("target", "")
        cate = r.get("mean_cate") or {}
        rows.append(
            [
                r.get("subgroup", DASH),
                names.get(t, t),
                f"{r.get('n', DASH)} ({r.get('n_cart', DASH)}/{r.get('n_tec', DASH)})",
                with_ci(r.get("estimate"), r.get("lower"), r.get("upper"), t),
                effect(r.get("complement_estimate"), t),
                with_ci(
                    r.get("difference"), r.get("difference_lower"), r.get("difference_upper"), t
                ),
                pvalue(r.get("difference_p_value")),
                ", ".join(f"{k} {effect(v, t)}" for k, v in cate.items()) or DASH,
                effect(r.get("truth"), t),
                r.get("note") or "",
            ]
        )
    return [
        b.h3("Prespecified subgroups"),
        b.table(
            [
                "subgroup",
                "target",
                "n (CAR-T/tec)",
                f"effect ({level} CI)",
                "rest of cohort",
                f"difference ({level} CI)",
                "p",
                "mean CATE by estimator",
                "truth",
                "note",
            ],
            rows,
            reading="Each prespecified subgroup against the rest of the cohort. Subgroup p-values are "
            "fragile (several are tested): read the differences and their intervals, not the stars.",
            numeric_from=2,
            numeric_to=7,
        ),
    ]
