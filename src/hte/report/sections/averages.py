"""The Average effects section: baselines and estimators' averages beside the published
real-world figures and, on synthetic data, the truth."""

from __future__ import annotations

from typing import Any

from hte.report import blocks as b
from hte.report.format import DASH, effect, is_number, num, pct, short_unit, target_name
from hte.report.loader import RunFolder
from hte.report.sections.common import (
    ANALYSIS,
    analyses_of,
    fits_of,
    horizon_of,
    hr_text,
    section,
    target_rank,
    truth_of,
    with_ci,
)

_BASELINES = (
    ("hazard_ratio_iptw", None, "hazard ratio of death", "IPTW Cox"),
    ("ate_survival_iptw_km", "survival", None, "IPTW Kaplan-Meier"),
    ("ate_rmst_iptw_km", "rmst", None, "IPTW Kaplan-Meier"),
    ("ate_crs_aipw", "crs", None, "AIPW"),
    ("ate_crs_g3_aipw", "crs_g3", None, "AIPW"),
)


def averages_section(run: RunFolder) -> dict:
    analyses = analyses_of(run)
    truth = truth_of(run)
    blocks: list[dict] = []
    if not analyses:
        return section("averages", "Average effects", "", [b.missing("analyses")])
    headers = ["measure", "method"] + [f"{label}" for label in analyses]
    headers.append("truth (decision time)" if truth else "truth")
    rows = []
    for key, target, name, method in _BASELINES:
        entries = [(a.get("baselines") or {}).get(key) for a in analyses.values()]
        if not any(entries):
            continue
        if target is None:
            cells = [hr_text(e) for e in entries]
            true = num(truth.get("hazard_ratio"), 2)
        else:
            h = next((e.get("horizon") for e in entries if e), None)
            name = f"{target_name(target, h)} ({short_unit(target)})"
            cells = [
                with_ci(e.get("estimate"), e.get("lower"), e.get("upper"), target) if e else DASH
                for e in entries
            ]
            true = effect(truth.get(f"ate_{target}"), target)
        rows.append([name, method, *cells, true if truth else "unknown (real data)"])
    for est, target in sorted(_estimator_targets(analyses), key=lambda et: target_rank(et[1])):
        cells = []
        for a in analyses.values():
            s = ((a.get("estimators") or {}).get(est) or {}).get(target) or {}
            avg = s.get("average") or {}
            if "error" in s:
                cells.append("failed")
            elif avg:
                cells.append(
                    with_ci(avg.get("estimate"), avg.get("lower"), avg.get("upper"), target)
                )
            else:
                cells.append(
                    effect(s.get("mean_effect"), target)
                    + (" (mean CATE)" if is_number(s.get("mean_effect")) else "")
                )
        true = effect(truth.get(f"ate_{target}"), target) if truth else "unknown (real data)"
        rows.append(
            [
                f"{target_name(target, horizon_of(run, target))} ({short_unit(target)})",
                est,
                *cells,
                true,
            ]
        )
    blocks.append(
        b.table(
            headers,
            rows,
            numeric_from=2,
            reading=(
                "Average effect of CAR-T against teclistamab over the analysed patients, with "
                f"{run.level} intervals. Estimator rows without an interval show the mean of the per-patient effects. "
                "The truth column is the synthetic cohort's known decision-time effect; an analysis that "
                "drops patients (infusion time zero) is biased against it by design."
            ),
        )
    )
    blocks.append(b.h3("Beside the published real-world figures"))
    blocks += _published_blocks(run, analyses)
    comparison = run.metrics.get("time_zero_comparison")
    if comparison:
        blocks.append(b.h3("Time zero against the truth"))
        blocks.append(_comparison_table(comparison))
    return section(
        "averages",
        "Average effects",
        "Average effects and the IPTW hazard ratio, beside published real-world "
        "figures and, on synthetic data, the truth.",
        blocks,
    )


def _estimator_targets(analyses: dict[str, dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((e, t) for a in analyses.values() for e, t, _ in fits_of(a)))


def _published_blocks(run: RunFolder, analyses: dict[str, dict]) -> list[dict]:
    targets = run.targets or {}
    if not targets:
        return [
            b.missing(
                "published calibration targets",
                "hte/data/calibration_targets.yaml could not be read",
            )
        ]
    pub = {
        k: v
        for group in targets.values()
        if isinstance(group, dict)
        for k, v in group.items()
        if isinstance(v, dict)
    }

    def base(a: dict, key: str, field: str) -> Any:
        return ((a.get("baselines") or {}).get(key) or {}).get(field)

    def share_cart(a: dict) -> Any:
        n = a.get("n_by_arm") or {}
        total = (n.get("cart") or 0) + (n.get("tec") or 0)
        return n.get("cart", 0) / total if total else None

    spec = (
        (
            "hr_cart_vs_tec",
            "hazard ratio of death, CAR-T vs teclistamab",
            lambda a: num(base(a, "hazard_ratio_iptw", "hr"), 2),
            lambda v: f"{v:.2f}",
        ),
        (
            "os12_cart",
            "12-month overall survival, CAR-T (IPTW KM)",
            lambda a: pct(base(a, "ate_survival_iptw_km", "value_cart")),
            lambda v: pct(v, 0),
        ),
        (
            "os12_tec",
            "12-month overall survival, teclistamab (IPTW KM)",
            lambda a: pct(base(a, "ate_survival_iptw_km", "value_tec")),
            lambda v: pct(v, 0),
        ),
        (
            "crs_any_cart",
            "any-grade CRS, CAR-T (published: infused patients)",
            lambda a: pct(base(a, "ate_crs_aipw", "value_cart")),
            lambda v: pct(v, 0),
        ),
        (
            "crs_any_tec",
            "any-grade CRS, teclistamab",
            lambda a: pct(base(a, "ate_crs_aipw", "value_tec")),
            lambda v: pct(v, 0),
        ),
        (
            "crs_g3_cart",
            "grade ≥ 3 CRS, CAR-T (published: infused patients)",
            lambda a: pct(base(a, "ate_crs_g3_aipw", "value_cart")),
            lambda v: pct(v, 1),
        ),
        (
            "crs_g3_tec",
            "grade ≥ 3 CRS, teclistamab",
            lambda a: pct(base(a, "ate_crs_g3_aipw", "value_tec")),
            lambda v: pct(v, 1),
        ),
        (
            "cart_share",
            "share assigned CAR-T",
            lambda a: pct(share_cart(a), 0),
            lambda v: pct(v, 0),
        ),
    )
    rows = []
    for key, name, ours, show in spec:
        p = pub.get(key)
        if not p:
            continue
        rng = p.get("range") or [None, None]
        published = show(p["value"]) if is_number(p.get("value")) else DASH
        if len(rng) == 2 and all(is_number(x) for x in rng):
            published += f" ({show(rng[0])}–{show(rng[1])})"
        rows.append(
            [name, published, *[ours(a) for a in analyses.values()], str(p.get("source", ""))]
        )
    naive = pub.get("naive_bias")
    modes = {a.get("mode"): a for a in analyses.values()}
    if naive and {"decision", "infusion"} <= set(modes):
        gap = [base(modes[m], "hazard_ratio_iptw", "hr") for m in ("infusion", "decision")]
        rng = naive.get("range") or [None, None]
        diff = num(gap[0] - gap[1]) if all(is_number(g) for g in gap) else DASH
        rows.append(
            [
                "infusion-time HR minus decision-time HR (immortal-time bias)",
                f"{num(naive.get('value'))} ({num(rng[0])}–{num(rng[1])})",
                *[diff] * len(analyses),
                str(naive.get("source", "")),
            ]
        )
    return [
        b.table(
            ["measure", "published (range)", *analyses, "source"],
            rows,
            reading=(
                "This run's estimates beside the figures real-world series report (ranges across "
                "studies). Published CAR-T CRS rates count infused patients; the run's are intention to "
                "treat from the decision, so they sit lower. A run on your own cohort that lands far "
                "outside these ranges deserves a look at the cohort definition."
            ),
            numeric_from=1,
            numeric_to=2 + len(analyses),
        )
    ]


def _comparison_table(rows: list[dict]) -> dict:
    out = []
    for r in rows:
        out.append(
            [
                r.get(ANALYSIS, DASH),
                str(r.get("n_analysed", DASH)),
                str(r.get("n_excluded", DASH)),
                num(r.get("hazard_ratio_iptw"), 2),
                num(r.get("hazard_ratio_true"), 2),
                effect(r.get("ate_survival_iptw_km"), "survival"),
                effect(r.get("ate_survival_true"), "survival"),
                effect(r.get("ate_rmst_iptw_km"), "rmst"),
                effect(r.get("ate_rmst_true"), "rmst"),
            ]
        )
    return b.table(
        [
            "analysis",
            "n",
            "excluded",
            "HR (IPTW)",
            "true HR",
            "survival gain (pp)",
            "true",
            "RMST gain (mo)",
            "true",
        ],
        out,
        reading="The same cohort analysed from each time zero against the decision-time truth: "
        "a hazard ratio further below the truth, or a larger gain, is the immortal-time bias.",
    )
