"""A vectorized reading of econml's generalized random forests for a few rows at a time.

``GRFReader`` gives the same point estimates and variances as econml's ``BaseGRF`` (bootstrap of
little bags, with econml's variance correction), but reads every tree in one vectorized descent
over flat node arrays, where econml makes two Python calls per tree, each validating its input:
one profile with the default 2,000-tree causal survival forest takes ~0.5 ms instead of ~0.45 s
(measured on the default run, 2 busy cores). The profile explorer uses it for the run's causal
survival forest and CRS causal forest (``grf_reader``), after checking at run time that it
reproduces the estimator's own effects and intervals.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import erfc

from hte.estimators.histogram_grf import HistogramMomentForest


class GRFReader:
    """Point estimates and (1 - alpha) intervals of a fitted econml ``BaseGRF`` for a few rows.

    Reproduces ``BaseGRF._predict_point_and_var`` (econml 0.17) with the per-tree local moments
    read once: theta(x) = pinv(mean_t J_t(x)) mean_t A_t(x); the variance from the spread of the
    little-bag moment means, minus the within-bag correction, with econml's objective-Bayes
    debiasing. ``projector`` (length n_outputs) reads a linear combination of the parameters, as
    econml's ``predict_projection_and_var`` does; None reads the first parameter.
    """

    def __init__(self, forest, projector: np.ndarray | None = None):
        p = int(forest.n_outputs_)
        self.n_outputs = p
        if projector is None:
            projector = np.eye(p)[0]
        self.projector = np.asarray(projector, dtype=float).reshape(p)
        self.slices = np.asarray([np.asarray(s) for s in forest.slices_])
        self._stack([est.tree_ for est in forest.estimators_])

    def _stack(self, trees) -> None:
        """All trees' nodes in flat arrays (children re-indexed), so one vectorized descent reads
        every tree at once instead of one Python call per tree."""
        counts = np.array([t.node_count for t in trees])
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])

        def shifted(children, offset):
            children = np.asarray(children, dtype=np.int64)
            return np.where(children >= 0, children + offset, -1)

        self.roots = offsets.astype(np.int64)
        pairs = list(zip(trees, offsets, strict=True))
        self.left = np.concatenate([shifted(t.children_left, o) for t, o in pairs])
        self.right = np.concatenate([shifted(t.children_right, o) for t, o in pairs])
        self.feature = np.concatenate([np.asarray(t.feature, dtype=np.int64) for t in trees])
        self.threshold = np.concatenate([np.asarray(t.threshold, dtype=float) for t in trees])
        p = self.n_outputs
        self.precond = np.concatenate([np.asarray(t.precond, float).reshape(-1, p) for t in trees])
        self.jac = np.concatenate([np.asarray(t.jac, float).reshape(-1, p, p) for t in trees])
        self.depth = int(max(t.max_depth for t in trees))

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """(n, n_trees) flat node index of each row's leaf in every tree (left when
        x[feature] <= threshold, as the trees themselves decide)."""
        Xc = np.ascontiguousarray(X, dtype=np.float64)
        rows = np.arange(Xc.shape[0])[:, None]
        node = np.broadcast_to(self.roots, (Xc.shape[0], self.roots.size)).copy()
        for _ in range(self.depth):
            feature = self.feature[node]
            inner = feature >= 0
            if not inner.any():
                break
            go_left = Xc[rows, np.where(inner, feature, 0)] <= self.threshold[node]
            step = np.where(go_left, self.left[node], self.right[node])
            node = np.where(inner, step, node)
        return node

    def _moments(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-tree local moments at each row: A (T, n, p) and J (T, n, p, p)."""
        leaf = self.leaves(X).T  # (T, n)
        return self.precond[leaf], self.jac[leaf]

    def predict(self, X: np.ndarray, alpha: float = 0.05):
        """``(point, lower, upper, stderr)``, each (n,)."""
        A, J = self._moments(X)
        alpha_hat, jac_hat = A.mean(0), J.mean(0)
        invjac = np.linalg.pinv(jac_hat)  # (n, p, p)
        theta = np.einsum("ijk,ik->ij", invjac, alpha_hat)  # (n, p)
        # per-tree moment alpha_t - J_t theta, grouped into little bags
        M = A - np.einsum("tijk,ik->tij", J, theta)  # (T, n, p)
        Mb = M[self.slices]  # (S, k, n, p)
        bag_mean = Mb.mean(1)  # (S, n, p)
        bag_sq = np.einsum("skij,skil->sijl", Mb, Mb) / Mb.shape[1]  # (S, n, p, p)
        n_bags = bag_mean.shape[0]
        moment = bag_mean.mean(0)
        sq_between = np.einsum("sij,sil->ijl", bag_mean, bag_mean) / n_bags
        var_between = sq_between - np.einsum("ij,il->ijl", moment, moment)
        proj = np.einsum("ijk,k->ij", np.transpose(invjac, (0, 2, 1)), self.projector)  # invjac' v
        pred_var = np.einsum("ij,ijk,ik->i", proj, var_between, proj)
        var_total = bag_sq.mean(0)
        correction = (var_total - sq_between) / (self.slices.shape[1] - 1)
        pred_var_corr = np.einsum("ij,ijk,ik->i", proj, correction, proj)
        naive = pred_var - pred_var_corr
        se = np.maximum(pred_var, pred_var_corr) * np.sqrt(2.0 / n_bags)
        z = naive / np.clip(se, 1e-10, np.inf)
        var = naive + se * (np.exp(-(z**2) / 2) / np.sqrt(2 * np.pi)) / (
            0.5 * erfc(-z / np.sqrt(2))
        )
        point = theta @ self.projector
        stderr = np.sqrt(np.maximum(var, 1e-32))
        q = stats.norm.ppf(1 - alpha / 2)
        return point, point - q * stderr, point + q * stderr, stderr


class HistogramReader:
    """The reader interface over a ``HistogramMomentForest``, whose own prediction is compiled and
    already reads every tree in one pass."""

    def __init__(self, forest: HistogramMomentForest):
        self.forest = forest

    def predict(self, X: np.ndarray, alpha: float = 0.05):
        """``(point, lower, upper, stderr)``, each (n,)."""
        return self.forest.point_interval_stderr(X, alpha)


def grf_reader(model, kind: str) -> GRFReader | HistogramReader | None:
    """A fast reader of a fitted run estimator's forest (causal survival forest, CRS causal
    forest), None for other kinds or a CRS forest whose final stage is not one plain forest."""
    if kind == "causal_survival_forest":
        if isinstance(model.forest_, HistogramMomentForest):
            return HistogramReader(model.forest_)
        return GRFReader(model.forest_)
    if kind == "crs_causal_forest":
        if isinstance(model.model_, HistogramMomentForest):
            return HistogramReader(model.model_)
        final = model.model_.ortho_learner_model_final_._model_final
        if final._featurizer is not None or len(final._model.estimators_) != 1:
            return None
        forest = final._model.estimators_[0]
        projector = np.zeros(forest.n_outputs_)
        projector[0] = 1.0  # the treatment effect; the rest is econml's intercept
        return GRFReader(forest, projector)
    return None
