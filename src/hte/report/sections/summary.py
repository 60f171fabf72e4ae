"""The Summary section: what was run and the headline average effects."""

from __future__ import annotations

from hte.report import blocks as b
from hte.report.extraction import omop_source
from hte.report.format import (
    DASH,
    effect,
    effect_interval,
    estimator_name,
    interval,
    is_number,
    num,
    short_unit,
    target_name,
)
from hte.report.loader import RunFolder
from hte.report.sections.common import analyses_of, section, truth_of
from hte.report.sections.model_choice import shown_cards


def summary_section(run: RunFolder) -> dict:
    cfg, m = run.config or {}, run.metrics
    blocks: list[dict] = []
    if cfg.get("description"):
        blocks.append(b.text(str(cfg["description"])))
    data = cfg.get("data") or {}
    if data.get("source") == "synthetic":
        source = (
            f"synthetic cohort, scenario {data.get('scenario')}, n = {data.get('n')}, "
            f"seed {data.get('seed')} (true effects known)"
        )
    elif data.get("source") == "omop":
        source = omop_source(data)
    elif data:
        source = f"cohort file {data.get('path')}"
    else:
        source = "not recorded (config.resolved.yaml absent)"
    estimators = cfg.get("estimators") or []
    rows = [
        ["experiment", run.summary.experiment.name],
        ["run id", run.run_id],
        ["data", source],
        [
            "analyses (time zero)",
            "; ".join(
                f"{label}: {a.get('n_analysed', DASH)} patients ({a.get('description', '')})"
                for label, a in analyses_of(run).items()
            )
            or DASH,
        ],
        [
            "estimators",
            ", ".join(estimator_name(e.get("name", "?"), e.get("kind")) for e in estimators)
            or DASH,
        ],
        ["intervals", f"{run.level} confidence intervals"],
    ]
    blocks.append(b.table(["", ""], rows, numeric_from=99, compact=True))
    for label, a in analyses_of(run).items():
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
    return section("summary", "Summary", "What was run and the headline average effects.", blocks)


def _headline_cards(run: RunFolder, analysis: dict) -> list[dict]:
    base = analysis.get("baselines") or {}
    truth = truth_of(run)
    items = []
    hr = base.get("hazard_ratio_iptw")
    if hr:
        items.append(
            {
                "label": "hazard ratio of death (IPTW Cox)",
                "value": num(hr.get("hr"), 2),
                "sub": f"{run.level} CI {interval(hr.get('lower'), hr.get('upper'))}",
                "truth": f"truth (decision time) {num(truth['hazard_ratio'], 2)}"
                if "hazard_ratio" in truth
                else "",
            }
        )
    for key, target in (
        ("ate_survival_iptw_km", "survival"),
        ("ate_rmst_iptw_km", "rmst"),
        ("ate_crs_aipw", "crs"),
        ("ate_crs_g3_aipw", "crs_g3"),
    ):
        e = base.get(key)
        if not e:
            continue
        true = truth.get(f"ate_{target}")
        items.append(
            {
                "label": f"{target_name(target, e.get('horizon'))} ({'IPTW KM' if 'km' in key else 'AIPW'})",
                "value": f"{effect(e.get('estimate'), target)} {short_unit(target)}",
                "sub": f"{run.level} CI {effect_interval(e.get('lower'), e.get('upper'), target)}",
                "truth": f"truth (decision time) {effect(true, target)}" if is_number(true) else "",
            }
        )
    if not items:
        items.append(
            {
                "label": "average effects",
                "value": DASH,
                "sub": "not run in this run folder",
                "truth": "",
            }
        )
    return items
