"""Known-effect survival designs shared by the estimator tests."""

import numpy as np


def exponential_rmst_design(n: int, seed: int, slope: float):
    """Exponential T; the treated hazard falls with X1 (RMST effect 0 .. 0.17 at h = 1 for
    slope 1.5, none for slope 0); censoring heavier for treated patients with large X2 (depends on
    x and w). Returns X, W, time, event, the true RMST effect and h."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(n, 3))
    W = rng.binomial(1, 0.3 + 0.4 * X[:, 2])
    rate0 = np.full(n, 1.0)
    rate1 = np.exp(-slope * X[:, 0])
    T = rng.exponential(1 / np.where(W == 1, rate1, rate0))
    C = rng.exponential(1 / (0.1 + 1.0 * X[:, 1] * W))
    h = 1.0
    rmst = lambda r: (1 - np.exp(-r * h)) / r  # noqa: E731
    return X, W, np.minimum(T, C), (T <= C).astype(int), rmst(rate1) - rmst(rate0), h
