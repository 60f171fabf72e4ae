"""What the three subgroup views share: split conditions and their clinical wording, leaf
assignment, input checks and the mean-of-scores interval.

The views are ``hte.explain.subgroup_rules`` (rules describing an estimator's CATE),
``hte.explain.policy_tree`` (who would get CAR-T under a net-benefit weight) and
``hte.explain.prespecified`` (the usual clinical subgroups with the interaction test);
``hte.explain.subgroups`` gathers them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hte.data.columns import (
    CATEGORICAL_COVARIATES,
    CONTINUOUS_COVARIATES,
    COVARIATE_LABELS,
    INTEGER_COVARIATES,
    covariate_short_label,
)

MAX_ROWS_SHOWN = 5
MISSING_SUFFIX = "_missing"

# short clinical labels for rule text (hte.data.columns.COVARIATE_LABELS)
LABELS = {name: short for name, (_, short, _) in COVARIATE_LABELS.items()}


@dataclass(frozen=True)
class Condition:
    """One split on a path: ``X[feature] > threshold`` when ``above`` else ``<= threshold``."""

    feature: str
    threshold: float
    above: bool


@dataclass(frozen=True)
class Interval:
    """A mean of DR scores with its normal (1 - alpha) interval (SE = sd / sqrt(n))."""

    estimate: float
    lower: float
    upper: float


def shown_rows(mask) -> list[int]:
    """The first few row numbers where ``mask`` is true, for error messages."""
    return np.flatnonzero(np.asarray(mask))[:MAX_ROWS_SHOWN].tolist()


def check_X(X) -> pd.DataFrame:
    """``X`` as a finite numeric DataFrame, or an error naming the columns and rows."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a pandas DataFrame (the design matrix, named columns)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must have rows and columns; got shape {X.shape}")
    try:
        values = X.to_numpy(dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"X must be numeric (an encoded design matrix): {err}") from err
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [str(c) for c in X.columns[bad.any(axis=0)]]
        raise ValueError(
            f"X must be finite; columns {cols} have missing/infinite values in rows "
            f"{shown_rows(bad.any(axis=1))} (impute them first, e.g. build_design_matrix(impute='median'))"
        )
    return X


def check_vector(name: str, values, n: int) -> np.ndarray:
    """A finite 1-d float array of length ``n``, or an error naming ``name`` and the rows."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} must have one value per row ({n}); got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite; rows {shown_rows(bad)} are not")
    return arr


def check_settings(
    max_depth: int, min_leaf_fraction: float, alpha: float, least: int = 0, limit=None
) -> None:
    """Depth, leaf share and alpha in range, or an error naming the setting."""
    if (
        isinstance(max_depth, bool)
        or not isinstance(max_depth, int | np.integer)
        or max_depth < least
    ):
        raise ValueError(f"max_depth must be an integer >= {least}; got {max_depth!r}")
    if limit is not None and max_depth > limit:
        raise ValueError(f"max_depth must be at most {limit} (exhaustive search); got {max_depth}")
    if not 0 < min_leaf_fraction <= 0.5:
        raise ValueError(f"min_leaf_fraction must be in (0, 0.5]; got {min_leaf_fraction!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")


def mean_interval(values: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    """Mean, normal (1 - alpha) interval and SE (sd / sqrt(n)) of per-patient scores."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    est = float(values.mean())
    se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else math.nan
    z = float(stats.norm.ppf(1 - alpha / 2))
    return est, est - z * se, est + z * se, se


def clinical_label(name: str) -> str:
    """A covariate's name in clinical words."""
    return covariate_short_label(name)


def _number(x: float) -> str:
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _short_threshold(lo: float, hi: float, threshold: float) -> str:
    """The shortest decimal r with lo < r <= hi (nearest the threshold among equally short ones),
    so that "x >= r" splits the data exactly as the tree does; lo is the largest value going left,
    hi the smallest going right."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return _number(threshold)
    for digits in range(-6, 7):
        step = 10.0**-digits
        near = round(threshold / step) * step
        above_lo = (math.floor(lo / step) + 1) * step
        for r in (near, above_lo, above_lo + step):
            r = round(r, max(digits, 0))  # exact decimal before comparing (75.1, not 75.10..01)
            if lo < r <= hi:
                return _number(r)
    return _number(threshold)


class RuleDescriber:
    """Turns conditions on design-matrix columns into clinical words."""

    def __init__(self, X: pd.DataFrame, categories: Mapping[str, Sequence[str]] | None):
        self.X = X
        self.categories = {str(k): [str(v) for v in lv] for k, lv in (categories or {}).items()}
        for name in CATEGORICAL_COVARIATES:
            self.categories.setdefault(name, [])

    def _one_hot(self, feature: str) -> tuple[str, str] | None:
        for column in self.categories:
            prefix = f"{column}_"
            if feature.startswith(prefix) and feature != f"{column}{MISSING_SUFFIX}":
                return column, feature[len(prefix) :]
        return None

    def _is_binary(self, feature: str) -> bool:
        """0/1 column (boolean, one-hot or missingness indicator); a known numeric covariate
        that happens to take only 0 and 1 here (ECOG) still reads as a number."""
        if feature in CONTINUOUS_COVARIATES or feature in INTEGER_COVARIATES:
            return False
        return bool(np.isin(self.X[feature].to_numpy(dtype=float), (0.0, 1.0)).all())

    def _is_integer(self, feature: str) -> bool:
        values = self.X[feature].to_numpy(dtype=float)
        return bool(np.all(values == np.round(values)))

    def binary_text(self, feature: str, above: bool) -> str:
        hot = self._one_hot(feature)
        if hot is not None:
            column, level = hot
            others = [lv for lv in self.categories.get(column, []) if lv != level]
            if above:
                return f"{clinical_label(column)} = {level}"
            if len(others) == 1:
                return f"{clinical_label(column)} = {others[0]}"
            return f"{clinical_label(column)} != {level}"
        if feature.endswith(MISSING_SUFFIX):
            base = clinical_label(feature[: -len(MISSING_SUFFIX)])
            return f"{base} missing" if above else f"{base} recorded"
        return f"{clinical_label(feature)} = {'yes' if above else 'no'}"

    def bounds(self, feature: str, threshold: float) -> tuple[str, str]:
        """Text of the left bound ("< r" or "<= k") and right bound (">= r") of a split."""
        values = self.X[feature].to_numpy(dtype=float)
        left, right = values[values <= threshold], values[values > threshold]
        lo = float(left.max()) if left.size else -math.inf
        hi = float(right.min()) if right.size else math.inf
        if self._is_integer(feature):
            k = math.floor(threshold)
            return f"<= {k}", f">= {k + 1}"
        r = _short_threshold(lo, hi, threshold)
        return f"< {r}", f">= {r}"

    def rule(self, conditions: Sequence[Condition]) -> str:
        """Conjunction in path order; several bounds on one feature merge ("60 <= age < 75")."""
        if not conditions:
            return "all patients"
        parts: dict[str, str] = {}
        numeric: dict[str, dict[str, tuple[float, str]]] = {}
        for c in conditions:
            if self._is_binary(c.feature):
                parts.setdefault(c.feature, self.binary_text(c.feature, c.above))
                continue
            left, right = self.bounds(c.feature, c.threshold)
            b = numeric.setdefault(c.feature, {})
            if c.above and ("lower" not in b or c.threshold > b["lower"][0]):
                b["lower"] = (c.threshold, right)
            if not c.above and ("upper" not in b or c.threshold < b["upper"][0]):
                b["upper"] = (c.threshold, left)
            parts[c.feature] = ""
        for feature, b in numeric.items():
            name = clinical_label(feature)
            if "lower" in b and "upper" in b:
                low = b["lower"][1].removeprefix(">= ")
                parts[feature] = f"{low} <= {name} {b['upper'][1]}"
            else:
                parts[feature] = f"{name} {(b.get('lower') or b['upper'])[1]}"
        return " and ".join(parts.values())


def assign_leaves(X: pd.DataFrame, leaves: Sequence[Sequence[Condition]]) -> np.ndarray:
    """Index of the first leaf whose conditions each row of ``X`` meets (an error if none)."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError("X must be a pandas DataFrame with the columns used at fit")
    out = np.full(len(X), -1, dtype=int)
    for k, conditions in enumerate(leaves):
        mask = np.ones(len(X), dtype=bool)
        for c in conditions:
            if c.feature not in X.columns:
                raise ValueError(f"X lacks column {c.feature!r} used by the rules")
            x = X[c.feature].to_numpy(dtype=float)
            mask &= (x > c.threshold) if c.above else (x <= c.threshold)
        out[mask & (out < 0)] = k
    if (out < 0).any():
        raise ValueError(f"rows {shown_rows(out < 0)} of X fall in no leaf (missing values?)")
    return out
