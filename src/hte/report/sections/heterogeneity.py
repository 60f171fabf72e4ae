"""The Is the heterogeneity real? section: RATE (AUTOC, Qini), TOC curves and the BLP test."""

from __future__ import annotations

from typing import Any

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.format import DASH, num, pvalue, target_name
from hte.report.loader import RunFolder
from hte.report.sections.common import analyses_of, fits_of, horizon_of, section, with_ci


def _rate_cell(r: Any, target: str) -> str:
    if not isinstance(r, dict):
        return DASH
    if "error" in r:
        return "error: " + str(r["error"])
    return f"{with_ci(r.get('estimate'), r.get('lower'), r.get('upper'), target)}; p {pvalue(r.get('p_value'))}"


def heterogeneity_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = analyses_of(run)
    curves, toc_errors, any_in_sample, any_test = [], [], False, False
    for label, a in analyses.items():
        rows = []
        for est, target, s in fits_of(a):
            h = s.get("heterogeneity")
            if not isinstance(h, dict):
                continue
            any_test = True
            any_in_sample |= bool(h.get("in_sample"))
            blp = h.get("blp") or {}
            blp_cells = (
                ["error: " + str(blp["error"])] * 2
                if "error" in blp
                else [
                    f"{num(blp.get('mean_coef'))} (p {pvalue(blp.get('mean_p_value'))})",
                    f"{num(blp.get('differential_coef'))} (p {pvalue(blp.get('differential_p_value'))})",
                ]
            )
            rows.append(
                [
                    est,
                    target_name(target, s.get("horizon")),
                    _rate_cell(h.get("autoc"), target),
                    _rate_cell(h.get("qini"), target),
                    *blp_cells,
                    "in-sample" if h.get("in_sample") else "held-out",
                ]
            )
            toc = h.get("toc")
            if isinstance(toc, dict) and "error" in toc:
                toc_errors.append(f"{est}, {target_name(target, s.get('horizon'))}: {toc['error']}")
            if isinstance(toc, dict) and toc.get("q") and toc.get("toc"):
                curves.append(
                    {
                        "target": target,
                        "horizon": s.get("horizon"),
                        "estimator": est if len(analyses) == 1 else f"{est} ({label})",
                        **{k: toc.get(k) for k in ("q", "toc", "lower", "upper")},
                    }
                )
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        if not rows:
            blocks.append(b.missing(f"RATE and BLP tests of the {label} analysis"))
            continue
        blocks.append(
            b.table(
                [
                    "estimator",
                    "target",
                    f"AUTOC ({run.level} CI)",
                    f"Qini ({run.level} CI)",
                    "BLP mean",
                    "BLP differential",
                    "priorities",
                ],
                rows,
                numeric_from=2,
                reading="Does ranking patients by the estimated effect find those who gain more? "
                "AUTOC and Qini above zero (small p) say yes. In the BLP test a mean coefficient near 1 "
                "says the average effect is right and a differential coefficient near 1 says the "
                "predicted spread is real; near 0, no heterogeneity was detected.",
            )
        )
        priorities = sorted(
            {
                str(h["priorities"])
                for _, _, s in fits_of(a)
                if isinstance(h := s.get("heterogeneity"), dict) and h.get("priorities")
            }
        )
        if priorities:
            blocks.append(
                b.text(
                    "Priorities (how patients were ranked): " + "; ".join(priorities), muted=True
                )
            )
        scores = a.get("heterogeneity_scores")
        if isinstance(scores, dict) and scores:
            blocks.append(
                b.text(
                    "Doubly robust scores: "
                    + "; ".join(
                        f"{target_name(t, horizon_of(run, t))}: {v}" for t, v in scores.items()
                    ),
                    muted=True,
                )
            )
    if any_in_sample:
        blocks.insert(
            0,
            b.caution(
                "Caution: the priorities are each estimator's in-sample predictions (fitted on the "
                "same patients they rank), so these tests are optimistic and the p-values too small. "
                "Held-out priorities are the fix."
            ),
        )
    if not any_test and analyses:
        blocks.append(b.missing("heterogeneity tests"))
    blocks.append(b.h3("Targeting operator characteristic (TOC)"))
    blocks.append(
        b.figure(
            fig.toc_figure(curves),
            "TOC curves",
            "Gain of the top-ranked share of patients over the average effect, "
            f"with {run.level} bands.",
        )
        if curves
        else b.missing("TOC curves")
    )
    if toc_errors:
        blocks.append(b.text("TOC not computed for " + "; ".join(toc_errors), muted=True))
    if not analyses:
        blocks.append(b.missing("heterogeneity tests"))
    return section(
        "heterogeneity",
        "Is the heterogeneity real?",
        "RATE (AUTOC, Qini), the TOC curve and the best-linear-predictor calibration "
        "test, per estimator and target.",
        blocks,
    )
