"""Who benefits most: readable subgroup rules, a treatment policy tree and prespecified subgroups.

Three views of the same question, each reported with doubly robust (DR) scores Gamma_i whose mean
over a group estimates the group's average effect (AIPW / AIPCW scores, ``hte.evaluation.rate``):

- ``cate_rules``: a shallow regression tree fitted to an estimator's per-patient CATE describes
  *where the model puts* large and small effects. Each leaf is a rule in clinical words with the
  mean CATE and, given DR scores, the leaf's effect estimated from the data (mean score, normal
  interval). The fidelity R^2 says how much of the CATE the few rules capture.
- ``policy_tree``: an exhaustive search over trees of depth <= 2 for the rule "give CAR-T or
  teclistamab" that maximises net benefit, OS gain minus ``crs_weight`` x CRS harm, from the DR
  scores themselves (Athey and Wager 2021, "Policy learning with observational data").
- ``prespecified_subgroups``: the subgroups a clinician asks about (age, prior transplant,
  extramedullary disease, cytogenetics, ECOG) with the subgroup-minus-complement difference and
  its p-value: the interaction test, which is what makes subgroup claims fragile.

All three are in-sample summaries of one cohort: rules and policies chosen on the same patients
that evaluate them look better than they would on new patients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import r2_score
from sklearn.tree import DecisionTreeRegressor

from hte.data.columns import (
    CART,
    CATEGORICAL_COVARIATES,
    CONTINUOUS_COVARIATES,
    INTEGER_COVARIATES,
    TEC,
    TREATMENT,
)

MAX_ROWS_SHOWN = 5
MAX_THRESHOLDS = 32  # candidate split points per feature in the policy search (quantiles)
MIN_PER_ARM = 10  # prespecified subgroups: fewer patients in an arm -> no estimate
MISSING_SUFFIX = "_missing"

LABELS = {
    "age": "age",
    "ecog": "ECOG",
    "iss_stage": "ISS stage",
    "prior_lines": "prior lines",
    "high_risk_cytogenetics": "high-risk cytogenetics",
    "gain_1q": "gain(1q)",
    "extramedullary": "extramedullary",
    "prior_asct": "prior ASCT",
    "penta_refractory": "penta-refractory",
    "ldh_high": "high LDH",
    "prior_bcma": "prior BCMA therapy",
    "rapid_progression": "rapid progression",
    "bm_plasma_pct": "BM plasma cells %",
    "ferritin": "ferritin",
    "crp": "CRP",
    "crcl": "CrCl",
    "years_since_diagnosis": "years since diagnosis",
    "sex": "sex",
    "race": "race",
}

# (label, column, membership rule) of the prespecified subgroups
PRESPECIFIED: tuple[tuple[str, str, object], ...] = (
    ("age >= 65", "age", lambda s: s >= 65),
    ("age >= 75", "age", lambda s: s >= 75),
    ("prior transplant", "prior_asct", lambda s: s.astype(bool)),
    ("extramedullary", "extramedullary", lambda s: s.astype(bool)),
    ("high-risk cytogenetics", "high_risk_cytogenetics", lambda s: s.astype(bool)),
    ("ECOG >= 2", "ecog", lambda s: s >= 2),
)


# --------------------------------------------------------------------------------------------------
# results


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


@dataclass(frozen=True)
class RuleLeaf:
    """One leaf of the CATE rule tree. ``estimate``/``lower``/``upper`` are NaN without scores."""

    rule: str
    conditions: tuple[Condition, ...]
    n: int
    share: float
    mean_cate: float
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class RuleSet:
    """Leaves of a shallow tree on the CATE, largest mean CATE first, and its fidelity R^2."""

    leaves: tuple[RuleLeaf, ...]
    fidelity_r2: float
    max_depth: int
    n: int
    alpha: float

    def leaf_index(self, X: pd.DataFrame) -> np.ndarray:
        """Index into ``leaves`` of each row of ``X`` (same columns as at fit)."""
        return _leaf_index(X, [leaf.conditions for leaf in self.leaves])


@dataclass(frozen=True)
class PolicyLeaf:
    """One leaf of the policy tree: who, which arm, and the mean net benefit of CAR-T there."""

    rule: str
    conditions: tuple[Condition, ...]
    n: int
    action: str  # "cart" | "tec"
    net_benefit: float
    lower: float
    upper: float


@dataclass(frozen=True)
class PolicyResult:
    """A depth <= 2 treatment policy and its value beside treating everybody alike.

    Values are mean net benefit relative to treating everybody with teclistamab (so
    ``value_all_tec`` is 0 by construction): OS score minus ``crs_weight`` x CRS score.
    """

    leaves: tuple[PolicyLeaf, ...]
    crs_weight: float
    share_cart: float
    value_policy: Interval
    value_all_cart: Interval
    value_all_tec: Interval
    max_depth: int
    n: int
    alpha: float

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The recommended arm ("cart" / "tec") of each row of ``X``."""
        actions = np.array([leaf.action for leaf in self.leaves], dtype=object)
        return actions[_leaf_index(X, [leaf.conditions for leaf in self.leaves])]


# --------------------------------------------------------------------------------------------------
# input checks


def _rows(mask) -> list[int]:
    return np.flatnonzero(np.asarray(mask))[:MAX_ROWS_SHOWN].tolist()


def _check_X(X) -> pd.DataFrame:
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
            f"{_rows(bad.any(axis=1))} (impute them first, e.g. build_design_matrix(impute='median'))"
        )
    return X


def _check_vector(name: str, values, n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} must have one value per row ({n}); got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite; rows {_rows(bad)} are not")
    return arr


def _check_settings(
    max_depth: int, min_leaf_fraction: float, alpha: float, least: int = 0, limit=None
) -> None:
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


# --------------------------------------------------------------------------------------------------
# intervals


def mean_interval(values: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    """Mean, normal (1 - alpha) interval and SE (sd / sqrt(n)) of per-patient scores."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return math.nan, math.nan, math.nan, math.nan
    est = float(values.mean())
    se = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else math.nan
    z = float(stats.norm.ppf(1 - alpha / 2))
    return est, est - z * se, est + z * se, se


# --------------------------------------------------------------------------------------------------
# rule text


def _label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


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


class _Describer:
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
                return f"{_label(column)} = {level}"
            if len(others) == 1:
                return f"{_label(column)} = {others[0]}"
            return f"{_label(column)} != {level}"
        if feature.endswith(MISSING_SUFFIX):
            base = _label(feature[: -len(MISSING_SUFFIX)])
            return f"{base} missing" if above else f"{base} recorded"
        return f"{_label(feature)} = {'yes' if above else 'no'}"

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
            name = _label(feature)
            if "lower" in b and "upper" in b:
                low = b["lower"][1].removeprefix(">= ")
                parts[feature] = f"{low} <= {name} {b['upper'][1]}"
            else:
                parts[feature] = f"{name} {(b.get('lower') or b['upper'])[1]}"
        return " and ".join(parts.values())


def _leaf_index(X: pd.DataFrame, leaves: Sequence[Sequence[Condition]]) -> np.ndarray:
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
        raise ValueError(f"rows {_rows(out < 0)} of X fall in no leaf (missing values?)")
    return out


# --------------------------------------------------------------------------------------------------
# CATE rules


def _tree_paths(tree: DecisionTreeRegressor, names: list[str]) -> dict[int, tuple[Condition, ...]]:
    t = tree.tree_
    paths: dict[int, tuple[Condition, ...]] = {}
    stack: list[tuple[int, tuple[Condition, ...]]] = [(0, ())]
    while stack:
        node, path = stack.pop()
        if t.children_left[node] == -1:
            paths[node] = path
            continue
        feature, thr = names[t.feature[node]], float(t.threshold[node])
        stack.append((t.children_left[node], (*path, Condition(feature, thr, False))))
        stack.append((t.children_right[node], (*path, Condition(feature, thr, True))))
    return paths


def cate_rules(
    X: pd.DataFrame,
    cate: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    max_depth: int = 2,
    min_leaf_fraction: float = 0.05,
    alpha: float = 0.05,
    random_state: int | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> RuleSet:
    """Describe who benefits with a shallow regression tree fitted to the estimated CATE.

    Each leaf gets a rule in clinical words, its size, its mean CATE (what the model says) and,
    when DR ``scores`` are given, the mean score with a normal (1 - alpha) interval (what the data
    say about that group). ``fidelity_r2`` is the tree's R^2 against the CATE: low values mean the
    rules are a coarse summary of a more complex CATE. ``categories`` (column -> levels, reference
    first, e.g. from ``DesignEncoder.encodings_``) lets one-hot splits read "sex = female".
    The tree is chosen on the same patients it summarises, so leaf intervals are optimistic.
    """
    X = _check_X(X)
    n = len(X)
    cate = _check_vector("cate", cate, n)
    if scores is not None:
        scores = _check_vector("scores", scores, n)
    _check_settings(max_depth, min_leaf_fraction, alpha, least=1)
    tree = DecisionTreeRegressor(
        max_depth=int(max_depth),
        min_samples_leaf=max(1, math.ceil(min_leaf_fraction * n)),
        random_state=random_state,
    )
    tree.fit(X.to_numpy(dtype=float), cate)
    r2 = float(r2_score(cate, tree.predict(X.to_numpy(dtype=float)))) if np.ptp(cate) > 0 else 1.0
    describe = _Describer(X, categories)
    nodes = tree.apply(X.to_numpy(dtype=float))
    leaves = []
    for node, path in _tree_paths(tree, [str(c) for c in X.columns]).items():
        mask = nodes == node
        est = lo = hi = math.nan
        if scores is not None:
            est, lo, hi, _ = mean_interval(scores[mask], alpha)
        leaves.append(
            RuleLeaf(
                rule=describe.rule(path),
                conditions=path,
                n=int(mask.sum()),
                share=float(mask.mean()),
                mean_cate=float(cate[mask].mean()),
                estimate=est,
                lower=lo,
                upper=hi,
            )
        )
    leaves.sort(key=lambda leaf: -leaf.mean_cate)
    return RuleSet(tuple(leaves), r2, int(max_depth), n, float(alpha))


# --------------------------------------------------------------------------------------------------
# policy tree: exhaustive search of depth <= 2 on binned features


@dataclass(frozen=True)
class _Binned:
    """Features cut at candidate thresholds: bin k of feature j holds values in (t_{k-1}, t_k]."""

    codes: np.ndarray  # (n, p) bin index per feature
    offsets: np.ndarray  # (p,) start of each feature's bins in one flat array of all bins
    n_bins: int  # bins of all features together
    thresholds: list[np.ndarray]  # per feature, the candidate thresholds
    split_feature: np.ndarray  # every candidate split (feature, k): "bins <= k go left"
    split_k: np.ndarray
    split_end: np.ndarray  # flat position of the split's last left bin
    split_start: np.ndarray  # flat position of the feature's first bin


def _candidate_thresholds(x: np.ndarray) -> np.ndarray:
    """Midpoints between neighbouring distinct values, thinned to quantiles when there are many."""
    u = np.unique(x)
    if u.size < 2:
        return np.empty(0)
    if u.size - 1 > MAX_THRESHOLDS:
        q = np.unique(np.quantile(x, np.linspace(0, 1, MAX_THRESHOLDS + 2)[1:-1], method="lower"))
        k = np.searchsorted(u, q)  # q is a data value: split between it and the next one
        k = k[k < u.size - 1]
        return (u[k] + u[k + 1]) / 2.0
    return (u[:-1] + u[1:]) / 2.0


def _bin(X: np.ndarray) -> _Binned:
    thresholds = [_candidate_thresholds(X[:, j]) for j in range(X.shape[1])]
    codes = np.column_stack(
        [np.searchsorted(t, X[:, j], side="left") for j, t in enumerate(thresholds)]
    )
    sizes = np.array([t.size + 1 for t in thresholds])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    feature = np.concatenate([np.full(t.size, j) for j, t in enumerate(thresholds)]).astype(int)
    k = np.concatenate([np.arange(t.size) for t in thresholds]).astype(int)
    return _Binned(
        codes, offsets, int(sizes.sum()), thresholds, feature, k, offsets[feature] + k,
        offsets[feature],
    )  # fmt: skip


def _gain(total: float) -> float:
    return max(total, 0.0)


def _best_stump(b: _Binned, rows: np.ndarray, g: np.ndarray, min_leaf: int, tol: float):
    """Best single split of ``rows`` (or none): (value, feature, k) with value = sum over the two
    sides of max(sum of net scores, 0); feature -1 means no split beats a single leaf."""
    sub_g = g[rows]
    total, n = float(sub_g.sum()), rows.size
    best = (_gain(total), -1, -1)
    if n < 2 * min_leaf or b.split_k.size == 0:
        return best
    flat = (b.codes[rows] + b.offsets).ravel()
    weights = np.repeat(sub_g, b.codes.shape[1])
    sums = np.concatenate([[0.0], np.cumsum(np.bincount(flat, weights, b.n_bins))])
    counts = np.concatenate([[0], np.cumsum(np.bincount(flat, minlength=b.n_bins))])
    left = sums[b.split_end + 1] - sums[b.split_start]
    n_left = counts[b.split_end + 1] - counts[b.split_start]
    value = np.maximum(left, 0) + np.maximum(total - left, 0)
    value[(n_left < min_leaf) | (n - n_left < min_leaf)] = -np.inf
    i = int(np.argmax(value))
    if value[i] > best[0] + tol:
        best = (float(value[i]), int(b.split_feature[i]), int(b.split_k[i]))
    return best


def _search(b: _Binned, g: np.ndarray, max_depth: int, min_leaf: int) -> list[list[tuple]]:
    """Leaves of the best tree as lists of (feature, k, above) conditions on the binned data."""
    n = g.size
    rows = np.arange(n)
    tol = 1e-9 * (float(np.abs(g).sum()) + 1.0)  # a split must beat a simpler tree by more
    root = _best_stump(b, rows, g, min_leaf, tol)
    if max_depth == 0 or (max_depth == 1 and root[1] < 0):
        return [[]]
    if max_depth == 1:
        return [[(root[1], root[2], False)], [(root[1], root[2], True)]]
    best_value, best_tree = _gain(float(g.sum())), [[]]
    for j, k in zip(b.split_feature.tolist(), b.split_k.tolist(), strict=True):
        goes_left = b.codes[:, j] <= k
        left, right = rows[goes_left], rows[~goes_left]
        if left.size < min_leaf or right.size < min_leaf:
            continue
        lv = _best_stump(b, left, g, min_leaf, tol)
        rv = _best_stump(b, right, g, min_leaf, tol)
        if lv[0] + rv[0] <= best_value + tol:
            continue
        best_value, best_tree = lv[0] + rv[0], []
        for side, sub in ((False, lv), (True, rv)):
            head = (j, k, side)
            if sub[1] < 0:
                best_tree.append([head])
            else:
                best_tree.append([head, (sub[1], sub[2], False)])
                best_tree.append([head, (sub[1], sub[2], True)])
    return best_tree


def _merge_same_action(leaves: list[dict]) -> list[dict]:
    """Two sibling leaves (same parent path) with the same action become their parent."""
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(leaves):
            for j in range(i + 1, len(leaves)):
                b = leaves[j]
                if (
                    a["conditions"][:-1] == b["conditions"][:-1]
                    and a["conditions"]
                    and b["conditions"]
                    and a["conditions"][-1].feature == b["conditions"][-1].feature
                    and a["conditions"][-1].threshold == b["conditions"][-1].threshold
                    and a["action"] == b["action"]
                ):
                    merged = {"conditions": a["conditions"][:-1], "action": a["action"]}
                    leaves = [x for k, x in enumerate(leaves) if k not in (i, j)] + [merged]
                    changed = True
                    break
            if changed:
                break
    return leaves


def _net_scores(os_scores, crs_scores, crs_weight: float, n: int) -> np.ndarray:
    """OS DR scores minus crs_weight x CRS DR scores, checked."""
    os_scores = _check_vector("os_scores", os_scores, n)
    if not np.isfinite(crs_weight) or crs_weight < 0:
        raise ValueError(f"crs_weight must be a finite number >= 0; got {crs_weight!r}")
    if crs_scores is None and crs_weight > 0:
        raise ValueError("crs_scores are required when crs_weight > 0")
    if crs_scores is None:
        return os_scores.copy()
    return os_scores - crs_weight * _check_vector("crs_scores", crs_scores, n)


def policy_tree(
    X: pd.DataFrame,
    os_scores: np.ndarray,
    crs_scores: np.ndarray | None = None,
    *,
    crs_weight: float = 0.0,
    max_depth: int = 2,
    min_leaf_fraction: float = 0.05,
    alpha: float = 0.05,
    random_state: int | None = None,
    categories: Mapping[str, Sequence[str]] | None = None,
) -> PolicyResult:
    """The depth <= 2 rule "give CAR-T or teclistamab" with the largest net benefit.

    Net benefit of CAR-T for a patient is ``os_scores - crs_weight * crs_scores``: the OS DR score
    (difference in 12-month survival probability) minus the weighted CRS DR score (risk
    difference), so ``crs_weight = w`` counts one extra CRS case as w lost 12-month survivals.
    The tree maximises the sum of net scores over the patients it sends to CAR-T, by exhaustive
    search over splits at up to 32 quantile thresholds per feature, with at least
    ``min_leaf_fraction`` of patients per leaf; sibling leaves with the same action are merged.

    Policy values are means of the DR value scores (net score x [policy says CAR-T]) with normal
    intervals, relative to treating everyone with teclistamab. They are in-sample: the policy was
    chosen to maximise exactly this mean on these patients, so its value (and the leaves' net
    benefits) are optimistic; judge a policy on held-out patients. ``random_state`` is accepted
    for a uniform signature; the search is deterministic.
    """
    X = _check_X(X)
    n = len(X)
    net = _net_scores(os_scores, crs_scores, crs_weight, n)
    _check_settings(max_depth, min_leaf_fraction, alpha, limit=2)
    del random_state
    names = [str(c) for c in X.columns]
    binned = _bin(X.to_numpy(dtype=float))
    min_leaf = max(1, math.ceil(min_leaf_fraction * n))
    found = _search(binned, net, int(max_depth), min_leaf)
    raw = []
    for path in found:
        conditions = tuple(
            Condition(names[j], float(binned.thresholds[j][k]), above) for j, k, above in path
        )
        mask = np.ones(n, dtype=bool)
        for j, k, above in path:
            mask &= (binned.codes[:, j] > k) if above else (binned.codes[:, j] <= k)
        action = CART if net[mask].sum() > 0 else TEC
        raw.append({"conditions": conditions, "action": action})
    describe = _Describer(X, categories)
    leaves = []
    merged = _merge_same_action(raw)
    index = _leaf_index(X, [leaf["conditions"] for leaf in merged])
    for k, leaf in enumerate(merged):
        mask = index == k
        est, lo, hi, _ = mean_interval(net[mask], alpha)
        leaves.append(
            PolicyLeaf(
                describe.rule(leaf["conditions"]),
                leaf["conditions"],
                int(mask.sum()),
                leaf["action"],
                est,
                lo,
                hi,
            )
        )
    treat = np.array([leaves[k].action == CART for k in index])
    value = mean_interval(net * treat, alpha)
    all_cart = mean_interval(net, alpha)
    return PolicyResult(
        leaves=tuple(leaves),
        crs_weight=float(crs_weight),
        share_cart=float(treat.mean()),
        value_policy=Interval(*value[:3]),
        value_all_cart=Interval(*all_cart[:3]),
        value_all_tec=Interval(0.0, 0.0, 0.0),
        max_depth=int(max_depth),
        n=n,
        alpha=float(alpha),
    )


# --------------------------------------------------------------------------------------------------
# prespecified subgroups


def _arm_counts(treatment: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    return int((treatment[mask] == CART).sum()), int((treatment[mask] == TEC).sum())


def _subgroup_row(label, column, member, known, scores, treatment, cate, truth, alpha) -> dict:
    inside, outside = member & known, ~member & known
    n_cart, n_tec = _arm_counts(treatment, inside)
    c_cart, c_tec = _arm_counts(treatment, outside)
    row = {
        "subgroup": label, "column": column, "n": int(inside.sum()), "n_cart": n_cart,
        "n_tec": n_tec, "estimate": math.nan, "lower": math.nan, "upper": math.nan,
        "complement_n": int(outside.sum()), "complement_estimate": math.nan,
        "complement_lower": math.nan, "complement_upper": math.nan, "difference": math.nan,
        "difference_lower": math.nan, "difference_upper": math.nan,
        "difference_p_value": math.nan,
    }  # fmt: skip
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
        "estimate": est, "lower": lo, "upper": hi, "complement_estimate": c_est,
        "complement_lower": c_lo, "complement_upper": c_hi, "difference": diff,
        "difference_lower": diff - z * diff_se, "difference_upper": diff + z * diff_se,
        "difference_p_value": float(2 * stats.norm.sf(abs(diff) / diff_se)),
    }  # fmt: skip
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
    scores = _check_vector("scores", scores, n)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    if TREATMENT not in cohort.columns:
        raise ValueError(f"cohort has no {TREATMENT!r} column")
    treatment = cohort[TREATMENT].astype(object).to_numpy()
    bad = ~np.isin(treatment, (CART, TEC))
    if bad.any():
        raise ValueError(f"{TREATMENT} must be {CART!r} or {TEC!r}; rows {_rows(bad)} are not")
    cate = {str(k): _check_vector(f"cate[{k!r}]", v, n) for k, v in (cate or {}).items()}
    if truth is not None:
        truth = _check_vector("truth", truth, n)
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


def policy_value_cv(
    X: pd.DataFrame,
    os_scores: np.ndarray,
    crs_scores: np.ndarray | None = None,
    *,
    crs_weight: float = 0.0,
    max_depth: int = 2,
    min_leaf_fraction: float = 0.05,
    n_folds: int = 5,
    alpha: float = 0.05,
    random_state: int | None = None,
) -> Interval:
    """Out-of-sample value of the policy-tree search, the honest counterpart of
    ``PolicyResult.value_policy``.

    K-fold: each patient's arm comes from a tree searched on the other folds; the value is the mean
    of ``net score x [arm is CAR-T]`` with a normal interval, relative to all-teclistamab as in
    ``policy_tree``. It values the procedure (trees learned on (K-1)/K of the cohort), not the one
    tree fitted on everybody; a large gap to the in-sample value means that tree is overfitted.
    """
    from sklearn.model_selection import KFold

    X = _check_X(X)
    n = len(X)
    net = _net_scores(os_scores, crs_scores, crs_weight, n)
    _check_settings(max_depth, min_leaf_fraction, alpha, limit=2)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    treat = np.zeros(n, dtype=bool)
    for train, test in KFold(n_folds, shuffle=True, random_state=random_state).split(X):
        tree = policy_tree(
            X.iloc[train], net[train], max_depth=max_depth,
            min_leaf_fraction=min_leaf_fraction, alpha=alpha,
        )  # fmt: skip
        treat[test] = tree.predict(X.iloc[test]) == CART
    return Interval(*mean_interval(net * treat, alpha)[:3])
