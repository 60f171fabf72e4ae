"""The report's "Which model is shown, and how sure it is" section and its summary cards, from
``analyses.<label>.model_choice`` in metrics.json (``hte.pipeline.model_choice``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hte.report import blocks as b
from hte.report import figures as fig
from hte.report.format import (
    DASH,
    effect,
    effect_interval,
    is_number,
    num,
    short_unit,
    target_name,
    target_scale,
)
from hte.report.loader import RunFolder
from hte.report.sections.common import TARGET_ORDER
from hte.runs import shows_average_only


def _choices(run: RunFolder) -> dict[str, dict[str, dict]]:
    """analysis label -> target -> model_choice metrics (targets in report order)."""
    out = {}
    for label, a in (run.metrics.get("analyses") or {}).items():
        mc = a.get("model_choice") if isinstance(a, dict) else None
        if isinstance(mc, dict) and mc:
            order = sorted(mc, key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 9)
            out[label] = {t: mc[t] for t in order}
    return out


def _horizon(run: RunFolder, label: str, target: str) -> Any:
    estimators = ((run.metrics.get("analyses") or {}).get(label) or {}).get("estimators") or {}
    for by_target in estimators.values():
        h = (by_target or {}).get(target, {}).get("horizon")
        if is_number(h):
            return h
    return None


def shown_cards(run: RunFolder) -> list[dict]:
    """Summary cards: per analysis and target, the model the app and report show and why."""
    out = []
    for label, by_target in _choices(run).items():
        items = []
        for target, m in by_target.items():
            if "error" in m:
                continue
            name = target_name(target, _horizon(run, target=target, label=label))
            if shows_average_only(m):
                c = m.get("constant_effect") or {}
                g = ((m.get("patients_like_this") or {}).get("groups") or [{}])[0]
                items.append(
                    {
                        "label": f"{name}: average effect shown",
                        "value": f"{effect(c.get('estimate'), target)} {short_unit(target)}",
                        "sub": f"{run.level} CI {effect_interval(g.get('lower'), g.get('upper'), target)}",
                        "truth": "this cohort does not support individual differences; showing the "
                        "average effect",
                    }
                )
            else:
                items.append(
                    {
                        "label": f"{name}: individual effects shown",
                        "value": str(m.get("chosen")),
                        "sub": _passed_gate(m),
                        "truth": "",
                    }
                )
        if items:
            out.append(b.cards(items, title=f"{label} time zero: the model shown per target"))
    return out


def _passed_gate(m: dict) -> str:
    """Why a learner is shown, in the words of the gate it passed (the loss gate for older runs)."""
    if m.get("preferred") and m.get("chosen") == m.get("gate_learner") == m.get("preferred"):
        return (
            f"its held-out calibration slope is above 0 by {num(m.get('gate_z'), 1)} SE, more "
            f"than the {num(m.get('preferred_threshold_se'), 2)} SE its own test as the "
            "prespecified model asks"
        )
    if m.get("preferred") and m.get("chosen") == m.get("preferred"):
        return (
            f"a learner's held-out calibration slope is above 0 by {num(m.get('gate_z'), 1)} SE; "
            f"the prespecified {m['chosen']} is shown, its {_loss_name(m)} within 2 SE of "
            "that learner's"
        )
    if m.get("gate") == "slope":
        return (
            f"its held-out calibration slope is above 0 by {num(m.get('gate_z'), 1)} SE "
            f"(lowest {_loss_name(m)} of the learners that pass)"
        )
    chosen = next((r for r in m.get("losses") or [] if r.get("candidate") == m.get("chosen")), {})
    return f"beats the constant effect by {num(_z(chosen), 1)} SE ({_loss_name(m)})"


def _loss_name(m: dict) -> str:
    """The held-out loss a selection was made by ("dr" when an older run does not say)."""
    return "held-out R-loss" if m.get("loss") == "r" else "held-out DR loss"


def _z(row: dict) -> float | None:
    d, se = row.get("diff_vs_constant"), row.get("diff_vs_constant_se")
    if not (is_number(d) and is_number(se)) or se == 0:
        return None
    return -d / se


def _loss_table(m: dict, target: str) -> dict:
    rows = []
    for r in m.get("losses") or []:
        rows.append(
            [
                r["candidate"] + (" (shown)" if r["candidate"] == m.get("chosen") else ""),
                num(r.get("loss"), 4),
                num(r.get("loss_se"), 4),
                num(r.get("diff_vs_constant"), 4) + f" ± {num(r.get('diff_vs_constant_se'), 4)}",
                num(_z(r), 1) if r["candidate"] != "constant" else DASH,
            ]
        )
    return b.table(
        [
            "candidate",
            _loss_name(m),
            "SE",
            "difference vs constant ± SE",
            "gain over constant (SE)",
        ],
        rows,
        numeric_from=1,
        reading=str(m.get("reason", "")),
    )


def _groups_table(m: dict, target: str, level: str) -> dict:
    pl = m.get("patients_like_this") or {}
    rows = [
        [
            str(i + 1),
            str(g.get("n")),
            f"{effect(g.get('estimate'), target)} "
            f"({effect_interval(g.get('lower'), g.get('upper'), target)})",
        ]
        for i, g in enumerate(pl.get("groups") or [])
    ]
    return b.table(
        ["predicted-benefit group", "patients", f"DR estimate ({level} CI)"],
        rows,
        numeric_from=1,
        reading=str(pl.get("method", "")),
    )


def _calibration_table(m: dict) -> dict:
    rows = []
    for name, c in (m.get("benefit_calibration") or {}).items():
        rows.append(
            [
                name,
                f"{num(c.get('intercept'), 3)} ± {num(c.get('intercept_se'), 3)}",
                f"{num(c.get('slope'), 2)} ± {num(c.get('slope_se'), 2)}",
                num(c.get("e_for_benefit"), 3),
                num(c.get("c_for_benefit"), 3),
            ]
        )
    method = next(iter((m.get("benefit_calibration") or {}).values()), {}).get("method", "")
    return b.table(
        ["learner", "calibration intercept ± SE", "slope ± SE", "E-for-benefit", "c-for-benefit"],
        rows,
        numeric_from=1,
        reading="A model calibrated for benefit has slope 1 and intercept 0: slope below 1 means "
        "its predicted differences between patients are too large. " + str(method),
    )


def calibration_figure(panels: list[dict]) -> str | None:
    """Per target: the chosen (or each) model's quintile predicted benefit against the DR-observed
    benefit with its intervals (the run's level), and the identity line."""
    if not panels:
        return None
    f = fig._figure(3.6 * len(panels), 3.2)
    axes = f.subplots(1, len(panels), squeeze=False)[0]
    for ax, p in zip(axes, panels, strict=True):
        scale = target_scale(p["target"])
        for k, (name, groups) in enumerate(p["models"].items()):
            x = np.array([g["predicted"] for g in groups], float) * scale
            y = np.array([g["observed"] for g in groups], float) * scale
            lo = np.array([g["lower"] for g in groups], float) * scale
            hi = np.array([g["upper"] for g in groups], float) * scale
            ax.errorbar(
                x + 0.002 * k * np.ptp(y),
                y,
                yerr=[y - lo, hi - y],
                fmt="o",
                ms=4,
                capsize=2,
                color=fig.PALETTE[k % len(fig.PALETTE)],
                label=name,
            )
        lims = ax.get_xlim()
        ax.plot(lims, lims, color="#888", lw=0.8, ls="--")
        ax.set_title(p["title"], fontsize=9)
        ax.set_xlabel(f"predicted benefit ({short_unit(p['target'])}), held out", fontsize=8)
        ax.set_ylabel(f"DR-observed benefit ({short_unit(p['target'])})", fontsize=8)
        ax.legend(fontsize=6, frameon=False)
        fig._style(ax)
    return fig.data_uri(f)


def model_choice_section(run: RunFolder) -> dict:
    blocks: list[dict] = []
    choices = _choices(run)
    panels = []
    for label, by_target in choices.items():
        if len(choices) > 1:
            blocks.append(b.h3(f"{label} time zero"))
        for target, m in by_target.items():
            name = target_name(target, _horizon(run, label, target))
            blocks.append(b.h3(name))
            if "error" in m:
                blocks.append(b.missing(f"model choice for {name}", str(m["error"])))
                continue
            if m.get("statement"):
                blocks.append(b.caution(str(m["statement"]).capitalize() + "."))
            blocks.append(_loss_table(m, target))
            other = m.get("other_loss")
            if isinstance(other, dict) and other.get("losses"):
                blocks.append(b.text(f"For comparison, by the {_loss_name(other)}:", muted=True))
                blocks.append(_loss_table(other, target))
            stack = m.get("stack")
            if stack:
                weights = ", ".join(f"{k} {num(v, 2)}" for k, v in stack["weights"].items() if v)
                blocks.append(
                    b.text(
                        f"Stack: intercept {num(stack['intercept'], 3)}; weights "
                        f"{weights or 'none'}. {stack.get('note', '')}",
                        muted=True,
                    )
                )
            blocks.append(_groups_table(m, target, run.level))
            if m.get("benefit_calibration"):
                blocks.append(_calibration_table(m))
                cal = m["benefit_calibration"]
                shown = m.get("chosen")
                models = (
                    {shown: cal[shown]["groups"]}
                    if shown in cal
                    else {k: v["groups"] for k, v in cal.items()}
                )
                panels.append(
                    {
                        "target": target,
                        "models": models,
                        "title": f"{name} ({label})" if len(choices) > 1 else name,
                    }
                )
    if not choices:
        blocks.append(b.missing("model choice by held-out doubly robust loss"))
    else:
        blocks.append(b.h3("Calibration for benefit"))
        blocks.append(
            b.figure(
                calibration_figure(panels),
                "calibration for benefit",
                "Held-out predicted-benefit fifths of the shown model (every learner when the "
                f"constant is shown) against their doubly robust observed benefit, {run.level} intervals; "
                "dashed: perfect calibration.",
            )
        )
    lead = (
        "Every learner and a constant (average-only) effect are scored on patients they did not "
        "see, by the doubly robust loss mean((Gamma - tau_hat)^2) and by the R-loss "
        "mean(((Y - m(x)) - (W - e(x)) tau_hat)^2); the app and this report show the constant "
        "unless a learner beats it by more than 2 standard errors of the paired difference in "
        "the run's chosen loss (named above each table). 'Patients like this' gives the DR estimate of the shown model's "
        "predicted-benefit fifth: an interval for a group's mean effect, which is what the data "
        "can cover."
    )
    return {
        "id": "model-choice",
        "title": "Which model is shown, and how sure it is",
        "lead": lead,
        "blocks": blocks,
    }
