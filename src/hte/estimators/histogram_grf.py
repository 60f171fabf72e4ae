"""A generalized random forest for one scalar linear moment, grown on binned features.

``HistogramMomentForest.fit(X, J, A)`` fits the forest that solves, locally in x,
sum_i alpha_i(x) (A_i - theta(x) J_i) = 0, with the same statistical recipe as econml's
``BaseGRF`` used with ``criterion="het"`` (``hte.estimators.causal_survival_forest``): subsamples
drawn inside half-samples ("little bags" of ``subforest_size`` trees), honest trees, each node
split on the gradient pseudo-outcomes of its parent, leaves of at least ``min_samples_leaf``
splitting and estimation rows, each child at least ``0.5 - min_balancedness_tol`` of its parent,
and confidence intervals from the bootstrap of little bags with the objective-Bayes debiasing of
the variance. What differs is the split search: each feature is cut into bins (``automatic_bins``: 256 to
4,096) once per forest and a node's candidate splits are the bin edges (``hte.estimators.histogram_trees``), so a
node costs one pass over its rows per candidate feature instead of a sort. At n = 6,000 with 43
covariates sorting was 70% of econml's forest time (docs/speed.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from joblib import effective_n_jobs
from scipy import stats
from scipy.special import erfc
from sklearn.base import BaseEstimator, RegressorMixin

from hte.estimators.histogram_local_linear import local_linear_moments
from hte.estimators.histogram_trees import bin_features, bin_thresholds, build_tree, forest_moments


def _finite(X) -> np.ndarray:
    """X as floats; an error naming the first rows and columns with a missing or infinite value."""
    X = np.asarray(X, dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"X has {int(bad.sum())} missing or infinite values (first at rows "
            f"{sorted(set(rows[:5].tolist()))}, columns {sorted(set(cols[:5].tolist()))}); "
            "impute or drop them first"
        )
    return X


def automatic_bins(n: int) -> int:
    """Bins per feature for n rows: n // 25 within [256, 4096]. At n = 100,000 the forest with 256
    bins had nMSE 0.070 on Cui et al.'s type 1 design, with 1,024 0.064 and with 4,096 0.060,
    econml's exact thresholds' figure; up to n = 6,400 it is 256 (docs/speed.md)."""
    return int(min(4096, max(256, n // 25)))


class HistogramMomentForest:
    """Honest GRF for J theta = A on binned features; ``predict`` as econml's ``BaseGRF``.

    Parameters
    ----------
    n_estimators : trees, a multiple of ``subforest_size``.
    min_samples_leaf : least splitting rows and least estimation rows in a leaf.
    max_samples : rows per tree (an int <= n // 2, or a fraction <= 0.5 of n).
    max_features : candidate features per split (None: all).
    min_balancedness_tol : each child keeps at least (0.5 - tol) of its parent's rows.
    subforest_size : trees per little bag (sharing one half-sample), at least 2.
    min_samples_split : least splitting rows in a node that may be split.
    max_bins : most bins per feature; None: ``automatic_bins(n)``, about one per 25 rows, at least
        256 and at most 4,096, so that a bin is narrower than the smallest leaf a tree can make.
    honest : split on one half of a tree's rows and estimate the leaves on the other (True), or
        both on all of them (False: no honesty, the intervals lose their guarantee).
    local_linear : None (default) reads the forest plainly; a ridge penalty (0.1 is grf's
        default) makes ``predict`` and the intervals the local-linear reading
        (``predict_local_linear``), for which the forest keeps each leaf's estimation rows and the
        training data (4 bytes per row per tree).
    local_linear_variables : the local-linear slopes on this many covariates, those the forest
        split on most often (None: every covariate).
    n_jobs : threads that grow trees (the kernels release the GIL; -1: every core; one under
        joblib's sequential backend, ``joblib.parallel_config(backend="sequential")``); the trees
        do not depend on it.
    random_state : seed of the subsamples and of every tree.
    """

    def __init__(
        self,
        n_estimators: int = 2000,
        *,
        min_samples_leaf: int = 15,
        max_samples: float | int = 0.5,
        max_features: int | None = None,
        min_balancedness_tol: float = 0.45,
        subforest_size: int = 4,
        min_samples_split: int = 10,
        max_bins: int | None = None,
        honest: bool = True,
        local_linear: float | None = None,
        local_linear_variables: int | None = None,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.max_features = max_features
        self.min_balancedness_tol = min_balancedness_tol
        self.subforest_size = subforest_size
        self.min_samples_split = min_samples_split
        self.max_bins = max_bins
        self.honest = honest
        self.local_linear = local_linear
        self.local_linear_variables = local_linear_variables
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _check_params(self, n: int) -> int:
        if self.subforest_size < 2:
            raise ValueError(f"subforest_size must be at least 2; got {self.subforest_size}")
        if self.n_estimators % self.subforest_size:
            raise ValueError(
                f"n_estimators={self.n_estimators} must be a multiple of "
                f"subforest_size={self.subforest_size}"
            )
        if self.local_linear is not None and not self.local_linear >= 0:
            raise ValueError(
                f"local_linear (a ridge penalty) must be >= 0; got {self.local_linear}"
            )
        if self.local_linear_variables is not None and self.local_linear_variables < 1:
            raise ValueError(
                f"local_linear_variables must be at least 1; got {self.local_linear_variables}"
            )
        if not 0.0 <= self.min_balancedness_tol <= 0.5:
            raise ValueError(
                f"min_balancedness_tol must be in [0, 0.5]; got {self.min_balancedness_tol}"
            )
        size = self.max_samples
        if isinstance(size, float):
            size = int(size * n)
        if not 2 <= size <= n // 2:
            raise ValueError(
                f"max_samples must give 2..{n // 2} rows per tree (n = {n}); got {size}"
            )
        return int(size)

    def _subsamples(self, n: int, size: int, rng: np.random.RandomState) -> list[tuple]:
        """Per tree: (splitting rows, estimation rows, seed). Each bag draws a half-sample, each
        of its trees ``size`` rows of it, split in two halves for honesty."""
        plans = []
        for _ in range(self.n_estimators // self.subforest_size):
            half = rng.choice(n, n // 2, replace=False)
            for _ in range(self.subforest_size):
                rows = half[rng.choice(n // 2, size, replace=False)]
                rng.shuffle(rows)
                seed = int(rng.randint(np.iinfo(np.int32).max))
                if self.honest:
                    plans.append((rows[: size // 2].copy(), rows[size // 2 :].copy(), seed))
                else:
                    plans.append((rows, rows.copy(), seed))
        return plans

    def fit(self, X, J, A) -> HistogramMomentForest:
        """Grow the forest on covariates X (n, p) with per-row J (> 0 on average) and A."""
        X = _finite(X)
        n, p = X.shape
        J = np.ascontiguousarray(np.ravel(J), dtype=np.float64)
        A = np.ascontiguousarray(np.ravel(A), dtype=np.float64)
        if J.size != n or A.size != n:
            raise ValueError(
                f"J and A must have one value per row of X ({n}); got {J.size}, {A.size}"
            )
        size = self._check_params(n)
        max_features = p if self.max_features is None else int(min(self.max_features, p))
        self.thresholds_ = bin_thresholds(X, self.max_bins or automatic_bins(n))
        Xb = bin_features(X, self.thresholds_)
        n_bins = np.array([c.size + 1 for c in self.thresholds_], dtype=np.int64)
        plans = self._subsamples(n, size, np.random.RandomState(self.random_state))
        settings = (
            max_features,
            int(self.min_samples_leaf),
            int(self.min_samples_split),
            0.5 - float(self.min_balancedness_tol),
        )

        def grow(plan):
            train, val, seed = plan
            return build_tree(Xb, n_bins, A, J, train, val, *settings, seed)

        # joblib's reading of n_jobs (-1 every core, -2 all but one, None one), which also
        # follows an active ``joblib.parallel_config``: one thread under its sequential backend,
        # as in hte's worker processes (``hte.pipeline.parallel.in_worker``)
        workers = max(1, effective_n_jobs(self.n_jobs))
        if workers == 1:
            trees = [grow(plan) for plan in plans]
        else:
            with ThreadPoolExecutor(workers) as pool:
                trees = list(pool.map(grow, plans))
        self._stack(trees)
        if self.local_linear is not None:
            self._keep_leaf_rows(trees, X, A, J)
        self.n_features_in_ = p
        self.n_outputs_ = 1
        return self

    def _stack(self, trees: list[tuple]) -> None:
        """Every tree's nodes in flat arrays, children re-indexed, roots at ``roots_``."""
        counts = np.array([tree[0].size for tree in trees], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.roots_ = offsets
        self.feature_ = np.concatenate([tree[0] for tree in trees])
        self.threshold_bin_ = np.concatenate([tree[1] for tree in trees])

        def shifted(children, offset):
            return np.where(children >= 0, children + offset, -1).astype(np.int32)

        self.left_ = np.concatenate([shifted(t[2], o) for t, o in zip(trees, offsets, strict=True)])
        self.right_ = np.concatenate(
            [shifted(t[3], o) for t, o in zip(trees, offsets, strict=True)]
        )
        self.leaf_a_ = np.concatenate([tree[4] for tree in trees])
        self.leaf_j_ = np.concatenate([tree[5] for tree in trees])

    def _keep_leaf_rows(self, trees: list[tuple], X: np.ndarray, A, J) -> None:
        """Every tree's estimation rows in one array; node k's are rows_[row_start_[k]:
        row_end_[k]]. Plus the standardized training covariates and the moment pieces."""
        sizes = np.array([tree[8].size for tree in trees], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.rows_ = np.concatenate([tree[8] for tree in trees])
        self.row_start_ = np.concatenate([t[6] + o for t, o in zip(trees, offsets, strict=True)])
        self.row_end_ = np.concatenate([t[7] + o for t, o in zip(trees, offsets, strict=True)])
        self.ll_columns_ = self._most_split_columns(X.shape[1])
        X = X[:, self.ll_columns_]
        self.center_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.train_z_ = (X - self.center_) / self.scale_
        self.train_a_, self.train_j_ = A, J

    def _most_split_columns(self, n_features: int) -> np.ndarray:
        """The covariates of the local-linear slopes: the ``local_linear_variables`` split on
        most often (ties by column order), in column order; every covariate when None."""
        if self.local_linear_variables is None:
            return np.arange(n_features)
        counts = np.bincount(self.feature_[self.feature_ >= 0], minlength=n_features)
        order = np.argsort(-counts, kind="stable")
        return np.sort(order[: int(self.local_linear_variables)])

    def predict_local_linear(
        self, X, alpha: float = 0.05, ll_lambda: float = 0.1
    ) -> tuple[np.ndarray, ...]:
        """(theta, lower, upper, stderr), each (n,), of the local-linear reading
        (``hte.estimators.histogram_local_linear``): the forest's weights, the effect linear in
        the standardized covariates around x, ridge ``ll_lambda`` on the slopes."""
        if not hasattr(self, "rows_"):
            raise RuntimeError("fit with local_linear set for the local-linear reading")
        arr = self._checked(X)
        theta, between, correction = local_linear_moments(
            bin_features(arr, self.thresholds_),
            (arr[:, self.ll_columns_] - self.center_) / self.scale_,
            self.roots_,
            int(self.subforest_size),
            self.feature_,
            self.threshold_bin_,
            self.left_,
            self.right_,
            self.row_start_,
            self.row_end_,
            self.rows_,
            self.train_z_,
            self.train_a_,
            self.train_j_,
            float(ll_lambda),
        )
        stderr = self._debiased_stderr(between, correction)
        q = stats.norm.ppf(1 - alpha / 2)
        return theta, theta - q * stderr, theta + q * stderr, stderr

    def _checked(self, X) -> np.ndarray:
        if not hasattr(self, "roots_"):
            raise RuntimeError("HistogramMomentForest is not fitted; call fit first")
        X = _finite(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} columns; got shape {X.shape}")
        return X

    def _moments(self, X) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Xb = bin_features(self._checked(X), self.thresholds_)
        return forest_moments(
            Xb,
            self.roots_,
            int(self.subforest_size),
            self.feature_,
            self.threshold_bin_,
            self.left_,
            self.right_,
            self.leaf_a_,
            self.leaf_j_,
        )

    def _plain_point_and_stderr(self, X) -> tuple[np.ndarray, np.ndarray]:
        """theta(x) and its standard error, each (n,), of the plain reading (whatever
        ``local_linear`` says: ``point_interval_stderr`` is the public reading)."""
        theta, between, correction = self._moments(X)
        return theta, self._debiased_stderr(between, correction)

    def _debiased_stderr(self, between: np.ndarray, correction: np.ndarray) -> np.ndarray:
        """sqrt of between - correction with the objective-Bayes debiasing (a variance is >= 0)."""
        n_bags = self.n_estimators // self.subforest_size
        # objective-Bayes debiasing of between - correction (a variance known to be positive)
        naive = between - correction
        se = np.maximum(between, correction) * np.sqrt(2.0 / n_bags)
        z = naive / np.clip(se, 1e-10, np.inf)
        density = np.exp(-(z**2) / 2.0) / np.sqrt(2.0 * np.pi)
        var = naive + se * density / (0.5 * erfc(-z / np.sqrt(2.0)))
        return np.sqrt(np.maximum(var, 1e-32))

    def point_interval_stderr(self, X, alpha: float = 0.05) -> tuple[np.ndarray, ...]:
        """(theta, lower, upper, stderr), each (n,): the (1 - alpha) normal interval."""
        if self.local_linear is not None:
            return self.predict_local_linear(X, alpha, self.local_linear)
        theta, stderr = self._plain_point_and_stderr(X)
        q = stats.norm.ppf(1 - alpha / 2)
        return theta, theta - q * stderr, theta + q * stderr, stderr

    def predict(self, X, interval: bool = False, alpha: float = 0.05):
        """theta(x) (n, 1); with ``interval=True`` also the (1 - alpha) bounds, as econml's."""
        if not interval:
            if self.local_linear is None:
                return self._moments(X)[0].reshape(-1, 1)
            return self.point_interval_stderr(X, alpha)[0].reshape(-1, 1)
        theta, lower, upper, _ = self.point_interval_stderr(X, alpha)
        return theta.reshape(-1, 1), lower.reshape(-1, 1), upper.reshape(-1, 1)

    def prediction_stderr(self, X) -> np.ndarray:
        """Standard error of theta(x), (n, 1)."""
        return self.point_interval_stderr(X)[3].reshape(-1, 1)


class HistogramRegressionForest(BaseEstimator, RegressorMixin):
    """Honest regression forest with little-bags intervals: ``HistogramMomentForest`` with J = 1
    and A = y, so theta(x) is the forest-weighted mean of y. scikit-learn's regressor interface
    (econml's DR-learner clones it as its final stage), plus ``interval``."""

    def __init__(
        self,
        n_estimators: int = 1000,
        *,
        min_samples_leaf: int = 10,
        max_samples: float | int = 0.45,
        max_features: int | None = None,
        min_balancedness_tol: float = 0.45,
        subforest_size: int = 4,
        n_jobs: int | None = 2,
        random_state: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_samples = max_samples
        self.max_features = max_features
        self.min_balancedness_tol = min_balancedness_tol
        self.subforest_size = subforest_size
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None) -> HistogramRegressionForest:
        """Grow the forest on (X, y); sample weights are not supported."""
        if sample_weight is not None:
            raise ValueError("HistogramRegressionForest does not take sample weights")
        y = np.ravel(np.asarray(y, dtype=np.float64))
        # the parameters are the moment forest's own, by name
        self.forest_ = HistogramMomentForest(**self.get_params()).fit(X, np.ones_like(y), y)
        self.n_features_in_ = self.forest_.n_features_in_
        return self

    def predict(self, X) -> np.ndarray:
        """Forest-weighted mean of y at each row, (n,)."""
        return self.forest_.predict(X).ravel()

    def interval(self, X, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise (1 - alpha) interval of the forest's estimate, each (n,)."""
        _, lower, upper, _ = self.forest_.point_interval_stderr(X, alpha)
        return lower, upper


def compile_kernels() -> None:
    """Compile the forest's kernels into numba's on-disk cache (``make setup`` calls this), so the
    first fit of a run does not pay the compilation (4-8 s)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(600, 2))
    for bins in (256, 512):  # one-byte and two-byte bin codes
        HistogramMomentForest(4, max_bins=bins, n_jobs=1, random_state=0).fit(
            X, np.ones(600), rng.normal(size=600)
        ).predict(X, interval=True)
