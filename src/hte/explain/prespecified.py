"""Prespecified subgroups: the subgroups a clinician asks about (age, prior transplant,
extramedullary disease, cytogenetics, ECOG), each with its doubly robust estimate, the rest
of the cohort's, and the difference with its p-value: the interaction test a subgroup claim
needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from hte.data.columns import CART, TEC, TREATMENT
from hte.explain.subgroup_base import check_vector, mean_interval, shown_rows

MIN_PER_ARM = 10  # prespecified subgroups: fewer patients in an arm -> no estimate

# (label, column, membership rule) of the prespecified subgroups
PRESPECIFIED: tuple[tuple[str, str, object], ...] = (
    ("age >= 65", "age", lambda s: s >= 65),
    ("age >= 75", "age", lambda s: s >= 75),
    ("prior transplant", "prior_asct", lambda s: s.astype(bool)),
    ("extramedullary", "extramedullary", lambda s: s.astype(bool)),
    ("high-risk cytogenetics", "high_risk_cytogenetics", lambda s: s.astype(bool)),
    ("ECOG >= 2", "ecog", lambda s: s >= 2),
)


def _arm_counts(treatment: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    return int((treatment[mask] == CART).sum()), int((treatment[mask] == TEC).sum())


def _subgroup_row(label, column, member, known, scores, treatment, cate, truth, alpha) -> dict:
    inside, outside = member & known, ~member & known
    n_cart, n_tec = _arm_counts(treatment, inside)
    c_cart, c_tec = _arm_counts(treatment, outside)
    row = {
        "subgroup": label,
        "column": column,
        "n": int(inside.sum()),
        "n_cart": n_cart,
        "n_tec": n_tec,
        "estimate": math.nan,
        "lower": math.nan,
        "upper": math.nan,
        "complement_n": int(outside.sum()),
        "complement_estimate": math.nan,
        "complement_lower": math.nan,
        "complement_upper": math.nan,
        "difference": math.nan,
        "difference_lower": math.nan,
        "difference_upper": math.nan,
        "difference_p_value": math.nan,
    }
    for name, values in cate.items():
        row[f"mean_cate_{name}"] = float(values[inside].mean()) if inside.any() else math.nan
    row["truth"] = float(truth[inside].mean()) if truth is not None and inside.any() else math.nan
    notes = []
    if (~known).any():
        notes.append(f"{int((~known).sum())} patients with missing {column} left out")
    if min(n_cart, n_tec, c_cart, c_tec) < MIN_PER_ARM:
        notes.append(
            f"not estimated: fewer than {MIN_PER_ARM} patients in an arm of the subgroup "
            f"(cart {n_cart}, tec {n_tec}) or its complement (cart {c_cart}, tec {c_tec})"
        )
        row["note"] = "; ".join(notes)
        return row
    est, lo, hi, se = mean_interval(scores[inside], alpha)
    c_est, c_lo, c_hi, c_se = mean_interval(scores[outside], alpha)
    diff, diff_se = est - c_est, math.hypot(se, c_se)
    z = float(stats.norm.ppf(1 - alpha / 2))
    row |= {
        "estimate": est,
        "lower": lo,
        "upper": hi,
        "complement_estimate": c_est,
        "complement_lower": c_lo,
        "complement_upper": c_hi,
        "difference": diff,
        "difference_lower": diff - z * diff_se,
        "difference_upper": diff + z * diff_se,
        "difference_p_value": float(2 * stats.norm.sf(abs(diff) / diff_se)),
    }
    row["note"] = "; ".join(notes) or None
    return row


def prespecified_subgroups(
    cohort: pd.DataFrame,
    scores: np.ndarray,
    *,
    cate: Mapping[str, np.ndarray] | None = None,
    truth: np.ndarray | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """DR effect estimates in the usual clinical subgroups, with the interaction test.

    Subgroups: age >= 65, age >= 75, prior transplant, extramedullary, high-risk cytogenetics,
    ECOG >= 2 (a definition whose column the cohort lacks gets a row with a ``note``). Per
    subgroup: size by arm, mean DR score with its normal interval, the complement's estimate and
    the difference subgroup - complement with interval and two-sided p-value. A subgroup effect
    that differs from the overall one is only supported by that difference, not by one subgroup's
    interval excluding zero; six tests at alpha = 0.05 expect ~0.3 false positives under no
    heterogeneity. Groups with fewer than 10 patients in an arm (subgroup or complement) are not
    estimated. ``cate`` adds each estimator's mean CATE (``mean_cate_<name>`` columns), ``truth``
    the mean true effect. ``cohort`` is the raw cohort (clinical columns, treatment "cart"/"tec"),
    row-aligned with ``scores``; patients with a missing subgroup column are left out of that
    comparison (the note says how many).
    """
    if not isinstance(cohort, pd.DataFrame):
        raise TypeError("cohort must be a pandas DataFrame")
    n = len(cohort)
    scores = check_vector("scores", scores, n)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if TREATMENT not in cohort.columns:
        raise ValueError(f"cohort has no {TREATMENT!r} column")
    treatment = cohort[TREATMENT].astype(object).to_numpy()
    bad = ~np.isin(treatment, (CART, TEC))
    if bad.any():
        raise ValueError(f"{TREATMENT} must be {CART!r} or {TEC!r}; rows {shown_rows(bad)} are not")
    cate = {str(k): check_vector(f"cate[{k!r}]", v, n) for k, v in (cate or {}).items()}
    if truth is not None:
        truth = check_vector("truth", truth, n)
    rows = []
    for label, column, rule in PRESPECIFIED:
        if column not in cohort.columns:
            row = {"subgroup": label, "column": column, "n": 0, "n_cart": 0, "n_tec": 0}
            rows.append(row | {"note": f"column {column!r} absent from the cohort"})
            continue
        values = cohort[column]
        known = values.notna().to_numpy()
        member = np.zeros(n, dtype=bool)
        member[known] = np.asarray(rule(values[known]), dtype=bool)
        rows.append(
            _subgroup_row(label, column, member, known, scores, treatment, cate, truth, alpha)
        )
    table = pd.DataFrame(rows)
    return table
