"""The Cohort and design section: time zero, exclusions, overlap of the arms and covariate balance."""

from __future__ import annotations

from typing import Any

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.extraction import extraction_blocks
from hte.report.format import DASH, num, pct
from hte.report.loader import RunFolder
from hte.report.sections.common import analyses_of, section


def cohort_section(run: RunFolder) -> dict:
    analyses = analyses_of(run)
    labels = list(analyses)
    blocks: list[dict] = []
    if not analyses:
        blocks.append(b.missing("analyses"))
        return section("cohort", "Cohort and design", "", blocks)
    reasons = list(
        dict.fromkeys(r for a in analyses.values() for r in (a.get("n_excluded_by_reason") or {}))
    )
    rows = [
        ["patients analysed"] + [str(a.get("n_analysed", DASH)) for a in analyses.values()],
        ["\u2003CAR-T"]
        + [str((a.get("n_by_arm") or {}).get("cart", DASH)) for a in analyses.values()],
        ["\u2003teclistamab"]
        + [str((a.get("n_by_arm") or {}).get("tec", DASH)) for a in analyses.values()],
        ["excluded, total"]
        + [str(sum((a.get("n_excluded_by_reason") or {}).values())) for a in analyses.values()],
    ]
    for reason in reasons:
        rows.append(
            [f"\u2003{reason}"]
            + [str((a.get("n_excluded_by_reason") or {}).get(reason, 0)) for a in analyses.values()]
        )
    rows.append(
        ["covariates used"]
        + [str(len((a.get("design") or {}).get("features") or [])) for a in analyses.values()]
    )
    rows.append(["missing covariate values"] + [_missing_text(a) for a in analyses.values()])
    blocks += extraction_blocks(run)
    blocks.append(b.h3("Time zero and exclusions"))
    for label, a in analyses.items():
        blocks.append(b.text(f"{label}: {a.get('description', a.get('mode', DASH))}."))
    blocks.append(
        b.table(
            ["", *labels],
            rows,
            reading="Who was analysed from which time zero. Starting the clock at infusion drops "
            "CAR-T patients who died or left while their cells were made (immortal-time bias); the "
            "decision time zero keeps everyone, as in a target-trial emulation.",
        )
    )
    blocks += _overlap_blocks(analyses)
    blocks += _balance_blocks(analyses)
    return section(
        "cohort",
        "Cohort and design",
        "Time zero, exclusions with counts, overlap of the arms and covariate balance.",
        blocks,
    )


def _missing_text(a: dict) -> str:
    missing = (a.get("design") or {}).get("missing")
    if isinstance(missing, str):
        return missing
    if isinstance(missing, dict):
        return ", ".join(f"{k}: {v}" for k, v in missing.items()) or "none"
    return DASH


def _overlap_blocks(analyses: dict[str, dict]) -> list[dict]:
    out = [b.h3("Overlap")]
    overlaps = {k: a["overlap"] for k, a in analyses.items() if isinstance(a.get("overlap"), dict)}
    if not overlaps:
        return [*out, b.missing("propensity overlap")]
    rows = []
    for name, getter in (
        ("propensity model", lambda a, o: (a.get("propensity") or {}).get("method", DASH)),
        ("mean propensity, CAR-T", lambda a, o: num((a.get("propensity") or {}).get("mean_cart"))),
        (
            "mean propensity, teclistamab",
            lambda a, o: num((a.get("propensity") or {}).get("mean_tec")),
        ),
        ("outside [0.05, 0.95]", lambda a, o: pct((o.get("share_outside_05_95") or {}).get("all"))),
        ("outside [0.10, 0.90]", lambda a, o: pct((o.get("share_outside_10_90") or {}).get("all"))),
        ("effective n after IPTW, CAR-T / tec", lambda a, o: _pair(o.get("ess_ipw"))),
        ("effective n, overlap weights", lambda a, o: _pair(o.get("ess_overlap"))),
        ("notes", lambda a, o: "; ".join(o.get("notes") or []) or "none"),
    ):
        rows.append([name] + [getter(analyses[k], o) for k, o in overlaps.items()])
    table = b.table(["", *list(overlaps)], rows)
    plot = b.figure(
        fig.overlap_figure(overlaps),
        "propensity overlap by arm",
        "Cross-fitted propensity by arm.",
        wide=False,
    )
    out.append(b.row(table, plot) if len(overlaps) == 1 else b.row(table))
    if len(overlaps) > 1:
        out.append(plot)
    out.append(
        b.reading(
            "Propensity is each patient's estimated chance of getting CAR-T given their baseline "
            "covariates. Few patients near 0 or 1 and a large effective sample size mean the arms "
            "overlap: every kind of patient is seen on both treatments."
        )
    )
    return out


def _pair(d: Any) -> str:
    if not isinstance(d, dict):
        return DASH
    return f"{num(d.get('cart'), 0)} / {num(d.get('tec'), 0)}"


def _balance_blocks(analyses: dict[str, dict]) -> list[dict]:
    out = [b.h3("Balance (standardized mean differences)")]
    balances = {k: a["balance"] for k, a in analyses.items() if isinstance(a.get("balance"), dict)}
    if not balances:
        return [*out, b.missing("covariate balance")]
    first = next(iter(balances.values())).get("smd") or {}
    order = sorted(first, key=lambda c: -abs(first[c].get("unweighted") or 0))
    headers = ["covariate"]
    for label in balances:
        headers += [f"{label}: before", f"{label}: after IPTW"]
    rows = []
    for cov in order:
        row = [cov]
        for bal in balances.values():
            smd = (bal.get("smd") or {}).get(cov) or {}
            row += [num(smd.get("unweighted")), num(smd.get("iptw"))]
        rows.append(row)
    row = ["largest |SMD|"]
    for bal in balances.values():
        row += [num(bal.get("max_abs_smd")), num(bal.get("max_abs_smd_iptw"))]
    rows.append(row)
    worst = max((bal.get("max_abs_smd_iptw") or 0) for bal in balances.values())
    verdict = (
        "every covariate is within 0.1 after weighting"
        if worst < 0.1
        else f"the largest difference after weighting is {worst:.2f}, above 0.1: read the "
        "averages with that imbalance in mind"
    )
    plot = b.figure(
        fig.balance_figure(balances),
        "covariate balance before and after IPTW",
        "Absolute standardized mean differences; dashed line at 0.1.",
        wide=False,
    )
    out.append(b.row(plot, b.table(headers, rows, compact=True)))
    out.append(
        b.reading(
            "How different the arms are on each covariate, in standard deviations, "
            "before and after inverse-probability weighting; |SMD| < 0.1 is the usual bar for "
            f"balance. Here {verdict}."
        )
    )
    return out
