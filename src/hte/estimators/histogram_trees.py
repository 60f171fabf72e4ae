"""Compiled kernels of the histogram moment forest (``hte.estimators.histogram_grf``).

Each tree solves a scalar linear moment J theta = A locally, as a generalized random forest does:
a node's parameter is theta_P = sum A / sum J over its splitting rows, each row's pseudo-outcome is
rho_i = A_i - J_i theta_P (the gradient relabelling, up to the node's constant 1 / mean J), and the
split maximizes the heterogeneity sum_child (sum rho)^2 / n_child. The features are binned once
per forest (256 to 4,096 bins each, ``histogram_grf.automatic_bins``), so a node's split search is one pass over its rows per
candidate feature into a histogram and one scan over the bins, instead of a sort per feature and
node. Honest trees: the splits are chosen on one half of the tree's subsample and every leaf
keeps the mean A and mean J of the other half's rows that fall in it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_BINS = 256


def bin_thresholds(X: np.ndarray, max_bins: int = MAX_BINS) -> list[np.ndarray]:
    """Per feature, the increasing cut points: midpoints between distinct values when there are
    at most ``max_bins`` of them, else the midpoints nearest the 1/max_bins quantiles."""
    cuts = []
    for column in np.asarray(X, dtype=np.float64).T:
        distinct = np.unique(column)
        mids = (distinct[:-1] + distinct[1:]) / 2.0
        if distinct.size > max_bins:
            ranks = np.searchsorted(
                distinct, np.quantile(column, np.arange(1, max_bins) / max_bins)
            )
            ranks = np.unique(np.clip(ranks, 1, distinct.size - 1)) - 1
            mids = mids[ranks]
        cuts.append(mids)
    return cuts


def bin_features(X: np.ndarray, thresholds: list[np.ndarray]) -> np.ndarray:
    """(n, p) bin index per value, Fortran order: bin b holds thresholds[b-1] < x <= thresholds[b],
    so "bin <= b" is "x <= thresholds[b]" for training and new rows alike."""
    arr = np.asarray(X, dtype=np.float64)
    widest = max((c.size + 1 for c in thresholds), default=1)
    out = np.empty(arr.shape, dtype=np.uint8 if widest <= 256 else np.uint16, order="F")
    for j, cuts in enumerate(thresholds):
        out[:, j] = np.searchsorted(cuts, arr[:, j], side="left")
    return out


@njit(cache=True, nogil=True)
def _random_below(state, bound):
    """A draw from 0..bound-1: one step of Knuth's 64-bit linear congruential generator, read
    from its high bits. Each tree carries its own state, so trees do not depend on threads."""
    state[0] = state[0] * np.uint64(6364136223846793005) + np.uint64(1442695040888963407)
    return np.int64(state[0] >> np.uint64(33)) % bound


@njit(cache=True, nogil=True)
def _node_means(rows, start, end, A, J):
    sum_a = 0.0
    sum_j = 0.0
    for k in range(start, end):
        sum_a += A[rows[k]]
        sum_j += J[rows[k]]
    count = max(end - start, 1)
    return sum_a / count, sum_j / count


@njit(cache=True, nogil=True)
def _partition(rows, start, end, column, threshold_bin):
    """Rows with bin <= threshold_bin first; returns where the right part starts."""
    mid = start
    for k in range(start, end):
        r = rows[k]
        if column[r] <= threshold_bin:
            rows[k] = rows[mid]
            rows[mid] = r
            mid += 1
    return mid


@njit(cache=True, nogil=True)
def _best_split_of_feature(
    column, n_bins, train, t0, t1, val, v0, v1, rho, min_leaf, min_frac, count_t, sum_r, count_v
):
    """(gain, threshold bin) of the best admissible split on one feature: gain -1 if no split
    is admissible, -2 if the feature is constant over the node's splitting rows."""
    for b in range(n_bins):
        count_t[b] = 0
        sum_r[b] = 0.0
        count_v[b] = 0
    for k in range(t0, t1):
        r = train[k]
        b = column[r]
        count_t[b] += 1
        sum_r[b] += rho[r]
    for k in range(v0, v1):
        count_v[column[val[k]]] += 1
    n_t = t1 - t0
    n_v = v1 - v0
    total = 0.0
    occupied = 0
    running = 0
    for b in range(n_bins):
        total += sum_r[b]
        occupied += count_t[b] > 0
        running += count_v[b]
        count_v[b] = running  # now the cumulative count of estimation rows up to bin b
    if occupied < 2:
        return -2.0, -1  # constant in this node's splitting rows
    best_gain = -1.0
    best_bin = -1
    left_t = 0
    left_sum = 0.0
    b = 0
    while b < n_bins:
        if count_t[b] == 0:
            b += 1
            continue
        left_t += count_t[b]
        left_sum += sum_r[b]
        nxt = b + 1
        while nxt < n_bins and count_t[nxt] == 0:
            nxt += 1
        if nxt >= n_bins:
            break
        cut = (b + nxt - 1) // 2  # midway between the two training bins
        left_v = count_v[cut]
        right_t = n_t - left_t
        right_v = n_v - left_v
        admissible = (
            left_t >= min_leaf
            and right_t >= min_leaf
            and left_v >= min_leaf
            and right_v >= min_leaf
            and left_t >= min_frac * n_t
            and right_t >= min_frac * n_t
            and left_v >= min_frac * n_v
            and right_v >= min_frac * n_v
        )
        if admissible:
            right_sum = total - left_sum
            gain = left_sum * left_sum / left_t + right_sum * right_sum / right_t
            if gain > best_gain:
                best_gain = gain
                best_bin = cut
        b = nxt
    return best_gain, best_bin


@njit(cache=True, nogil=True)
def build_tree(
    Xb, n_bins, A, J, train_rows, val_rows, max_features, min_leaf, min_split, min_frac, seed
):
    """Grow one honest tree. Returns (feature, threshold_bin, left, right, leaf_a, leaf_j, v0, v1,
    val): node arrays in depth-first order; feature -1 marks a leaf, whose leaf_a / leaf_j are the
    mean A / J of its estimation rows, val[v0:v1] (for a local-linear reading)."""
    rng = np.full(1, seed, dtype=np.uint64)
    n_features = Xb.shape[1]
    train = train_rows.copy()
    val = val_rows.copy()
    capacity = 2 * (train.size // max(min_leaf, 1)) + 3
    feature = np.full(capacity, -1, dtype=np.int32)
    threshold = np.zeros(capacity, dtype=np.int32)
    left = np.full(capacity, -1, dtype=np.int32)
    right = np.full(capacity, -1, dtype=np.int32)
    leaf_a = np.zeros(capacity)
    leaf_j = np.zeros(capacity)
    node_v0 = np.zeros(capacity, dtype=np.int32)  # each node's estimation rows: val[v0:v1]
    node_v1 = np.zeros(capacity, dtype=np.int32)
    rho = np.zeros(A.size)
    widest = n_bins.max()
    count_t = np.zeros(widest, dtype=np.int64)
    sum_r = np.zeros(widest)
    count_v = np.zeros(widest, dtype=np.int64)
    order = np.arange(n_features)
    # stack of nodes to grow: node id, train range, val range
    stack = np.zeros((capacity, 5), dtype=np.int64)
    stack[0] = (0, 0, train.size, 0, val.size)
    depth_of_stack = 1
    n_nodes = 1
    while depth_of_stack > 0:
        depth_of_stack -= 1
        node, t0, t1, v0, v1 = stack[depth_of_stack]
        leaf_a[node], leaf_j[node] = _node_means(val, v0, v1, A, J)
        node_v0[node] = v0
        node_v1[node] = v1
        n_t = t1 - t0
        if n_t < min_split or n_t < 2 * min_leaf or v1 - v0 < 2 * min_leaf:
            continue
        sum_a = 0.0
        sum_j = 0.0
        for k in range(t0, t1):
            sum_a += A[train[k]]
            sum_j += J[train[k]]
        if sum_j <= 0.0:
            continue
        theta = sum_a / sum_j
        for k in range(t0, t1):
            r = train[k]
            rho[r] = A[r] - J[r] * theta
        best_gain = 0.0
        best_feature = -1
        best_bin = -1
        tried = 0
        for i in range(n_features):
            if tried >= max_features:
                break
            pick = i + _random_below(rng, n_features - i)
            order[i], order[pick] = order[pick], order[i]
            f = order[i]
            gain, cut = _best_split_of_feature(
                Xb[:, f],
                n_bins[f],
                train,
                t0,
                t1,
                val,
                v0,
                v1,
                rho,
                min_leaf,
                min_frac,
                count_t,
                sum_r,
                count_v,
            )
            if gain == -2.0:
                continue  # constant in this node: does not count as a tried feature
            tried += 1
            if gain > best_gain:
                best_gain, best_feature, best_bin = gain, f, cut
        if best_feature < 0:
            continue
        column = Xb[:, best_feature]
        t_mid = _partition(train, t0, t1, column, best_bin)
        v_mid = _partition(val, v0, v1, column, best_bin)
        feature[node] = best_feature
        threshold[node] = best_bin
        left[node] = n_nodes
        right[node] = n_nodes + 1
        stack[depth_of_stack] = (n_nodes + 1, t_mid, t1, v_mid, v1)
        stack[depth_of_stack + 1] = (n_nodes, t0, t_mid, v0, v_mid)
        depth_of_stack += 2
        n_nodes += 2
    return (
        feature[:n_nodes].copy(),
        threshold[:n_nodes].copy(),
        left[:n_nodes].copy(),
        right[:n_nodes].copy(),
        leaf_a[:n_nodes].copy(),
        leaf_j[:n_nodes].copy(),
        node_v0[:n_nodes].copy(),
        node_v1[:n_nodes].copy(),
        val.astype(np.int32),
    )


@njit(cache=True, nogil=True)
def leaf_of(Xb, i, root, feature, threshold, left, right):
    """The leaf that binned row ``Xb[i]`` reaches from ``root``."""
    node = root
    while feature[node] >= 0:
        if Xb[i, feature[node]] <= threshold[node]:
            node = left[node]
        else:
            node = right[node]
    return node


@njit(cache=True, nogil=True)
def forest_moments(Xb, roots, bag_size, feature, threshold, left, right, leaf_a, leaf_j):
    """Per row: theta(x) = mean_t A_t / mean_t J_t over the trees' leaves, and the two pieces of
    its little-bags variance (Athey, Tibshirani & Wager 2019): the between-bag variance of the
    bag-mean moments M_t = A_t - J_t theta, and the within-bag correction, both divided by
    (mean_t J_t)^2. Trees of one bag are consecutive, ``bag_size`` each."""
    n = Xb.shape[0]
    n_trees = roots.size
    theta = np.empty(n)
    var_between = np.empty(n)
    var_correction = np.empty(n)
    a = np.empty(n_trees)
    j = np.empty(n_trees)
    moment = np.empty(n_trees)
    for i in range(n):
        sum_a = 0.0
        sum_j = 0.0
        for t in range(n_trees):
            node = leaf_of(Xb, i, roots[t], feature, threshold, left, right)
            a[t] = leaf_a[node]
            j[t] = leaf_j[node]
            sum_a += a[t]
            sum_j += j[t]
        jac = sum_j / n_trees
        est = sum_a / sum_j if sum_j != 0.0 else 0.0
        theta[i] = est
        for t in range(n_trees):
            moment[t] = a[t] - j[t] * est
        between, correction = little_bags_variance(moment, bag_size)
        scale = jac * jac if jac != 0.0 else 1.0
        var_between[i] = between / scale
        var_correction[i] = correction / scale
    return theta, var_between, var_correction


@njit(cache=True, nogil=True)
def little_bags_variance(moment, bag_size):
    """(between, correction) of per-tree moments whose bags are ``bag_size`` consecutive trees:
    the variance of the bag means around their mean, and the within-bag variance over
    (bag_size - 1) that the between part also carries (Athey, Tibshirani & Wager 2019)."""
    n_bags = moment.size // bag_size
    mean_of_bags = 0.0
    sq_between = 0.0
    sq_total = 0.0
    for g in range(n_bags):
        bag_sum = 0.0
        for t in range(g * bag_size, (g + 1) * bag_size):
            bag_sum += moment[t]
            sq_total += moment[t] * moment[t]
        bag_mean = bag_sum / bag_size
        mean_of_bags += bag_mean
        sq_between += bag_mean * bag_mean
    mean_of_bags /= n_bags
    sq_between /= n_bags
    sq_total /= n_bags * bag_size
    return sq_between - mean_of_bags * mean_of_bags, (sq_total - sq_between) / (bag_size - 1)
