"""A fast reading of a fitted binary ``HistGradientBoostingClassifier`` for a few rows at a time.

scikit-learn predicts tree by tree, one compiled call per tree: for one what-if profile and 200
shallow trees that is ~2.5 ms, most of it call overhead. ``BoostingReader`` holds every tree's
nodes in (trees, nodes) arrays and walks all trees at once, one numpy step per tree level, then
adds the leaf values in scikit-learn's order (baseline, then tree 1, 2, ...), so its
probabilities equal ``predict_proba``'s bit for bit (checked in the tests and by
``boosting_reader``'s own probe). Numeric features only: a model with categorical splits or more
than one tree per iteration gets no reader (``None``), and callers use the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit


@dataclass(frozen=True)
class BoostingReader:
    """Every tree's nodes as (n_trees, max_nodes) arrays; padding nodes are leaves of value 0
    that no walk reaches."""

    baseline: float
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    depth: int
    n_features: int

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds), shape (n,), as ``model._raw_predict(X)[:, 0]``."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}); got {X.shape}")
        trees = np.arange(self.feature.shape[0])
        node = np.zeros((X.shape[0], trees.size), dtype=np.intp)
        for _ in range(self.depth):
            x = np.take_along_axis(X, self.feature[trees, node], axis=1)
            go_left = np.where(
                np.isnan(x), self.missing_left[trees, node], x <= self.threshold[trees, node]
            )
            child = np.where(go_left, self.left[trees, node], self.right[trees, node])
            node = np.where(self.is_leaf[trees, node], node, child)
        start = np.full((X.shape[0], 1), self.baseline)
        # accumulate adds left to right: ((baseline + tree 1) + tree 2) + ..., as scikit-learn
        return np.add.accumulate(np.hstack([start, self.value[trees, node]]), axis=1)[:, -1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(class 1) per row, shape (n,)."""
        return expit(self.raw(X))


def boosting_reader(model) -> BoostingReader | None:
    """The reader of a fitted binary ``HistGradientBoostingClassifier``, or None when the model
    is of another kind, has categorical splits or several trees per iteration, or when the
    reader disagrees with ``predict_proba`` on a probe (then use the model itself)."""
    predictors = getattr(model, "_predictors", None)
    if (
        predictors is None
        or getattr(model, "n_trees_per_iteration_", None) != 1
        or getattr(model, "is_categorical_", None) is not None
        or list(getattr(model, "classes_", [])) != [0, 1]
    ):
        return None
    nodes = [iteration[0].nodes for iteration in predictors]
    if not nodes or any(n["is_categorical"].any() for n in nodes):
        return None
    width = max(len(n) for n in nodes)

    def padded(field: str, fill, dtype) -> np.ndarray:
        out = np.full((len(nodes), width), fill, dtype=dtype)
        for k, n in enumerate(nodes):
            out[k, : len(n)] = n[field]
        return out

    reader = BoostingReader(
        baseline=float(np.asarray(model._baseline_prediction).ravel()[0]),
        feature=padded("feature_idx", 0, np.intp),
        threshold=padded("num_threshold", 0.0, np.float64),
        missing_left=padded("missing_go_to_left", 0, bool),
        left=padded("left", 0, np.intp),
        right=padded("right", 0, np.intp),
        is_leaf=padded("is_leaf", 1, bool),
        value=padded("value", 0.0, np.float64),
        depth=int(max(n["depth"].max() for n in nodes)),
        n_features=int(model.n_features_in_),
    )
    return reader if _agrees(reader, model) else None


def _agrees(reader: BoostingReader, model) -> bool:
    """The reader gives ``predict_proba``'s numbers on probe rows that reach both sides of every
    split and the missing-value branch."""
    rng = np.random.default_rng(0)
    thresholds = reader.threshold[~reader.is_leaf]
    spread = float(np.abs(thresholds).max()) + 1.0 if thresholds.size else 1.0
    probe = rng.uniform(-spread, spread, size=(64, reader.n_features))
    probe[rng.random(probe.shape) < 0.1] = np.nan
    return bool(np.array_equal(reader.predict_proba(probe), model.predict_proba(probe)[:, 1]))
