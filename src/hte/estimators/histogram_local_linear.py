"""Local-linear reading of a histogram moment forest (Friedberg, Tibshirani, Athey & Wager 2020).

A forest estimate theta(x) = sum_i alpha_i(x) A_i / sum_i alpha_i(x) J_i treats the effect as
constant over the patients that share leaves with x, so where the effect changes with x the
estimate is pulled toward its neighbours' (smoothing bias, which the little-bags variance cannot
see). The local-linear reading keeps the forest's weights but lets the effect vary linearly with
the covariates around x: gamma = (theta, beta) solves

    sum_i alpha_i(x) z_i (A_i - J_i z_i' gamma) = 0,   z_i = (1, (X_i - x) / sd),

with a ridge penalty lambda * sum_i alpha_i J_i on beta (covariates standardized), and theta(x) is
gamma's first entry. Its variance is the little-bags variance of the per-tree moments
u' psi_t, with u = M^{-1} e_1 and psi_t the tree's share of the equation at gamma (the delta method).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hte.estimators.histogram_trees import leaf_of, little_bags_variance


@njit(cache=True, nogil=True)
def local_linear_moments(
    Xb,
    Z,
    roots,
    bag_size,
    feature,
    threshold,
    left,
    right,
    row_start,
    row_end,
    rows,
    train_Z,
    A,
    J,
    lam,
):
    """Per row of Z: theta(x), and the between-bag variance and within-bag correction of its
    per-tree moments (as ``histogram_trees.forest_moments``). ``rows[row_start[node]:
    row_end[node]]`` are a leaf's estimation rows; Z and train_Z the standardized covariates."""
    n, q = Z.shape
    k = q + 1
    n_trees = roots.size
    theta = np.empty(n)
    var_between = np.empty(n)
    var_correction = np.empty(n)
    alpha = np.zeros(train_Z.shape[0])
    touched = np.empty(train_Z.shape[0], dtype=np.int64)
    leaf = np.empty(n_trees, dtype=np.int64)
    moment = np.empty(n_trees)
    z = np.empty(k)
    e1 = np.zeros(k)
    e1[0] = 1.0
    for i in range(n):
        n_touched = 0
        for t in range(n_trees):
            node = leaf_of(Xb, i, roots[t], feature, threshold, left, right)
            leaf[t] = node
            size = row_end[node] - row_start[node]
            if size == 0:
                continue
            w = 1.0 / (size * n_trees)
            for pos in range(row_start[node], row_end[node]):
                r = rows[pos]
                if alpha[r] == 0.0:
                    touched[n_touched] = r
                    n_touched += 1
                alpha[r] += w
        M = np.zeros((k, k))
        b = np.zeros(k)
        for m in range(n_touched):
            r = touched[m]
            z[0] = 1.0
            for c in range(q):
                z[c + 1] = train_Z[r, c] - Z[i, c]
            wj = alpha[r] * J[r]
            wa = alpha[r] * A[r]
            for u in range(k):
                b[u] += wa * z[u]
                for v in range(k):
                    M[u, v] += wj * z[u] * z[v]
        ridge = lam * M[0, 0]
        for u in range(1, k):
            M[u, u] += ridge
        gamma = np.linalg.solve(M, b)
        direction = np.linalg.solve(M, e1)
        theta[i] = gamma[0]
        for t in range(n_trees):
            node = leaf[t]
            size = row_end[node] - row_start[node]
            total = 0.0
            for pos in range(row_start[node], row_end[node]):
                r = rows[pos]
                fitted = gamma[0]
                lever = direction[0]
                for c in range(q):
                    d = train_Z[r, c] - Z[i, c]
                    fitted += gamma[c + 1] * d
                    lever += direction[c + 1] * d
                total += lever * (A[r] - J[r] * fitted)
            moment[t] = total / size if size > 0 else 0.0
        for m in range(n_touched):
            alpha[touched[m]] = 0.0
        var_between[i], var_correction[i] = little_bags_variance(moment, bag_size)
    return theta, var_between, var_correction
