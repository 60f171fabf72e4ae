"""Run-folder subgroup evidence: CATE rules, policy trees over CRS weights, prespecified subgroups.

``subgroup_evidence`` turns one analysis' fits and doubly robust scores into the JSON-ready dict
stored in metrics.json under ``analyses.<label>.subgroups`` (shape in its docstring). Everything is
in-sample (rules, policies and subgroups are judged on the patients the estimators were fitted
on): read leaf intervals and policy values as optimistic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from functools import partial

import numpy as np
import pandas as pd

from hte.explain.subgroups import (
    PolicyResult,
    RuleSet,
    cate_rules,
    policy_tree,
    policy_value_cv,
    prespecified_subgroups,
)
from hte.pipeline.parallel import map_tasks
from hte.pipeline.results import truth_column
from hte.pipeline.stages import AnalysisData, FittedEffect
from hte.vocabulary import preference_rank

log = logging.getLogger("hte.pipeline")

POLICY_OS_TARGET = "survival"
POLICY_CRS_TARGET = "crs"
CRS_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 1.0)
N_JOBS = 2  # worker processes of the policy-tree searches, one per CRS weight (1 = here)

Scores = Mapping[str, tuple]  # target -> (keep mask, DR scores of the kept rows[, source])


def _num(x) -> float | None:
    """Plain float, NaN/inf -> None (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _successful(fits: Sequence[FittedEffect]) -> list[FittedEffect]:
    return [f for f in fits if f.error is None and f.estimate is not None]


def rule_fit(fits: Sequence[FittedEffect], target: str) -> FittedEffect | None:
    """The fit whose CATE the rules of a target describe: the successful fit of that target
    whose kind ranks first in the registry's preference (``hte.vocabulary.preference``: the
    causal survival forest for OS, the CRS causal forest for CRS)."""
    candidates = [f for f in _successful(fits) if f.target == target]
    candidates.sort(key=lambda f: preference_rank(f.kind, target))
    return (candidates or [None])[0]


def _categories(data: AnalysisData) -> dict[str, tuple[str, ...]]:
    encodings = getattr(data.design.encoder, "encodings_", [])
    return {e.name: e.levels for e in encodings if e.kind == "categorical"}


def _checked_scores(data: AnalysisData, scores: Scores) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    n = len(data.cohort)
    out = {}
    for target, entry in scores.items():
        keep, values = np.asarray(entry[0], dtype=bool), entry[1]
        if keep.shape != (n,):
            raise ValueError(
                f"scores[{target!r}]: keep mask must have one entry per analysed patient ({n}); "
                f"got shape {keep.shape}"
            )
        values = np.asarray(values, dtype=float)
        if values.shape != (int(keep.sum()),):
            raise ValueError(
                f"scores[{target!r}]: {int(keep.sum())} kept rows but {values.shape} scores"
            )
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"scores[{target!r}] must be finite; rows {np.flatnonzero(bad)[:5].tolist()} of "
                "the kept rows are not"
            )
        out[target] = (keep, values)
    return out


# --------------------------------------------------------------------------------------------------
# sections


def _rules_json(rules: RuleSet, estimator: str) -> dict:
    return {
        "estimator": estimator,
        "max_depth": rules.max_depth,
        "fidelity_r2": _num(rules.fidelity_r2),
        "leaves": [
            {
                "rule": leaf.rule,
                "n": leaf.n,
                "share": _num(leaf.share),
                "mean_cate": _num(leaf.mean_cate),
                "estimate": _num(leaf.estimate),
                "lower": _num(leaf.lower),
                "upper": _num(leaf.upper),
            }
            for leaf in rules.leaves
        ],
    }


def _rules_section(data, fits, scores, max_depth, alpha, seed) -> dict:
    out = {}
    n = len(data.cohort)
    for target in dict.fromkeys(f.target for f in _successful(fits)):
        fit = rule_fit(fits, target)
        keep, values = scores.get(target, (np.ones(n, dtype=bool), None))
        cate = np.asarray(fit.estimate.effect, dtype=float)[keep]
        if not np.isfinite(cate).all():
            log.warning(
                "no subgroup rules for %s/%s: %s has non-finite effects",
                data.label,
                target,
                fit.estimator,
            )
            continue
        rules = cate_rules(
            data.X[keep].reset_index(drop=True),
            cate,
            values,
            max_depth=max_depth,
            alpha=alpha,
            random_state=seed,
            categories=_categories(data),
        )
        out[target] = _rules_json(rules, fit.estimator)
    return out


def _interval_json(interval) -> dict:
    return {
        "estimate": _num(interval.estimate),
        "lower": _num(interval.lower),
        "upper": _num(interval.upper),
    }


def _policy_json(result: PolicyResult) -> dict:
    return {
        "crs_weight": float(result.crs_weight),
        "share_cart": _num(result.share_cart),
        "leaves": [
            {
                "rule": leaf.rule,
                "n": leaf.n,
                "action": leaf.action,
                "net_benefit": _num(leaf.net_benefit),
                "lower": _num(leaf.lower),
                "upper": _num(leaf.upper),
            }
            for leaf in result.leaves
        ],
        "value": {
            "policy": _interval_json(result.value_policy),
            "all_cart": _interval_json(result.value_all_cart),
            "all_tec": _interval_json(result.value_all_tec),
        },
    }


def _horizon(fits: Sequence[FittedEffect], target: str) -> float | None:
    for fit in fits:
        if fit.target == target and fit.horizon is not None:
            return float(fit.horizon)
    return None


def _units(horizon: float | None, crs_target: str | None) -> str:
    months = f"{horizon:g}-month" if horizon is not None else "horizon"
    text = f"difference in {months} survival probability (CAR-T minus teclistamab)"
    if crs_target is not None:
        label = "grade >= 3 CRS" if crs_target == "crs_g3" else "CRS"
        text += f" minus crs_weight x {label} risk difference"
    return text + "; policy values are relative to treating everyone with teclistamab"


def _policy_section(data, fits, scores, crs_weights, max_depth, alpha, seed) -> dict | None:
    if POLICY_OS_TARGET not in scores:
        return None
    n = len(data.cohort)
    os_keep, os_values = scores[POLICY_OS_TARGET]
    os_full = np.full(n, np.nan)
    os_full[os_keep] = os_values
    rows, crs_full = os_keep.copy(), None
    crs_target = POLICY_CRS_TARGET if POLICY_CRS_TARGET in scores else None
    if crs_target is not None:
        crs_keep, crs_values = scores[crs_target]
        crs_full = np.full(n, np.nan)
        crs_full[crs_keep] = crs_values
        rows &= crs_keep
    X = data.X[rows].reset_index(drop=True)
    net_inputs = (X, os_full[rows], None if crs_full is None else crs_full[rows])
    # no CRS scores: only the OS-only policy is defined
    weights = [float(w) for w in crs_weights if w == 0 or crs_target is not None]
    settings = {"max_depth": max_depth, "alpha": alpha, "random_state": seed}
    task = partial(
        _policy_for_weight, net_inputs=net_inputs, settings=settings, categories=_categories(data)
    )
    trees = list(map_tasks(task, weights, N_JOBS))  # independent searches: in the workers
    return {
        "os_target": POLICY_OS_TARGET,
        "crs_target": crs_target,
        "units": _units(_horizon(fits, POLICY_OS_TARGET), crs_target),
        "trees": trees,
    }


def _policy_for_weight(weight: float, net_inputs: tuple, settings: dict, categories) -> dict:
    """The policy tree of one CRS weight, JSON-ready, with the held-out value of its search
    (module-level: runs in a worker)."""
    settings = {**settings, "crs_weight": weight}
    tree = _policy_json(policy_tree(*net_inputs, **settings, categories=categories))
    # the in-sample value of a searched tree is optimistic: the held-out value of the search
    # (each patient's arm from a tree searched without them) sits beside it
    tree["value"]["policy_cross_validated"] = _interval_json(
        policy_value_cv(*net_inputs, **settings)
    )
    return tree


def _prespecified_section(data, fits, scores, alpha) -> list[dict]:
    out = []
    ok = _successful(fits)
    for target, (keep, values) in scores.items():
        cohort = data.cohort[keep].reset_index(drop=True)
        cate = {}
        for fit in (f for f in ok if f.target == target):
            effect = np.asarray(fit.estimate.effect, dtype=float)[keep]
            if np.isfinite(effect).all():
                cate[fit.estimator] = effect
        column = truth_column(target, _horizon(fits, target))
        truth = cohort[column].to_numpy(dtype=float) if column in cohort.columns else None
        table = prespecified_subgroups(cohort, values, cate=cate, truth=truth, alpha=alpha)
        out.extend(_prespecified_rows(table, target, list(cate), truth is not None))
    return out


def _prespecified_rows(table: pd.DataFrame, target: str, names, has_truth: bool) -> list[dict]:
    rows = []
    for rec in table.to_dict("records"):
        note = rec.get("note")
        rows.append(
            {
                "subgroup": rec["subgroup"],
                "target": target,
                "n": int(rec["n"]),
                "n_cart": int(rec["n_cart"]),
                "n_tec": int(rec["n_tec"]),
                "estimate": _num(rec.get("estimate")),
                "lower": _num(rec.get("lower")),
                "upper": _num(rec.get("upper")),
                "complement_estimate": _num(rec.get("complement_estimate")),
                "difference": _num(rec.get("difference")),
                "difference_lower": _num(rec.get("difference_lower")),
                "difference_upper": _num(rec.get("difference_upper")),
                "difference_p_value": _num(rec.get("difference_p_value")),
                "mean_cate": {name: _num(rec.get(f"mean_cate_{name}")) for name in names},
                "truth": _num(rec.get("truth")) if has_truth else None,
                "note": note if isinstance(note, str) else None,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# entry points


def subgroup_evidence(
    data: AnalysisData,
    fits: list[FittedEffect],
    scores: Scores,
    *,
    crs_weights: Sequence[float] = CRS_WEIGHTS,
    max_depth: int = 2,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict:
    """Subgroup rules, policy trees and prespecified subgroups of one analysis, JSON-ready.

    ``scores[target] = (keep, dr_scores)``: a boolean mask over the analysed cohort and the DR
    scores of the kept rows, for any of "survival", "rmst", "crs", "crs_g3" (a third element,
    e.g. the source text of ``hte.pipeline.target_scores.target_scores``, is ignored). Returns::

        {"rules": {target: {"estimator", "max_depth", "fidelity_r2",
                            "leaves": [{"rule", "n", "share", "mean_cate",
                                        "estimate", "lower", "upper"}]}},
         "policy": {"os_target": "survival", "crs_target": "crs" | None, "units",
                    "trees": [{"crs_weight", "share_cart",
                               "leaves": [{"rule", "n", "action", "net_benefit",
                                           "lower", "upper"}],
                               "value": {"policy" | "all_cart" | "all_tec":
                                         {"estimate", "lower", "upper"}}}]} | None,
         "prespecified": [{"subgroup", "target", "n", "n_cart", "n_tec", "estimate", "lower",
                           "upper", "complement_estimate", "difference", "difference_lower",
                           "difference_upper", "difference_p_value", "mean_cate": {name: x},
                           "truth", "note"}]}

    Rules describe the CATE of the causal survival forest (OS targets) / CRS causal forest, else
    the first successful fit of the target (named in "estimator"); leaf estimates are None for a
    target without scores. "policy" is None without survival scores; without CRS scores only the
    crs_weight 0 tree is made. NaN becomes None.
    """
    weights = [float(w) for w in crs_weights]
    bad = [w for w in weights if not math.isfinite(w) or w < 0]
    if bad:
        raise ValueError(f"crs_weights must be finite and >= 0; got {bad}")
    checked = _checked_scores(data, scores)
    return {
        "rules": _rules_section(data, fits, checked, max_depth, alpha, seed),
        "policy": _policy_section(data, fits, checked, weights, max_depth, alpha, seed),
        "prespecified": _prespecified_section(data, fits, checked, alpha),
    }
