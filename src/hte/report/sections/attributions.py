"""The Attributions (SHAP) section: one card per estimator and target."""

from __future__ import annotations

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.format import is_number, num, short_unit, target_name, target_scale
from hte.report.loader import RunFolder
from hte.report.sections.common import FIDELITY_WARN, analyses_of, fits_of, section
from hte.runs import SHAP_PREFIX, fit_key, shap_figure_name


def attributions_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    analyses = analyses_of(run)
    shap_note = (run.metrics.get("explanation") or {}).get("shap")
    for label, a in analyses.items():
        if len(analyses) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        items = []
        for est, target, s in fits_of(a):
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
    lead = (
        "Which baseline features move each estimator's per-patient effect (SHAP values of a "
        "boosted-tree surrogate fitted to the estimator's own effects). Fidelity R² "
        "(cross-validated) says how well the surrogate copies the estimator; below "
        f"{FIDELITY_WARN} read its attributions loosely. Attributions explain the model, not "
        "the biology."
    )
    return section("attributions", "Attributions (SHAP)", lead, blocks)


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
    png = run.figures.get(shap_figure_name(label, fit_key(est, target)))
    if png is not None:
        blocks.append(b.figure(fig.file_uri(png), f"beeswarm {est} {target}", None, wide=False))
    elif shap is not None and top:
        blocks.append(
            b.figure(
                fig.swarm_figure(shap, [f for f, _ in top], target),
                f"beeswarm {est} {target}",
                "uncoloured: the run folder keeps no covariate values",
                wide=False,
            )
        )
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
            blocks.append(
                b.text("Drives each arm's own prediction: " + "; ".join(parts) + ".", muted=True)
            )
    fidelity = (
        f"fidelity R² (cross-validated) {num(r2)}"
        if is_number(r2)
        else (
            "exact attributions (no surrogate)"
            if summary.get("method") not in (None, "surrogate")
            else "fidelity R²: not recorded"
        )
    )
    return {
        "title": f"{est} · {target_name(target, s.get('horizon'))}",
        "subtitle": fidelity,
        "warn": is_number(r2) and r2 < FIDELITY_WARN,
        "blocks": blocks,
    }
