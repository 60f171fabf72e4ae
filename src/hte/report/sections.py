"""The report's sections, each built from the run folder alone (no refitting).

Every section returns ``{"id", "title", "lead", "blocks"}``. A part the run folder does not hold
is shown as "not run in this run folder", never skipped silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.extraction import extraction_blocks, omop_source
from hte.report.format import (
    CRS_TARGETS,
    DASH,
    OS_TARGETS,
    effect,
    effect_interval,
    estimator_name,
    interval,
    is_number,
    num,
    pct,
    pvalue,
    short_unit,
    target_name,
    target_scale,
)
from hte.report.loader import RunFolder
from hte.report.model_choice import model_choice_section, shown_cards
from hte.runs import SHAP_PREFIX

FIDELITY_WARN = 0.8  # surrogate R^2 below this: the attribution explains a rough copy of the model
ANALYSIS = "analysis"


def _section(anchor: str, title: str, lead: str, blocks: list[dict]) -> dict:
    return {"id": anchor, "title": title, "lead": lead, "blocks": blocks}


def _analyses(run: RunFolder) -> dict[str, dict]:
    return run.metrics.get("analyses") or {}


_TARGET_ORDER = ("survival", "rmst", "crs", "crs_g3")


def _fits(analysis: dict):
    """(estimator, target, summary) of one analysis: estimators in the config's order (recorded
    in ``_order`` by ``order_estimators``), targets survival, RMST, CRS, grade >= 3 CRS."""
    estimators = analysis.get("estimators") or {}
    order = analysis.get("_order") or list(estimators)
    for name in sorted(estimators, key=lambda e: order.index(e) if e in order else len(order)):
        by_target = estimators[name] or {}
        for target in sorted(by_target, key=_target_rank):
            yield name, target, by_target[target] or {}


def _target_rank(target: str) -> int:
    return _TARGET_ORDER.index(target) if target in _TARGET_ORDER else len(_TARGET_ORDER)


def order_estimators(run: RunFolder) -> None:
    """Record the config's estimator order on each analysis (metrics.json sorts keys)."""
    names = [
        e.get("name") for e in (run.config or {}).get("estimators") or [] if isinstance(e, dict)
    ]
    for analysis in _analyses(run).values():
        if isinstance(analysis, dict):
            analysis["_order"] = names


def _horizon(run: RunFolder, target: str) -> Any:
    for analysis in _analyses(run).values():
        for _, t, s in _fits(analysis):
            if t == target and is_number(s.get("horizon")):
                return s["horizon"]
    os_cfg = ((run.config or {}).get("outcomes") or {}).get("os") or {}
    return os_cfg.get({"survival": "survival_horizon", "rmst": "rmst_horizon"}.get(target, ""))


def _truth(run: RunFolder) -> dict:
    return run.metrics.get("decision_truth") or {}


def _with_ci(est: Any, lo: Any, hi: Any, target: str) -> str:
    if not is_number(est):
        return DASH
    ci = effect_interval(lo, hi, target)
    return effect(est, target) + ("" if ci == DASH else f" ({ci})")


def _hr(entry: dict | None) -> str:
    if not entry or not is_number(entry.get("hr")):
        return DASH
    return f"{entry['hr']:.2f} ({interval(entry.get('lower'), entry.get('upper'))})"


# --------------------------------------------------------------------------------------------------
# Summary


def summary_section(run: RunFolder) -> dict:
    cfg, m = run.config or {}, run.metrics
    exp = m.get("experiment") or {}
    blocks: list[dict] = []
    if cfg.get("description"):
        blocks.append(b.text(str(cfg["description"])))
    data = cfg.get("data") or {}
    if data.get("source") == "synthetic":
        source = (f"synthetic cohort, scenario {data.get('scenario')}, n = {data.get('n')}, "
                  f"seed {data.get('seed')} (true effects known)")  # fmt: skip
    elif data.get("source") == "omop":
        source = omop_source(data)
    elif data:
        source = f"cohort file {data.get('path')}"
    else:
        source = "not recorded (config.resolved.yaml absent)"
    estimators = cfg.get("estimators") or []
    rows = [
        ["experiment", exp.get("name", DASH)],
        ["run id", run.run_id],
        ["data", source],
        ["analyses (time zero)", "; ".join(
            f"{label}: {a.get('n_analysed', DASH)} patients ({a.get('description', '')})"
            for label, a in _analyses(run).items()) or DASH],
        ["estimators", ", ".join(estimator_name(e.get("name", "?"), e.get("kind"))
                                 for e in estimators) or DASH],
        ["intervals", f"{run.level} confidence intervals"],
    ]  # fmt: skip
    blocks.append(b.table(["", ""], rows, numeric_from=99, compact=True))
    for label, a in _analyses(run).items():
        blocks.append(
            b.cards(_headline_cards(run, a), title=f"{label} time zero: headline effects")
        )
    blocks.extend(shown_cards(run))  # the model the app and report show per target (#model-choice)
    blocks.append(
        b.text(
            "Effects are CAR-T minus teclistamab: a positive survival effect favours CAR-T; a "
            "positive CRS effect means more CRS with CAR-T. Survival and CRS effects are in "
            "percentage points (pp), restricted mean survival in months.",
            muted=True,
        )
    )
    failures = m.get("failures") or []
    if failures:
        blocks.append(b.caution(f"{len(failures)} fit(s) failed: " + "; ".join(failures)))
    rules = m.get("data_rules") or {}
    notes = [rules["day_zero"]["rule"]] if rules.get("day_zero", {}).get("n_rows") else []
    notes += [
        f"column {c} left out ({why})" for c, why in rules.get("excluded_columns", {}).items()
    ]
    notes += [rules["truth_columns_ignored"]] if rules.get("truth_columns_ignored") else []
    if notes:
        blocks.append(b.text("Data rules applied: " + "; ".join(notes) + ".", muted=True))
    if run.problems:
        blocks.append(b.caution("Unreadable files in the run folder: " + "; ".join(run.problems)))
    return _section("summary", "Summary", "What was run and the headline average effects.", blocks)


def _headline_cards(run: RunFolder, analysis: dict) -> list[dict]:
    base = analysis.get("baselines") or {}
    truth = _truth(run)
    items = []
    hr = base.get("hazard_ratio_iptw")
    if hr:
        items.append({
            "label": "hazard ratio of death (IPTW Cox)",
            "value": num(hr.get("hr"), 2),
            "sub": f"{run.level} CI {interval(hr.get('lower'), hr.get('upper'))}",
            "truth": f"truth (decision time) {num(truth['hazard_ratio'], 2)}" if "hazard_ratio" in truth else "",
        })  # fmt: skip
    for key, target in (("ate_survival_iptw_km", "survival"), ("ate_rmst_iptw_km", "rmst"),
                        ("ate_crs_aipw", "crs"), ("ate_crs_g3_aipw", "crs_g3")):  # fmt: skip
        e = base.get(key)
        if not e:
            continue
        true = truth.get(f"ate_{target}")
        items.append({
            "label": f"{target_name(target, e.get('horizon'))} ({'IPTW KM' if 'km' in key else 'AIPW'})",
            "value": f"{effect(e.get('estimate'), target)} {short_unit(target)}",
            "sub": f"{run.level} CI {effect_interval(e.get('lower'), e.get('upper'), target)}",
            "truth": f"truth (decision time) {effect(true, target)}" if is_number(true) else "",
        })  # fmt: skip
    if not items:
        items.append({"label": "average effects", "value": DASH, "sub": "not run in this run folder",
                      "truth": ""})  # fmt: skip
    return items


# --------------------------------------------------------------------------------------------------
# Cohort and design


def cohort_section(run: RunFolder) -> dict:
    analyses = _analyses(run)
    labels = list(analyses)
    blocks: list[dict] = []
    if not analyses:
        blocks.append(b.missing("analyses"))
        return _section("cohort", "Cohort and design", "", blocks)
    reasons = list(dict.fromkeys(r for a in analyses.values()
                                 for r in (a.get("n_excluded_by_reason") or {})))  # fmt: skip
    rows = [
        ["patients analysed"] + [str(a.get("n_analysed", DASH)) for a in analyses.values()],
        ["\u2003CAR-T"] + [str((a.get("n_by_arm") or {}).get("cart", DASH)) for a in analyses.values()],
        ["\u2003teclistamab"] + [str((a.get("n_by_arm") or {}).get("tec", DASH))
                             for a in analyses.values()],
        ["excluded, total"] + [str(sum((a.get("n_excluded_by_reason") or {}).values()))
                               for a in analyses.values()],
    ]  # fmt: skip
    for reason in reasons:
        rows.append([f"\u2003{reason}"] + [str((a.get("n_excluded_by_reason") or {}).get(reason, 0))
                                       for a in analyses.values()])  # fmt: skip
    rows.append(["covariates used"] + [str(len((a.get("design") or {}).get("features") or []))
                                       for a in analyses.values()])  # fmt: skip
    rows.append(["missing covariate values"] + [_missing_text(a) for a in analyses.values()])
    blocks += extraction_blocks(run)
    blocks.append(b.h3("Time zero and exclusions"))
    for label, a in analyses.items():
        blocks.append(b.text(f"{label}: {a.get('description', a.get('mode', DASH))}."))
    blocks.append(b.table(
        ["", *labels], rows,
        reading="Who was analysed from which time zero. Starting the clock at infusion drops "
        "CAR-T patients who died or left while their cells were made (immortal-time bias); the "
        "decision time zero keeps everyone, as in a target-trial emulation.",
    ))  # fmt: skip
    blocks += _overlap_blocks(analyses)
    blocks += _balance_blocks(analyses)
    return _section("cohort", "Cohort and design",
                    "Time zero, exclusions with counts, overlap of the arms and covariate balance.",
                    blocks)  # fmt: skip


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
        ("mean propensity, teclistamab",
         lambda a, o: num((a.get("propensity") or {}).get("mean_tec"))),
        ("outside [0.05, 0.95]", lambda a, o: pct((o.get("share_outside_05_95") or {}).get("all"))),
        ("outside [0.10, 0.90]", lambda a, o: pct((o.get("share_outside_10_90") or {}).get("all"))),
        ("effective n after IPTW, CAR-T / tec", lambda a, o: _pair(o.get("ess_ipw"))),
        ("effective n, overlap weights", lambda a, o: _pair(o.get("ess_overlap"))),
        ("notes", lambda a, o: "; ".join(o.get("notes") or []) or "none"),
    ):  # fmt: skip
        rows.append([name] + [getter(analyses[k], o) for k, o in overlaps.items()])
    table = b.table(["", *list(overlaps)], rows)
    plot = b.figure(fig.overlap_figure(overlaps), "propensity overlap by arm",
                    "Cross-fitted propensity by arm.", wide=False)  # fmt: skip
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
    verdict = ("every covariate is within 0.1 after weighting" if worst < 0.1 else
               f"the largest difference after weighting is {worst:.2f}, above 0.1: read the "
               "averages with that imbalance in mind")  # fmt: skip
    plot = b.figure(
        fig.balance_figure(balances),
        "covariate balance before and after IPTW",
        "Absolute standardized mean differences; dashed line at 0.1.",
        wide=False,
    )
    out.append(b.row(plot, b.table(headers, rows, compact=True)))
    out.append(b.reading(
        "How different the arms are on each covariate, in standard deviations, "
        "before and after inverse-probability weighting; |SMD| < 0.1 is the usual bar for "
        f"balance. Here {verdict}."))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------------
# Averages beside the published figures


_BASELINES = (
    ("hazard_ratio_iptw", None, "hazard ratio of death", "IPTW Cox"),
    ("ate_survival_iptw_km", "survival", None, "IPTW Kaplan-Meier"),
    ("ate_rmst_iptw_km", "rmst", None, "IPTW Kaplan-Meier"),
    ("ate_crs_aipw", "crs", None, "AIPW"),
    ("ate_crs_g3_aipw", "crs_g3", None, "AIPW"),
)


def averages_section(run: RunFolder) -> dict:
    analyses = _analyses(run)
    truth = _truth(run)
    blocks: list[dict] = []
    if not analyses:
        return _section("averages", "Average effects", "", [b.missing("analyses")])
    headers = ["measure", "method"] + [f"{label}" for label in analyses]
    headers.append("truth (decision time)" if truth else "truth")
    rows = []
    for key, target, name, method in _BASELINES:
        entries = [(a.get("baselines") or {}).get(key) for a in analyses.values()]
        if not any(entries):
            continue
        if target is None:
            cells = [_hr(e) for e in entries]
            true = num(truth.get("hazard_ratio"), 2)
        else:
            h = next((e.get("horizon") for e in entries if e), None)
            name = f"{target_name(target, h)} ({short_unit(target)})"
            cells = [_with_ci(e.get("estimate"), e.get("lower"), e.get("upper"), target)
                     if e else DASH for e in entries]  # fmt: skip
            true = effect(truth.get(f"ate_{target}"), target)
        rows.append([name, method, *cells, true if truth else "unknown (real data)"])
    for est, target in sorted(_estimator_targets(analyses), key=lambda et: _target_rank(et[1])):
        cells = []
        for a in analyses.values():
            s = ((a.get("estimators") or {}).get(est) or {}).get(target) or {}
            avg = s.get("average") or {}
            if "error" in s:
                cells.append("failed")
            elif avg:
                cells.append(_with_ci(avg.get("estimate"), avg.get("lower"), avg.get("upper"),
                                      target))  # fmt: skip
            else:
                cells.append(effect(s.get("mean_effect"), target) + (" (mean CATE)" if
                             is_number(s.get("mean_effect")) else ""))  # fmt: skip
        true = effect(truth.get(f"ate_{target}"), target) if truth else "unknown (real data)"
        rows.append([f"{target_name(target, _horizon(run, target))} ({short_unit(target)})",
                     est, *cells, true])  # fmt: skip
    blocks.append(b.table(headers, rows, numeric_from=2, reading=(
        "Average effect of CAR-T against teclistamab over the analysed patients, with "
        f"{run.level} intervals. Estimator rows without an interval show the mean of the per-patient effects. "
        "The truth column is the synthetic cohort's known decision-time effect; an analysis that "
        "drops patients (infusion time zero) is biased against it by design.")))  # fmt: skip
    blocks.append(b.h3("Beside the published real-world figures"))
    blocks += _published_blocks(run, analyses)
    comparison = run.metrics.get("time_zero_comparison")
    if comparison:
        blocks.append(b.h3("Time zero against the truth"))
        blocks.append(_comparison_table(comparison))
    return _section("averages", "Average effects",
                    "Average effects and the IPTW hazard ratio, beside published real-world "
                    "figures and, on synthetic data, the truth.", blocks)  # fmt: skip


def _estimator_targets(analyses: dict[str, dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((e, t) for a in analyses.values() for e, t, _ in _fits(a)))


def _published_blocks(run: RunFolder, analyses: dict[str, dict]) -> list[dict]:
    targets = run.targets or {}
    if not targets:
        return [b.missing("published calibration targets", "hte/data/calibration_targets.yaml "
                          "could not be read")]  # fmt: skip
    pub = {k: v for group in targets.values() if isinstance(group, dict)
           for k, v in group.items() if isinstance(v, dict)}  # fmt: skip

    def base(a: dict, key: str, field: str) -> Any:
        return ((a.get("baselines") or {}).get(key) or {}).get(field)

    def share_cart(a: dict) -> Any:
        n = a.get("n_by_arm") or {}
        total = (n.get("cart") or 0) + (n.get("tec") or 0)
        return n.get("cart", 0) / total if total else None

    spec = (
        ("hr_cart_vs_tec", "hazard ratio of death, CAR-T vs teclistamab",
         lambda a: num(base(a, "hazard_ratio_iptw", "hr"), 2), lambda v: f"{v:.2f}"),
        ("os12_cart", "12-month overall survival, CAR-T (IPTW KM)",
         lambda a: pct(base(a, "ate_survival_iptw_km", "value_cart")), lambda v: pct(v, 0)),
        ("os12_tec", "12-month overall survival, teclistamab (IPTW KM)",
         lambda a: pct(base(a, "ate_survival_iptw_km", "value_tec")), lambda v: pct(v, 0)),
        ("crs_any_cart", "any-grade CRS, CAR-T (published: infused patients)",
         lambda a: pct(base(a, "ate_crs_aipw", "value_cart")), lambda v: pct(v, 0)),
        ("crs_any_tec", "any-grade CRS, teclistamab",
         lambda a: pct(base(a, "ate_crs_aipw", "value_tec")), lambda v: pct(v, 0)),
        ("crs_g3_cart", "grade ≥ 3 CRS, CAR-T (published: infused patients)",
         lambda a: pct(base(a, "ate_crs_g3_aipw", "value_cart")), lambda v: pct(v, 1)),
        ("crs_g3_tec", "grade ≥ 3 CRS, teclistamab",
         lambda a: pct(base(a, "ate_crs_g3_aipw", "value_tec")), lambda v: pct(v, 1)),
        ("cart_share", "share assigned CAR-T", lambda a: pct(share_cart(a), 0),
         lambda v: pct(v, 0)),
    )  # fmt: skip
    rows = []
    for key, name, ours, show in spec:
        p = pub.get(key)
        if not p:
            continue
        rng = p.get("range") or [None, None]
        published = show(p["value"]) if is_number(p.get("value")) else DASH
        if len(rng) == 2 and all(is_number(x) for x in rng):
            published += f" ({show(rng[0])}–{show(rng[1])})"
        rows.append([name, published, *[ours(a) for a in analyses.values()],
                     str(p.get("source", ""))])  # fmt: skip
    naive = pub.get("naive_bias")
    modes = {a.get("mode"): a for a in analyses.values()}
    if naive and {"decision", "infusion"} <= set(modes):
        gap = [base(modes[m], "hazard_ratio_iptw", "hr") for m in ("infusion", "decision")]
        rng = naive.get("range") or [None, None]
        diff = num(gap[0] - gap[1]) if all(is_number(g) for g in gap) else DASH
        rows.append([
            "infusion-time HR minus decision-time HR (immortal-time bias)",
            f"{num(naive.get('value'))} ({num(rng[0])}–{num(rng[1])})",
            *[diff] * len(analyses),
            str(naive.get("source", "")),
        ])  # fmt: skip
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
        out.append([
            r.get(ANALYSIS, DASH), str(r.get("n_analysed", DASH)), str(r.get("n_excluded", DASH)),
            num(r.get("hazard_ratio_iptw"), 2), num(r.get("hazard_ratio_true"), 2),
            effect(r.get("ate_survival_iptw_km"), "survival"),
            effect(r.get("ate_survival_true"), "survival"),
            effect(r.get("ate_rmst_iptw_km"), "rmst"), effect(r.get("ate_rmst_true"), "rmst"),
        ])  # fmt: skip
    return b.table(
        ["analysis", "n", "excluded", "HR (IPTW)", "true HR", "survival gain (pp)", "true",
         "RMST gain (mo)", "true"], out,
        reading="The same cohort analysed from each time zero against the decision-time truth: "
        "a hazard ratio further below the truth, or a larger gain, is the immortal-time bias.",
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# CATE


def cate_section(run: RunFolder) -> dict:
    analyses = _analyses(run)
    blocks: list[dict] = []
    truth_on = bool(run.metrics.get("truth_metrics"))
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        headers = ["estimator", "target", "mean", "SD", "10th / 50th / 90th pct",
                   "interval excludes 0"]  # fmt: skip
        if truth_on:
            headers += ["true mean", "NMSE", "corr. with truth", "coverage"]
        rows = []
        for est, target, s in _fits(a):
            name = f"{target_name(target, s.get('horizon'))} ({short_unit(target)})"
            if "error" in s:
                rows.append(b.failed_row(headers, [est, name], "failed: " + str(s["error"])))
                continue
            q = s.get("quantiles") or {}
            row = [
                est, name, effect(s.get("mean_effect"), target),
                num(target_scale(target) * s["sd_effect"], 1 if target_scale(target) == 100 else 2)
                if is_number(s.get("sd_effect")) else DASH,
                " / ".join(effect(q.get(k), target) for k in ("q10", "q50", "q90")),
                pct(s.get("share_excluding_zero"), 0) if s.get("share_with_interval") else "no intervals",
            ]  # fmt: skip
            if truth_on:
                t = s.get("truth") or {}
                row += [effect(t.get("ate_true"), target), num(t.get("normalized_mse")),
                        num(t.get("correlation")), pct(t.get("coverage"), 0)]  # fmt: skip
            rows.append(row)
        if not rows:
            blocks.append(b.missing(f"per-patient effects of the {label} analysis"))
            continue
        reading = (
            "How much the estimated effect varies between patients. 'Interval excludes 0' "
            f"is the share of patients whose own {run.level} interval excludes no effect."
        )
        if truth_on:
            reading += (
                " Against the known truth: NMSE is the error relative to the true spread "
                "(below 1 beats predicting the average for everyone), coverage is the share "
                f"of true effects inside the intervals ({run.level} is the aim)."
            )
        blocks.append(b.table(headers, rows, reading=reading, numeric_from=2))
        blocks.append(b.figure(_cate_figure(run, label, a), f"per-patient effects, {label}",
                               "Left: distribution of per-patient effects by estimator. Right: "
                               f"one estimator's patients ranked, with {run.level} intervals."))  # fmt: skip
    if not analyses:
        blocks.append(b.missing("per-patient effects"))
    return _section("cate", "Individual effects (CATE)",
                    "Distributions of the per-patient (conditional average) treatment effects per "
                    "estimator and target, with their intervals.", blocks)  # fmt: skip


def _effects_of(run: RunFolder, label: str) -> pd.DataFrame | None:
    e = run.effects
    if e is None:
        return None
    return e[e[ANALYSIS] == label] if ANALYSIS in e.columns else e


def _cate_figure(run: RunFolder, label: str, analysis: dict) -> str | None:
    effects = _effects_of(run, label)
    if effects is None or effects.empty:
        return None
    panels = []
    for target in dict.fromkeys(t for _, t, _ in _fits(analysis)):
        ests = [e for e, t, _ in _fits(analysis) if t == target
                and f"{e}__{target}__effect" in effects.columns]  # fmt: skip
        if not ests:
            continue
        with_int = [e for e in ests if f"{e}__{target}__lower" in effects.columns
                    and effects[f"{e}__{target}__lower"].notna().any()]  # fmt: skip
        panels.append({"target": target, "horizon": _horizon(run, target), "estimators": ests,
                       "interval_estimator": with_int[0] if with_int else None})  # fmt: skip
    return fig.cate_figure(effects, panels, run.level)


# --------------------------------------------------------------------------------------------------
# Benefit against harm


def _pick(
    analysis: dict, targets: tuple[str, ...], kinds: tuple[str, ...], effects
) -> tuple | None:
    """The (estimator, target) to plot: preferred kinds first, then any fit with effects."""
    fits = [(e, t, s) for e, t, s in _fits(analysis) if t in targets and "error" not in s
            and f"{e}__{t}__effect" in effects.columns]  # fmt: skip
    for target in targets:
        for kind in kinds:
            for e, t, s in fits:
                if t == target and s.get("kind") == kind:
                    return e, t
    return (fits[0][0], fits[0][1]) if fits else None


def benefit_harm_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    panels, counts = [], {}
    for label, a in _analyses(run).items():
        effects = _effects_of(run, label)
        if effects is None or effects.empty:
            continue
        os_pick = _pick(a, OS_TARGETS, ("causal_survival_forest", "dr_learner"), effects)
        crs_pick = _pick(a, CRS_TARGETS[:1], ("crs_causal_forest",), effects) or _pick(
            a, CRS_TARGETS, ("crs_causal_forest",), effects
        )
        if os_pick is None or crs_pick is None:
            continue
        (oe, ot), (ce, ct) = os_pick, crs_pick
        x = target_scale(ot) * effects[f"{oe}__{ot}__effect"].to_numpy(dtype=float)
        y = target_scale(ct) * effects[f"{ce}__{ct}__effect"].to_numpy(dtype=float)
        arm = (
            effects["treatment"].to_numpy()
            if "treatment" in effects.columns
            else np.full(len(x), "")
        )
        panels.append({
            "label": label, "x": x, "y": y, "arm": arm,
            "x_label": f"OS benefit: {target_name(ot, _horizon(run, ot))} ({short_unit(ot)}), {oe}",
            "y_label": f"CRS harm: {target_name(ct)} ({short_unit(ct)}), {ce}",
        })  # fmt: skip
        n = len(x)
        quad = [
            ("OS gain, more CRS with CAR-T (a trade-off)", (x > 0) & (y > 0)),
            ("OS gain, no more CRS", (x > 0) & (y <= 0)),
            ("no OS gain, more CRS", (x <= 0) & (y > 0)),
            ("no OS gain, no more CRS", (x <= 0) & (y <= 0)),
        ]
        sure = _both_intervals(effects, oe, ot, ce, ct)
        sure_name = "OS gain interval above 0 and CRS interval above 0"
        for name, mask in [*quad, (sure_name, sure)]:
            cell = (
                DASH
                if mask is None
                else f"{int(mask.sum())} ({pct(mask.mean() if n else None, 0)})"
            )
            counts.setdefault(name, {})[label] = cell
    if not panels:
        blocks.append(b.missing("benefit-harm scatter", "needs per-patient effects of an OS and a "
                                "CRS estimator in effects.parquet"))  # fmt: skip
    else:
        blocks.append(b.figure(fig.benefit_harm_figure(panels), "OS benefit against CRS harm",
                               "Each dot is a patient's estimated effects under CAR-T versus "
                               "teclistamab (whichever they actually received)."))  # fmt: skip
        labels = [p["label"] for p in panels]
        rows = [[name, *[by.get(lb, DASH) for lb in labels]] for name, by in counts.items()]
        blocks.append(
            b.table(
                ["patients whose estimates show", *labels],
                rows,
                reading=(
                    "Most patients sit in the trade-off quadrant when CAR-T both extends survival and "
                    "causes more CRS; how much CRS is worth how much survival is a clinical judgement the "
                    "numbers do not make. Patients (share); point estimates only, except the last row."
                ),
            )
        )
    return _section(
        "benefit-harm",
        "Benefit against harm",
        "Per-patient overall-survival benefit against CRS harm, read together.",
        blocks,
    )


def _both_intervals(effects, oe, ot, ce, ct) -> np.ndarray | None:
    cols = [f"{oe}__{ot}__lower", f"{ce}__{ct}__lower"]
    if not all(c in effects.columns for c in cols) or effects[cols].isna().all().any():
        return None
    return (effects[cols[0]].to_numpy() > 0) & (effects[cols[1]].to_numpy() > 0)


# --------------------------------------------------------------------------------------------------
# Subgroups


def subgroups_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = _analyses(run)
    reason = (run.metrics.get("explanation") or {}).get("subgroup_rules")
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        sub = a.get("subgroups")
        if not isinstance(sub, dict):
            blocks.append(b.missing("subgroup rules, policy trees and prespecified subgroups",
                                    reason if isinstance(reason, str) else None))  # fmt: skip
            continue
        blocks += _rule_blocks(sub.get("rules"), _names(run), run.level)
        blocks += _policy_blocks(sub.get("policy"), run.level)
        blocks += _prespecified_blocks(sub.get("prespecified"), _names(run), run.level)
    if not analyses:
        blocks.append(b.missing("subgroups"))
    return _section("subgroups", "Subgroups and policy",
                    "Shallow rule trees that describe who gains most, a benefit-harm policy tree, "
                    "and prespecified subgroups.", blocks)  # fmt: skip


def _names(run: RunFolder) -> dict[str, str]:
    """Plain target names with the run's horizons."""
    return {t: target_name(t, _horizon(run, t)) for t in _TARGET_ORDER}


def _rule_blocks(rules: Any, names: dict[str, str], level: str) -> list[dict]:
    if not isinstance(rules, dict) or not rules:
        return [b.missing("subgroup rule trees")]
    out = []
    for target, tree in rules.items():
        tree = tree or {}
        out.append(b.h3(f"Who gains: {names.get(target, target)} — rules from {tree.get('estimator', '?')}"
                        f" (depth {tree.get('max_depth', DASH)}, fidelity R² "
                        f"{num(tree.get('fidelity_r2'))})"))  # fmt: skip
        rows = [[lf.get("rule", DASH), str(lf.get("n", DASH)), pct(lf.get("share"), 0),
                 effect(lf.get("mean_cate"), target),
                 _with_ci(lf.get("estimate"), lf.get("lower"), lf.get("upper"), target)]
                for lf in tree.get("leaves") or []]  # fmt: skip
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
    out = [b.h3(f"Policy: who would get CAR-T when OS gain is weighed against CRS "
                f"({policy.get('os_target', '?')} vs {policy.get('crs_target', '?')})")]  # fmt: skip
    for tree in policy["trees"]:
        rows = [[lf.get("rule", DASH), str(lf.get("n", DASH)), str(lf.get("action", DASH)),
                 f"{num(lf.get('net_benefit'), 3)} ({interval(lf.get('lower'), lf.get('upper'), 3)})"]
                for lf in tree.get("leaves") or []]  # fmt: skip
        value = tree.get("value") or {}
        for key, name in (("policy", "value of this policy (in-sample, optimistic)"),
                          ("policy_cross_validated", "value of the tree search, held out"),
                          ("all_cart", "everyone CAR-T"),
                          ("all_tec", "everyone teclistamab")):  # fmt: skip
            if key not in value:
                continue
            v = value.get(key) or {}
            rows.append([name, "", "", f"{num(v.get('estimate'), 3)} "
                         f"({interval(v.get('lower'), v.get('upper'), 3)})"])  # fmt: skip
        out.append(b.table(
            ["leaf (rule)", "n", "action", f"net benefit {units} ({level} CI)"], rows,
            caption=f"CRS weight {num(tree.get('crs_weight'))}: CAR-T for "
            f"{pct(tree.get('share_cart'), 0)} of patients",
            reading="Net benefit is OS gain minus the CRS weight times the extra CRS risk, "
            "relative to teclistamab for all. The tree was searched on these patients, so its "
            "in-sample value is optimistic; the held-out value (each patient's arm from a tree "
            "searched without them) is the honest one. A policy is a description of the data "
            "under a chosen weight, not a treatment rule.",
        ))  # fmt: skip
    return out


def _prespecified_blocks(rows_in: Any, names: dict[str, str], level: str) -> list[dict]:
    if not isinstance(rows_in, list) or not rows_in:
        return [b.missing("prespecified subgroups")]
    rows = []
    for r in rows_in:
        t = r.get("target", "")
        cate = r.get("mean_cate") or {}
        rows.append([
            r.get("subgroup", DASH), names.get(t, t), f"{r.get('n', DASH)} ({r.get('n_cart', DASH)}/"
            f"{r.get('n_tec', DASH)})", _with_ci(r.get("estimate"), r.get("lower"), r.get("upper"), t),
            effect(r.get("complement_estimate"), t),
            _with_ci(r.get("difference"), r.get("difference_lower"), r.get("difference_upper"), t),
            pvalue(r.get("difference_p_value")),
            ", ".join(f"{k} {effect(v, t)}" for k, v in cate.items()) or DASH,
            effect(r.get("truth"), t), r.get("note") or "",
        ])  # fmt: skip
    return [b.h3("Prespecified subgroups"), b.table(
        ["subgroup", "target", "n (CAR-T/tec)", f"effect ({level} CI)", "rest of cohort",
         f"difference ({level} CI)", "p", "mean CATE by estimator", "truth", "note"], rows,
        reading="Each prespecified subgroup against the rest of the cohort. Subgroup p-values are "
        "fragile (several are tested): read the differences and their intervals, not the stars.",
        numeric_from=2, numeric_to=7)]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Heterogeneity tests


def _rate_cell(r: Any, target: str) -> str:
    if not isinstance(r, dict):
        return DASH
    if "error" in r:
        return "error: " + str(r["error"])
    return f"{_with_ci(r.get('estimate'), r.get('lower'), r.get('upper'), target)}; p {pvalue(r.get('p_value'))}"


def heterogeneity_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = _analyses(run)
    curves, toc_errors, any_in_sample, any_test = [], [], False, False
    for label, a in analyses.items():
        rows = []
        for est, target, s in _fits(a):
            h = s.get("heterogeneity")
            if not isinstance(h, dict):
                continue
            any_test = True
            any_in_sample |= bool(h.get("in_sample"))
            blp = h.get("blp") or {}
            blp_cells = (["error: " + str(blp["error"])] * 2 if "error" in blp else [
                f"{num(blp.get('mean_coef'))} (p {pvalue(blp.get('mean_p_value'))})",
                f"{num(blp.get('differential_coef'))} (p {pvalue(blp.get('differential_p_value'))})",
            ])  # fmt: skip
            rows.append([est, target_name(target, s.get("horizon")), _rate_cell(h.get("autoc"), target),
                         _rate_cell(h.get("qini"), target), *blp_cells,
                         "in-sample" if h.get("in_sample") else "held-out"])  # fmt: skip
            toc = h.get("toc")
            if isinstance(toc, dict) and "error" in toc:
                toc_errors.append(f"{est}, {target_name(target, s.get('horizon'))}: {toc['error']}")
            if isinstance(toc, dict) and toc.get("q") and toc.get("toc"):
                curves.append({"target": target, "horizon": s.get("horizon"),
                               "estimator": est if len(analyses) == 1 else f"{est} ({label})",
                               **{k: toc.get(k) for k in ("q", "toc", "lower", "upper")}})  # fmt: skip
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        if not rows:
            blocks.append(b.missing(f"RATE and BLP tests of the {label} analysis"))
            continue
        blocks.append(b.table(
            ["estimator", "target", f"AUTOC ({run.level} CI)", f"Qini ({run.level} CI)", "BLP mean", "BLP differential",
             "priorities"], rows, numeric_from=2,
            reading="Does ranking patients by the estimated effect find those who gain more? "
            "AUTOC and Qini above zero (small p) say yes. In the BLP test a mean coefficient near 1 "
            "says the average effect is right and a differential coefficient near 1 says the "
            "predicted spread is real; near 0, no heterogeneity was detected.",
        ))  # fmt: skip
        priorities = sorted(
            {
                str(h["priorities"])
                for _, _, s in _fits(a)
                if isinstance(h := s.get("heterogeneity"), dict) and h.get("priorities")
            }
        )
        if priorities:
            blocks.append(b.text("Priorities (how patients were ranked): " + "; ".join(priorities),
                                 muted=True))  # fmt: skip
        scores = a.get("heterogeneity_scores")
        if isinstance(scores, dict) and scores:
            blocks.append(b.text("Doubly robust scores: " + "; ".join(
                f"{target_name(t, _horizon(run, t))}: {v}" for t, v in scores.items()),
                muted=True))  # fmt: skip
    if any_in_sample:
        blocks.insert(0, b.caution(
            "Caution: the priorities are each estimator's in-sample predictions (fitted on the "
            "same patients they rank), so these tests are optimistic and the p-values too small. "
            "Held-out priorities are the fix."))  # fmt: skip
    if not any_test and analyses:
        blocks.append(b.missing("heterogeneity tests"))
    blocks.append(b.h3("Targeting operator characteristic (TOC)"))
    blocks.append(b.figure(fig.toc_figure(curves), "TOC curves",
                           "Gain of the top-ranked share of patients over the average effect, "
                           f"with {run.level} bands.") if curves else b.missing("TOC curves"))  # fmt: skip
    if toc_errors:
        blocks.append(b.text("TOC not computed for " + "; ".join(toc_errors), muted=True))
    if not analyses:
        blocks.append(b.missing("heterogeneity tests"))
    return _section("heterogeneity", "Is the heterogeneity real?",
                    "RATE (AUTOC, Qini), the TOC curve and the best-linear-predictor calibration "
                    "test, per estimator and target.", blocks)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Robustness


def robustness_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = _analyses(run)
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        rob, names = a.get("robustness"), _names(run)
        if not isinstance(rob, dict):
            blocks.append(b.missing("refutation tests and E-values"))
            continue
        refs = rob.get("refutations")
        if isinstance(refs, list) and refs:
            rows = [[names.get(r.get("target"), str(r.get("target"))), r.get("refuter", DASH), r.get("description", ""),
                     effect(r.get("original"), r.get("target", "")),
                     _with_ci(r.get("estimate"), r.get("lower"), r.get("upper"), r.get("target", "")),
                     str(r.get("expected", DASH)),
                     {True: "passed", False: "FAILED"}.get(r.get("passed"), DASH),
                     r.get("detail") or ""] for r in refs]  # fmt: skip
            blocks.append(b.table(
                ["target", "refuter", "what it does", "original", f"refuted estimate ({run.level} CI)",
                 "expected", "result", "detail"], rows, numeric_from=3, numeric_to=5,
                reading="Each refuter changes the data in a way whose effect on the estimate is "
                "known (a placebo treatment should give zero; a random extra covariate or a "
                "subsample should change little). A failure points at a fragile estimate.",
            ))  # fmt: skip
        else:
            blocks.append(b.missing("refutation tests"))
        evs = rob.get("evalues")
        if isinstance(evs, list) and evs:
            rows = [[names.get(r.get("target"), str(r.get("target"))), r.get("measure", DASH),
                     f"{num(r.get('estimate'), 2)} ({interval(r.get('lower'), r.get('upper'))})",
                     num(r.get("evalue"), 2), num(r.get("evalue_ci"), 2), r.get("note") or ""]
                    for r in evs]  # fmt: skip
            blocks.append(b.table(
                ["target", "measure", f"estimate ({run.level} CI)", "E-value", "E-value of CI bound", "note"],
                rows, numeric_from=2, numeric_to=5,
                reading="The E-value is how strongly (as a risk ratio with both treatment and "
                "outcome) an unmeasured confounder would have to act to explain the effect away; "
                "the CI column, to move the interval to include no effect. 1 means no confounding "
                "is needed.",
            ))  # fmt: skip
        else:
            blocks.append(b.missing("E-values"))
    if not analyses:
        blocks.append(b.missing("refutation tests and E-values"))
    return _section(
        "robustness",
        "Robustness",
        "Refutation tests and E-values for unmeasured confounding.",
        blocks,
    )


# --------------------------------------------------------------------------------------------------
# Attributions


def attributions_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = _analyses(run)
    shap_note = (run.metrics.get("explanation") or {}).get("shap")
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        items = []
        for est, target, s in _fits(a):
            card = _attribution_card(run, label, est, target, s)
            if card is not None:
                items.append(card)
        if items:
            blocks.append(b.grid(items))
        else:
            why = shap_note if isinstance(shap_note, str) and "not run" in shap_note else None
            blocks.append(b.missing(f"SHAP attributions of the {label} analysis", why))
    if not analyses:
        blocks.append(b.missing("SHAP attributions"))
    lead = ("Which baseline features move each estimator's per-patient effect (SHAP values of a "
            "boosted-tree surrogate fitted to the estimator's own effects). Fidelity R² "
            "(cross-validated) says how well the surrogate copies the estimator; below "
            f"{FIDELITY_WARN} read its attributions loosely. Attributions explain the model, not "
            "the biology.")  # fmt: skip
    return _section("attributions", "Attributions (SHAP)", lead, blocks)


def _attribution_card(run: RunFolder, label: str, est: str, target: str, s: dict) -> dict | None:
    summary = s.get("attributions")
    shap = run.attributions.get((label, est, target))
    if not isinstance(summary, dict) and shap is None:
        return None
    summary = summary if isinstance(summary, dict) else {}
    r2 = summary.get("surrogate_r2_cv")
    scale = target_scale(target)
    if shap is not None:
        cols = [c for c in shap.columns if c.startswith(SHAP_PREFIX)]
        imp = shap[cols].abs().mean().sort_values(ascending=False).head(8)
        top = [(c.removeprefix(SHAP_PREFIX), float(v)) for c, v in imp.items()]
        n_pat = len(shap)
    else:
        top = [(str(f), float(v)) for f, v in summary.get("top_importance") or []]
        n_pat = summary.get("n_patients")
    blocks: list[dict] = []
    if top:
        largest = max(v for _, v in top) or 1.0
        digits = 2 if scale * largest < 1 else 1 if scale * largest < 10 else 0
        blocks.append(
            b.bars(
                [(f, v / largest, num(scale * v, digits)) for f, v in top],
                caption=f"mean |SHAP| ({short_unit(target)}), {n_pat} patients",
            )
        )
    png = run.figures.get(f"shap_{label}__{est}__{target}.png")
    if png is not None:
        blocks.append(b.figure(fig.file_uri(png), f"beeswarm {est} {target}", None, wide=False))
    elif shap is not None and top:
        blocks.append(b.figure(fig.swarm_figure(shap, [f for f, _ in top], target),
                               f"beeswarm {est} {target}", "uncoloured: the run folder keeps no "
                               "covariate values", wide=False))  # fmt: skip
    else:
        blocks.append(b.missing("beeswarm plot"))
    arms = summary.get("arms")
    if isinstance(arms, dict) and arms:
        parts = []
        for arm, name in (("cart", "CAR-T"), ("tec", "teclistamab")):
            a = arms.get(arm) or {}
            top_arm = ", ".join(str(f) for f, _ in (a.get("top_importance") or [])[:3])
            if top_arm:
                parts.append(f"{name}: {top_arm} (R² {num(a.get('surrogate_r2_cv'))})")
        if parts:
            blocks.append(b.text("Drives each arm's own prediction: " + "; ".join(parts) + ".",
                                 muted=True))  # fmt: skip
    fidelity = f"fidelity R² (cross-validated) {num(r2)}" if is_number(r2) else (
        "exact attributions (no surrogate)" if summary.get("method") not in (None, "surrogate")
        else "fidelity R²: not recorded")  # fmt: skip
    return {"title": f"{est} · {target_name(target, s.get('horizon'))}",
            "subtitle": fidelity, "warn": is_number(r2) and r2 < FIDELITY_WARN,
            "blocks": blocks}  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Provenance


def provenance_section(run: RunFolder) -> dict:
    m = run.metrics
    exp = m.get("experiment") or {}
    fp = run.fingerprint or m.get("data") or {}
    blocks: list[dict] = []
    rows = [
        ["run id", run.run_id],
        ["run folder", str(run.path)],
        ["experiment", str(exp.get("name", DASH))],
        ["config sha256", str(exp.get("config_sha256", DASH))],
        ["data sha256", str(fp.get("sha256", DASH))],
        ["what was hashed", str(fp.get("hashed", DASH))],
        ["patients in the data", str(fp.get("n", DASH))],
        ["columns", str(len(fp.get("columns") or [])) + (": " + ", ".join(fp["columns"])
                                                         if fp.get("columns") else "")],
    ]  # fmt: skip
    if fp.get("path"):
        rows.append(["data file", str(fp["path"])])
    blocks.append(b.h3("Run and data fingerprint"))
    blocks.append(b.table(["", ""], rows, numeric_from=99, compact=True))
    blocks.append(b.h3("Seeds and package versions"))
    seeds = (
        b.table(
            ["seed", "value"],
            [[k, str(v)] for k, v in run.seeds.items()],
            numeric_from=99,
            compact=True,
        )
        if run.seeds
        else b.missing("seeds.json")
    )
    versions = (b.table(["package", "version"], [[k, str(v)] for k, v in run.versions.items()],
                        numeric_from=99, compact=True) if run.versions
                else b.missing("versions.json"))  # fmt: skip
    blocks.append(b.row(seeds, versions))
    blocks.append(b.h3("Resolved config"))
    blocks.append(b.pre(run.config_text) if run.config_text else b.missing("config.resolved.yaml"))
    blocks.append(b.h3("Timings and log"))
    if run.timings:
        total = run.timings.get("total")
        blocks.append(b.pre("\n".join(f"{k:<48} {v:9.2f} s" for k, v in run.timings.items()
                                      if is_number(v)),
                            summary=f"seconds per stage (total {num(total, 1)} s)"))  # fmt: skip
    else:
        blocks.append(b.missing("timings.json"))
    blocks.append(b.pre(run.log_text, summary="run.log") if run.log_text else b.missing("run.log"))
    return _section("provenance", "Provenance",
                    "Everything needed to reproduce this run: the exact resolved config, the data "
                    "fingerprint, seeds and package versions.", blocks)  # fmt: skip


SECTIONS = (
    summary_section,
    cohort_section,
    averages_section,
    cate_section,
    model_choice_section,
    benefit_harm_section,
    subgroups_section,
    heterogeneity_section,
    robustness_section,
    attributions_section,
    provenance_section,
)
