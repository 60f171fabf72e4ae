"""The Robustness section: refutation tests and E-values."""

from __future__ import annotations

from hte.report import blocks as b
from hte.report.format import DASH, effect, interval, num
from hte.report.loader import RunFolder
from hte.report.sections.common import analyses_of, section, target_names, with_ci


def robustness_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = analyses_of(run)
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        rob, names = a.get("robustness"), target_names(run)
        if not isinstance(rob, dict):
            blocks.append(b.missing("refutation tests and E-values"))
            continue
        refs = rob.get("refutations")
        if isinstance(refs, list) and refs:
            rows = [
                [
                    names.get(r.get("target"), str(r.get("target"))),
                    r.get("refuter", DASH),
                    r.get("description", ""),
                    effect(r.get("original"), r.get("target", "")),
                    with_ci(r.get("estimate"), r.get("lower"), r.get("upper"), r.get("target", "")),
                    str(r.get("expected", DASH)),
                    {True: "passed", False: "FAILED"}.get(r.get("passed"), DASH),
                    r.get("detail") or "",
                ]
                for r in refs
            ]
            blocks.append(
                b.table(
                    [
                        "target",
                        "refuter",
                        "what it does",
                        "original",
                        f"refuted estimate ({run.level} CI)",
                        "expected",
                        "result",
                        "detail",
                    ],
                    rows,
                    numeric_from=3,
                    numeric_to=5,
                    reading="Each refuter changes the data in a way whose effect on the estimate is "
                    "known (a placebo treatment should give zero; a random extra covariate or a "
                    "subsample should change little). A failure points at a fragile estimate.",
                )
            )
        else:
            blocks.append(b.missing("refutation tests"))
        evs = rob.get("evalues")
        if isinstance(evs, list) and evs:
            rows = [
                [
                    names.get(r.get("target"), str(r.get("target"))),
                    r.get("measure", DASH),
                    f"{num(r.get('estimate'), 2)} ({interval(r.get('lower'), r.get('upper'))})",
                    num(r.get("evalue"), 2),
                    num(r.get("evalue_ci"), 2),
                    r.get("note") or "",
                ]
                for r in evs
            ]
            blocks.append(
                b.table(
                    [
                        "target",
                        "measure",
                        f"estimate ({run.level} CI)",
                        "E-value",
                        "E-value of CI bound",
                        "note",
                    ],
                    rows,
                    numeric_from=2,
                    numeric_to=5,
                    reading="The E-value is how strongly (as a risk ratio with both treatment and "
                    "outcome) an unmeasured confounder would have to act to explain the effect away; "
                    "the CI column, to move the interval to include no effect. 1 means no confounding "
                    "is needed.",
                )
            )
        else:
            blocks.append(b.missing("E-values"))
    if not analyses:
        blocks.append(b.missing("refutation tests and E-values"))
    return section(
        "robustness",
        "Robustness",
        "Refutation tests and E-values for unmeasured confounding.",
        blocks,
    )
