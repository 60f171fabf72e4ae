"""What every report section shares: the section dict, the run's analyses and fits in report
order, horizons, the truth and the effect-with-interval text."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd

from hte.report.format import DASH, effect, effect_interval, interval, is_number, target_name
from hte.report.loader import RunFolder
from hte.vocabulary import TARGET_NAMES
from hte.vocabulary import target as target_info

FIDELITY_WARN = 0.8  # surrogate R^2 below this: the attribution explains a rough copy of the model
ANALYSIS = "analysis"


def section(anchor: str, title: str, lead: str, blocks: list[dict]) -> dict:
    """One report section as the template reads it."""
    return {"id": anchor, "title": title, "lead": lead, "blocks": blocks}


def analyses_of(run: RunFolder) -> dict[str, dict]:
    """The run's analyses (one per time zero) by label."""
    return run.metrics.get("analyses") or {}


TARGET_ORDER = TARGET_NAMES  # hte.vocabulary: survival, RMST, CRS, grade >= 3 CRS


def fits_of(analysis: dict) -> Iterator[tuple[str, str, dict]]:
    """(estimator, target, summary) of one analysis: estimators in the config's order (recorded
    in ``_order`` by ``order_estimators``), targets survival, RMST, CRS, grade >= 3 CRS."""
    estimators = analysis.get("estimators") or {}
    order = analysis.get("_order") or list(estimators)
    for name in sorted(estimators, key=lambda e: order.index(e) if e in order else len(order)):
        by_target = estimators[name] or {}
        for target in sorted(by_target, key=target_rank):
            yield name, target, by_target[target] or {}


def target_rank(target: str) -> int:
    """A target's place in the report's order (unknown targets last)."""
    return TARGET_ORDER.index(target) if target in TARGET_ORDER else len(TARGET_ORDER)


def order_estimators(run: RunFolder) -> None:
    """Record the config's estimator order on each analysis (metrics.json sorts keys)."""
    names = [
        e.get("name") for e in (run.config or {}).get("estimators") or [] if isinstance(e, dict)
    ]
    for analysis in analyses_of(run).values():
        if isinstance(analysis, dict):
            analysis["_order"] = names


def horizon_of(run: RunFolder, target: str) -> Any:
    """The horizon (months) of an OS target: from a fit's summary, else the config."""
    for analysis in analyses_of(run).values():
        for _, t, s in fits_of(analysis):
            if t == target and is_number(s.get("horizon")):
                return s["horizon"]
    os_cfg = ((run.config or {}).get("outcomes") or {}).get("os") or {}
    key = target_info(target).horizon_key if target in TARGET_NAMES else None
    return os_cfg.get(key) if key else None


def truth_of(run: RunFolder) -> dict:
    """The synthetic cohort's decision-time true averages (empty on real data)."""
    return run.metrics.get("decision_truth") or {}


def with_ci(est: Any, lo: Any, hi: Any, target: str) -> str:
    """An effect with its interval in brackets, on the target's display scale."""
    if not is_number(est):
        return DASH
    ci = effect_interval(lo, hi, target)
    return effect(est, target) + ("" if ci == DASH else f" ({ci})")


def hr_text(entry: dict | None) -> str:
    """A hazard ratio with its interval."""
    if not entry or not is_number(entry.get("hr")):
        return DASH
    return f"{entry['hr']:.2f} ({interval(entry.get('lower'), entry.get('upper'))})"


def target_names(run: RunFolder) -> dict[str, str]:
    """Plain target names with the run's horizons."""
    return {t: target_name(t, horizon_of(run, t)) for t in TARGET_ORDER}


def effects_of(run: RunFolder, label: str) -> pd.DataFrame | None:
    """The rows of effects.parquet of one analysis (None without the file)."""
    e = run.effects
    if e is None:
        return None
    return e[e[ANALYSIS] == label] if ANALYSIS in e.columns else e
