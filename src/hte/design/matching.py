"""Propensity-score matching: 1:1 nearest neighbour on the logit of the propensity, with a caliper.

Real-world comparisons of CAR-T and teclistamab (e.g. the 802MO TriNetX study) report hazard
ratios in a propensity-matched cohort; hte offers the same design beside its weighting estimators
so its numbers can be set next to theirs. Greedy matching without replacement, CAR-T patients
taken in a seeded random order, each paired with the nearest unused teclistamab patient whose
logit propensity lies within ``caliper`` standard deviations (Austin 2011 recommends 0.2).
Unmatched patients are counted, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hte.design.overlap import _propensity, as_binary_treatment


@dataclass(frozen=True)
class MatchResult:
    """Matched pairs (row positions into the input arrays) and what was left out."""

    treated: np.ndarray  # (n_pairs,) rows of CAR-T patients
    control: np.ndarray  # (n_pairs,) their teclistamab matches
    caliper: float  # on the logit-propensity scale
    n_unmatched_cart: int
    n_unmatched_tec: int

    @property
    def n_pairs(self) -> int:
        return int(self.treated.size)

    def rows(self) -> np.ndarray:
        """All matched rows (treated then controls), e.g. to subset a cohort."""
        return np.concatenate([self.treated, self.control])

    def pair_ids(self) -> np.ndarray:
        """Pair number of each row of ``rows()`` (for pair-clustered variances)."""
        ids = np.arange(self.n_pairs)
        return np.concatenate([ids, ids])

    def as_dict(self) -> dict:
        return {
            "n_pairs": self.n_pairs,
            "caliper_logit": self.caliper,
            "n_unmatched_cart": self.n_unmatched_cart,
            "n_unmatched_tec": self.n_unmatched_tec,
        }


def _logit(e: np.ndarray) -> np.ndarray:
    return np.log(e) - np.log1p(-e)


def _nearest_unused(pos: int, values: np.ndarray, x: float, left: np.ndarray, right: np.ndarray):
    """Index of the unused sorted control nearest ``x``, starting from insertion point ``pos``.

    ``left[i]``/``right[i]`` point to the nearest unused neighbours of sorted slot ``i`` (a doubly
    linked list over the unused controls, so each look-up is O(1) after the binary search)."""
    n = values.size
    cand = []
    i = pos if pos < n else n - 1
    if i >= 0 and i < n:
        r = _find_unused(i, right, n)
        if r is not None:
            cand.append(r)
        lo = _find_unused_left(i - 1, left)
        if lo is not None:
            cand.append(lo)
    if not cand:
        return None
    return min(cand, key=lambda j: (abs(values[j] - x), j))


def _find_unused(i: int, right: np.ndarray, n: int):
    """First unused slot at or after ``i`` (path-compressed pointer chase)."""
    j = i
    while j < n and right[j] != j:
        j = right[j]
    k = i
    while k < n and right[k] != k:  # compress
        nxt = right[k]
        right[k] = j
        k = nxt
    return j if j < n else None


def _find_unused_left(i: int, left: np.ndarray):
    """First unused slot at or before ``i``."""
    j = i
    while j >= 0 and left[j] != j:
        j = left[j]
    k = i
    while k >= 0 and left[k] != k:
        nxt = left[k]
        left[k] = j
        k = nxt
    return j if j >= 0 else None


def match_on_propensity(
    propensity, treatment, *, caliper: float = 0.2, random_state: int | None = None
) -> MatchResult:
    """1:1 greedy nearest-neighbour matching on logit(e) within ``caliper`` SDs of logit(e).

    ``propensity`` are P(CAR-T | x) in (0, 1), ``treatment`` 0/1 (1 = CAR-T). Returns the pairs
    and the counts left unmatched in each arm.
    """
    w = as_binary_treatment(treatment)
    e = _propensity(propensity, w.size)
    if not np.isfinite(caliper) or caliper <= 0:
        raise ValueError(f"caliper must be a positive number of SDs; got {caliper!r}")
    z = _logit(np.clip(e, 1e-12, 1 - 1e-12))
    width = float(caliper * z.std(ddof=1))
    treated_rows = np.flatnonzero(w == 1)
    control_rows = np.flatnonzero(w == 0)
    order = np.argsort(z[control_rows], kind="stable")
    sorted_controls = control_rows[order]
    values = z[sorted_controls]
    n_c = values.size
    left = np.arange(n_c)  # slot i unused <=> left[i] == i == right[i]
    right = np.arange(n_c)
    rng = np.random.default_rng(random_state)
    pairs_t, pairs_c = [], []
    for t in rng.permutation(treated_rows):
        if len(pairs_c) == n_c:
            break
        pos = int(np.searchsorted(values, z[t]))
        j = _nearest_unused(pos, values, z[t], left, right)
        if j is None or abs(values[j] - z[t]) > width:
            continue
        pairs_t.append(int(t))
        pairs_c.append(int(sorted_controls[j]))
        # mark slot j used: its pointers skip to the neighbours
        right[j] = j + 1
        left[j] = j - 1
    treated = np.asarray(pairs_t, dtype=int)
    control = np.asarray(pairs_c, dtype=int)
    return MatchResult(
        treated=treated,
        control=control,
        caliper=width,
        n_unmatched_cart=int(treated_rows.size - treated.size),
        n_unmatched_tec=int(control_rows.size - control.size),
    )
