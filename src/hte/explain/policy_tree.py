"""Policy trees: the depth <= 2 rule "give CAR-T or teclistamab" with the largest net benefit
(OS gain minus a weight x CRS harm), by exhaustive search over the doubly robust scores
(Athey and Wager 2021, "Policy learning with observational data"), and the held-out value of
that search.

A searched tree's in-sample value is optimistic; ``policy_value_cv`` is its honest counterpart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hte.data.columns import CART, TEC
from hte.explain.subgroup_base import (
    Condition,
    Interval,
    RuleDescriber,
    assign_leaves,
    check_settings,
    check_vector,
    check_X,
    mean_interval,
)

MAX_THRESHOLDS = 32  # candidate split points per feature in the policy search (quantiles)


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
        return actions[assign_leaves(X, [leaf.conditions for leaf in self.leaves])]


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
        codes,
        offsets,
        int(sizes.sum()),
        thresholds,
        feature,
        k,
        offsets[feature] + k,
        offsets[feature],
    )


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
    os_scores = check_vector("os_scores", os_scores, n)
    if not np.isfinite(crs_weight) or crs_weight < 0:
        raise ValueError(f"crs_weight must be a finite number >= 0; got {crs_weight!r}")
    if crs_scores is None and crs_weight > 0:
        raise ValueError("crs_scores are required when crs_weight > 0")
    if crs_scores is None:
        return os_scores.copy()
    return os_scores - crs_weight * check_vector("crs_scores", crs_scores, n)


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
    X = check_X(X)
    n = len(X)
    net = _net_scores(os_scores, crs_scores, crs_weight, n)
    check_settings(max_depth, min_leaf_fraction, alpha, limit=2)
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
    describe = RuleDescriber(X, categories)
    leaves = []
    merged = _merge_same_action(raw)
    index = assign_leaves(X, [leaf["conditions"] for leaf in merged])
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

    X = check_X(X)
    n = len(X)
    net = _net_scores(os_scores, crs_scores, crs_weight, n)
    check_settings(max_depth, min_leaf_fraction, alpha, limit=2)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int | np.integer) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2; got {n_folds!r}")
    treat = np.zeros(n, dtype=bool)
    for train, test in KFold(n_folds, shuffle=True, random_state=random_state).split(X):
        tree = policy_tree(
            X.iloc[train],
            net[train],
            max_depth=max_depth,
            min_leaf_fraction=min_leaf_fraction,
            alpha=alpha,
        )
        treat[test] = tree.predict(X.iloc[test]) == CART
    return Interval(*mean_interval(net * treat, alpha)[:3])
