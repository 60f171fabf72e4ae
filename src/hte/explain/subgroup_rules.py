"""Subgroup rules: a shallow regression tree on an estimator's per-patient CATE, each leaf a
rule in clinical words with the model's mean CATE and the data's doubly robust estimate.

The tree describes *where the model puts* large and small effects; its fidelity R^2 says how
much of the CATE the few rules capture. It is chosen on the patients it summarises, so leaf
intervals are optimistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score
from sklearn.tree import DecisionTreeRegressor

from hte.explain.subgroup_base import (
    Condition,
    RuleDescriber,
    assign_leaves,
    check_settings,
    check_vector,
    check_X,
    mean_interval,
)


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
        return assign_leaves(X, [leaf.conditions for leaf in self.leaves])


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
    X = check_X(X)
    n = len(X)
    cate = check_vector("cate", cate, n)
    if scores is not None:
        scores = check_vector("scores", scores, n)
    check_settings(max_depth, min_leaf_fraction, alpha, least=1)
    tree = DecisionTreeRegressor(
        max_depth=int(max_depth),
        min_samples_leaf=max(1, math.ceil(min_leaf_fraction * n)),
        random_state=random_state,
    )
    tree.fit(X.to_numpy(dtype=float), cate)
    r2 = float(r2_score(cate, tree.predict(X.to_numpy(dtype=float)))) if np.ptp(cate) > 0 else 1.0
    describe = RuleDescriber(X, categories)
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
