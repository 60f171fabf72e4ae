"""Cohort, subgroup and diagnostics views of a run folder: figures and tables, read from the files
``hte run`` wrote (effects.parquet, metrics.json, attributions/, figures/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hte import vocabulary
from hte.app import plots
from hte.app.run_view import EstimatorTarget, RunView
from hte.app.tables import NOT_IN_RUN, fmt, interval_rows, records_frame
from hte.runs import SHAP_PREFIX, shows_average_only

TARGET_WORDS = {
    "survival": "12-month survival difference",
    "rmst": "RMST difference (months)",
    "crs": "CRS risk difference",
    "crs_g3": "grade >= 3 CRS risk difference",
}


def target_words(view: RunView, fit: EstimatorTarget) -> str:
    horizon = view.summary(fit).horizon
    if fit.target == "survival" and horizon:
        return f"{horizon:g}-month survival difference"
    if fit.target == "rmst" and horizon:
        return f"RMST difference to {horizon:g} months (months)"
    return TARGET_WORDS.get(fit.target, fit.target)


def _effect(view: RunView, fit: EstimatorTarget | None) -> np.ndarray | None:
    if fit is None:
        return None
    frame = view.effects_of(fit)
    return None if frame is None else frame["effect"].to_numpy(dtype=float)


# --------------------------------------------------------------------------------------------------
# Cohort and subgroups


@dataclass(frozen=True)
class CohortTab:
    distributions: Figure
    benefit_harm: Figure
    policy_text: str
    policy_leaves: pd.DataFrame
    rules: pd.DataFrame
    prespecified_plot: Figure
    prespecified: pd.DataFrame
    toc: Figure
    headline: str


def cohort_tab(view: RunView, crs_weight: float = 1.0) -> CohortTab:
    os_fit, crs_fit = view.primary("survival"), view.primary("crs")
    os_eff, crs_eff = _effect(view, os_fit), _effect(view, crs_fit)
    os_label = target_words(view, os_fit) if os_fit else "OS"
    crs_label = target_words(view, crs_fit) if crs_fit else "CRS"
    # a target whose held-out check found no individual differences: its spread is the
    # estimator's noise, drawn for reference and labelled so (the headline says why)
    os_label += " (not supported, see above)" if _constant_choice(view, "survival") else ""
    crs_label += " (not supported, see above)" if _constant_choice(view, "crs") else ""
    dist = plots.effect_distributions(os_eff, crs_eff, os_label, crs_label)
    if os_eff is not None and crs_eff is not None and len(os_eff) == len(crs_eff):
        scatter = plots.benefit_vs_harm(os_eff, crs_eff, crs_weight, os_label, crs_label)
    else:
        scatter = plots.message_figure("benefit against harm needs both OS and CRS effects")
    sub = view.subgroups()
    policy_text, leaves = policy_for_weight(sub, crs_weight, view.level)
    failed = view.section_error("subgroups")
    if failed:
        policy_text = f"Subgroup rules and policy trees failed in this run: {failed}"
    rules = rules_table(sub.get("rules") if sub else None, view.level)
    pre = sub.get("prespecified") if sub else None
    pre_plot = _prespecified_plot(view, pre)
    pre_table = records_frame(pre) if pre is not None else _absent()
    toc_fig = _toc_figure(view, os_fit)
    headline = _headline(view, os_fit, crs_fit, os_eff, crs_eff)
    return CohortTab(
        dist, scatter, policy_text, leaves, rules, pre_plot, pre_table, toc_fig, headline
    )


TARGET_ORDER = vocabulary.TARGET_ORDER  # survival, RMST, CRS, grade >= 3 CRS


def _ci_text(row: dict, key: str = "estimate") -> str:
    est = row.get(key)
    if est is None:
        return "-"
    lo, hi = row.get("lower"), row.get("upper")
    return f"{fmt(est)} ({fmt(lo)} to {fmt(hi)})" if lo is not None and hi is not None else fmt(est)


def rules_table(rules: dict | None, level: str) -> pd.DataFrame:
    """One row per leaf of each target's rule tree (who benefits, in words), OS targets first;
    ``level``: the run's interval level (``RunView.level``)."""
    if not rules:
        return _absent()
    rows = []
    for target in sorted(rules, key=lambda t: TARGET_ORDER.get(t, 9)):
        tree = rules[target]
        if not isinstance(tree, dict):
            continue
        for leaf in tree.get("leaves") or []:
            rows.append(
                {
                    "target": target,
                    "rule": leaf.get("rule"),
                    "n": leaf.get("n"),
                    f"effect in the leaf ({level} CI)": _ci_text(leaf),
                    "mean predicted effect": leaf.get("mean_cate"),
                    "estimator (fidelity R²)": f"{tree.get('estimator')} ({fmt(tree.get('fidelity_r2'))})",
                }
            )
    return records_frame(rows) if rows else _absent()


def _prespecified_plot(view: RunView, pre: list | None) -> Figure:
    if not pre:
        return plots.message_figure(f"prespecified subgroups: {NOT_IN_RUN}")
    targets = [r.get("target") for r in pre if isinstance(r, dict)]
    target = next((t for t in ("survival", "rmst", "crs") if t in targets), None)
    rows = interval_rows([r for r in pre if r.get("target") == target])
    if rows is None:
        return plots.message_figure("prespecified subgroups: no intervals to plot")
    fit = view.primary(target)
    words = target_words(view, fit) if fit else target
    return plots.forest_plot(
        rows,
        "label",
        f"Prespecified subgroups: {words}",
        "effect within the subgroup (CAR-T minus teclistamab)",
    )


def _absent() -> pd.DataFrame:
    return pd.DataFrame({"": [NOT_IN_RUN]})


def _toc_figure(view: RunView, fit: EstimatorTarget | None) -> Figure:
    toc = view.toc(fit) if fit is not None else None
    if toc is None:
        return plots.message_figure(f"TOC curve: {NOT_IN_RUN}")
    return plots.toc_curve(toc, f"TOC of {fit.estimator} ({target_words(view, fit)})")


def policy_weights(sub: dict | None) -> list[float]:
    trees = ((sub or {}).get("policy") or {}).get("trees") or []
    return [float(t.get("crs_weight", 0.0)) for t in trees]


def policy_for_weight(sub: dict | None, crs_weight: float, level: str) -> tuple[str, pd.DataFrame]:
    """The precomputed policy tree whose CRS weight is nearest the slider's (``level``: the run's
    interval level)."""
    trees = ((sub or {}).get("policy") or {}).get("trees") or []
    if not trees:
        return f"Policy tree: {NOT_IN_RUN}.", _absent()
    tree = min(trees, key=lambda t: abs(float(t.get("crs_weight", 0.0)) - crs_weight))
    share = tree.get("share_cart")
    text = (
        f"**Policy tree at CRS weight {fmt(tree.get('crs_weight'))}** (nearest to the slider): "
        f"CAR-T for {share:.0%} of patients"
        if share is not None
        else f"**Policy tree at CRS weight {fmt(tree.get('crs_weight'))}**"
    )
    value = tree.get("value")
    if isinstance(value, dict):
        words = {
            "policy": "this policy (in-sample)",
            "policy_cross_validated": "this policy (cross-validated)",
            "all_cart": "CAR-T for all",
            "all_tec": "teclistamab for all",
        }
        parts = [
            f"{words.get(k, k)} {fmt(v.get('estimate'))} ({fmt(v.get('lower'))} to "
            f"{fmt(v.get('upper'))})"
            for k, v in value.items()
            if isinstance(v, dict)
        ]
        if parts:
            text += "; mean net benefit: " + ", ".join(parts)
    elif value is not None:
        text += f"; mean net benefit under the policy {fmt(value)}"
    text += ". Net benefit = OS gain minus weight x extra CRS risk."
    leaves = [
        {
            "rule": leaf.get("rule"),
            "treat with": {"cart": "CAR-T", "tec": "teclistamab"}.get(
                leaf.get("action"), leaf.get("action")
            ),
            "n": leaf.get("n"),
            f"net benefit ({level} CI)": _ci_text(leaf, "net_benefit"),
        }
        for leaf in tree.get("leaves") or []
    ]
    return text, records_frame(leaves)


def _constant_choice(view: RunView, target: str) -> dict | None:
    """The run's held-out model choice for ``target`` when it chose the constant (average)
    effect: no learner ranked patients by benefit beyond chance."""
    choice = (view.analysis().model_choice or {}).get(target)
    return choice if shows_average_only(choice) else None


def _average_only(view: RunView, target: str, fit: EstimatorTarget, words: str) -> str:
    """What to say instead of a spread the data do not support."""
    groups = (_constant_choice(view, target) or {}).get("patients_like_this", {}).get("groups")
    average = ""
    if groups:
        g = groups[0]
        average = f" The average effect is {_ci_text(g)} ({view.level} CI)."
    return (
        f"{words}: this cohort does not support individual differences (no learner's held-out "
        f"predictions ranked patients by benefit beyond chance).{average} The histogram shows "
        f"{fit.estimator}'s per-patient estimates for reference only: their spread is not a "
        "finding."
    )


def _headline(view, os_fit, crs_fit, os_eff, crs_eff) -> str:
    parts = [
        f"**{view.name}**, analysis `{view.labels[0]}`: {view.analysis().n_analysed:,} patients."
    ]
    if os_eff is not None:
        if _constant_choice(view, "survival"):
            parts.append(_average_only(view, "survival", os_fit, "OS"))
        else:
            parts.append(
                f"OS ({os_fit.estimator}): mean {fmt(np.mean(os_eff))}, "
                f"{np.mean(os_eff > 0):.0%} of patients with a predicted gain under CAR-T."
            )
    if crs_eff is not None:
        if _constant_choice(view, "crs"):
            parts.append(_average_only(view, "crs", crs_fit, "CRS"))
        else:
            parts.append(
                f"CRS ({crs_fit.estimator}): mean risk difference {fmt(np.mean(crs_eff))}."
            )
    return " ".join(parts)


# --------------------------------------------------------------------------------------------------
# Attributions and diagnostics


def fit_choices(view: RunView) -> list[tuple[str, str]]:
    """(label, key) pairs of fits with attributions, primary estimators first."""
    fits = view.attribution_fits()
    primary = {f.key for t in vocabulary.TARGET_NAMES if (f := view.primary(t))}
    fits.sort(key=lambda f: (f.key not in primary, TARGET_ORDER.get(f.target, 9), f.estimator))
    return [(f"{f.estimator} · {target_words(view, f)}", f.key) for f in fits]


def find_fit(view: RunView, key: str | None) -> EstimatorTarget | None:
    return next((f for f in view.fits() if f.key == key), None)


@dataclass(frozen=True)
class AttributionView:
    importance: Figure
    beeswarm: str | None
    fidelity: str


def attribution_view(view: RunView, key: str | None) -> AttributionView:
    fit = find_fit(view, key)
    shap = view.attributions(fit) if fit is not None else None
    if shap is None:
        return AttributionView(
            plots.message_figure(f"SHAP attributions: {NOT_IN_RUN}"), None, NOT_IN_RUN
        )
    fig = plots.importance(shap, f"Global importance\n{fit.estimator} · {target_words(view, fit)}")
    summary = view.summary(fit).attributions or {}
    beeswarm = view.beeswarm(fit)
    return AttributionView(fig, str(beeswarm) if beeswarm else None, fidelity_text(summary))


def fidelity_text(summary: dict) -> str:
    method = summary.get("method", "?")
    n = summary.get("n_patients")
    text = f"Method: **{method}** on {n} patients." if n else f"Method: **{method}**."
    r2 = summary.get("surrogate_r2_cv")
    if r2 is not None:
        flag = "" if r2 >= 0.8 else " (low: read the attributions with care)"
        text += (
            f" Fidelity of the surrogate to the model's effects: cross-validated R² = "
            f"**{fmt(r2)}**{flag}."
        )
    elif method == "surrogate":
        text += " Fidelity not recorded."
    else:
        text += " Exact attributions of the model (no surrogate)."
    return text


def dependence_features(view: RunView, key: str | None) -> list[str]:
    """Features of a fit's attributions, most important first."""
    fit = find_fit(view, key)
    shap = view.attributions(fit) if fit is not None else None
    if shap is None:
        return []
    cols = [c for c in shap.columns if c.startswith(SHAP_PREFIX)]
    ranked = shap[cols].abs().mean().sort_values(ascending=False).index
    return [c.removeprefix(SHAP_PREFIX) for c in ranked]


def dependence_figure(view: RunView, key: str | None, feature: str | None) -> Figure:
    fit = find_fit(view, key)
    shap = view.attributions(fit) if fit is not None else None
    if shap is None or not feature or SHAP_PREFIX + feature not in shap:
        return plots.message_figure(f"SHAP dependence: {NOT_IN_RUN}")
    X = view.design_matrix()
    if X is None or feature not in X or shap["row"].max() >= len(X):
        return plots.message_figure("SHAP dependence: the run's data cannot be read again")
    x = X[feature].to_numpy(dtype=float)[shap["row"].to_numpy()]
    return plots.dependence(
        x,
        shap[SHAP_PREFIX + feature].to_numpy(float),
        feature,
        f"Dependence: {feature}\n{fit.estimator} · {target_words(view, fit)}",
    )


def rate_table(view: RunView) -> pd.DataFrame:
    """RATE (AUTOC, Qini) and BLP calibration per estimator/target."""
    rows = []
    for fit in view.fits():
        het = view.summary(fit).heterogeneity or {}
        if not het:
            continue
        row: dict[str, Any] = {"estimator": fit.estimator, "target": fit.target}
        for name in ("autoc", "qini"):
            r = het.get(name) or {}
            if r:
                row[name.upper()] = (
                    f"{fmt(r.get('estimate'))} [{fmt(r.get('lower'))}, "
                    f"{fmt(r.get('upper'))}] p={fmt(r.get('p_value'))}"
                )
        blp = het.get("blp") or {}
        if blp:
            row["BLP mean coef"] = fmt(blp.get("mean_coef"))
            row["BLP differential coef"] = (
                f"{fmt(blp.get('differential_coef'))} p={fmt(blp.get('differential_p_value'))}"
            )
        row.update(_choice_columns(view, fit))
        rows.append(row)
    return pd.DataFrame(rows).fillna("-") if rows else _absent()


def _choice_columns(view: RunView, fit) -> dict[str, Any]:
    """Held-out DR loss against the constant, calibration for benefit and whether the app shows
    this estimator (analyses.<label>.model_choice in metrics.json; empty for older runs)."""
    choice = (view.analysis().model_choice or {}).get(fit.target) or {}
    if not choice or "error" in choice:
        return {}
    loss = next((r for r in choice.get("losses") or [] if r.get("candidate") == fit.estimator), {})
    cal = (choice.get("benefit_calibration") or {}).get(fit.estimator) or {}
    se = loss.get("diff_vs_constant_se")
    z = -loss["diff_vs_constant"] / se if loss and se else None
    return {
        "shown": "yes"
        if choice.get("chosen") == fit.estimator
        else ("no (average effect shown)" if shows_average_only(choice) else "no"),
        "held-out DR loss gain over constant (SE)": fmt(z),
        "calibration for benefit: slope": fmt(cal.get("slope")),
        "E-for-benefit": fmt(cal.get("e_for_benefit")),
        "c-for-benefit": fmt(cal.get("c_for_benefit")),
    }


def averages_table(view: RunView) -> pd.DataFrame:
    """IPTW / AIPW averages and the hazard ratio, to set beside published numbers."""
    base = view.analysis().baselines or {}
    rows = []
    for name, b in base.items():
        est = b.get("estimate", b.get("hr"))
        rows.append(
            {
                "average": name,
                "estimate": fmt(est),
                f"{view.level} interval": f"{fmt(b.get('lower'))} to {fmt(b.get('upper'))}",
                "method": b.get("method", ""),
            }
        )
    return pd.DataFrame(rows) if rows else _absent()


def robustness_tables(view: RunView) -> tuple[pd.DataFrame, pd.DataFrame]:
    rob = view.robustness()
    failed = view.section_error("robustness")
    if failed:
        table = pd.DataFrame({"": [f"robustness checks failed in this run: {failed}"]})
        return table, table
    if not rob:
        return _absent(), _absent()
    ref = [
        {
            "target": r.get("target"),
            "refuter": r.get("refuter"),
            "original estimate": r.get("original"),
            f"refuted estimate ({view.level} CI)": _ci_text(r),
            "expected": r.get("expected"),
            "passed": r.get("passed"),
            "what was done": r.get("description"),
        }
        for r in rob.get("refutations") or []
    ]
    ev = [
        {
            "target": e.get("target"),
            "measure": e.get("measure"),
            f"estimate ({view.level} CI)": _ci_text(e),
            "E-value": e.get("evalue"),
            "E-value of the CI bound": e.get("evalue_ci"),
            "note": e.get("note"),
        }
        for e in rob.get("evalues") or []
    ]
    return (records_frame(ref) if ref else _absent(), records_frame(ev) if ev else _absent())


def overlap_text(view: RunView) -> str:
    ov = view.analysis().overlap or {}
    share = (ov.get("share_outside_05_95") or {}).get("all")
    ess = ov.get("ess_ipw") or {}
    bal = view.analysis().balance
    parts = []
    if share is not None:
        parts.append(f"{share:.1%} of patients have a propensity outside 0.05-0.95.")
    if ess:
        parts.append(
            f"Effective sample size under IPW: CAR-T {fmt(ess.get('cart'))}, "
            f"teclistamab {fmt(ess.get('tec'))}."
        )
    if bal is not None and bal.max_abs_smd is not None:
        parts.append(
            f"Largest |SMD|: {fmt(bal.max_abs_smd)} unweighted, "
            f"{fmt(bal.max_abs_smd_iptw)} after IPTW."
        )
    for note in ov.get("notes") or []:
        parts.append(f"⚠ {note}")
    return " ".join(parts) or NOT_IN_RUN
