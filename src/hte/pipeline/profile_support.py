"""Support on the joint profile: is there anybody like this patient in each arm of the cohort?

Checking each value against its observed range and the propensity score misses combinations no
patient had (every value observed somewhere, never together: 90 years, ECOG 4, the lowest
creatinine clearance, the highest ferritin and CRP). Here a profile is compared with the cohort's
patients of each arm on all covariates at once:

- every design column is put on a common scale fitted on the cohort: columns with more than two
  values by their normal scores (``Phi^-1`` of the mid-rank empirical distribution, so skewed
  laboratory values such as ferritin are not dominated by their tail), 0/1 columns as they are
  (a mismatch counts 1);
- the **distance to an arm** is the mean Euclidean distance to the ``k`` nearest patients of
  that arm;
- the **threshold** of an arm is the ``quantile`` (99%) of the same distance over the cohort's
  own patients (leave-one-out: a patient is not its own neighbour). A profile farther from an arm
  than 99% of the cohort's patients are is "unlike the patients of that arm", and the fields that
  set it apart most are named.

Fitted at run time on the analysed cohort (stored in the profile bundle: the standardized rows
stay inside the run folder, like the fitted models), evaluated per query in well under 1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

K_NEIGHBOURS = 5
QUANTILE = 0.99
CHUNK = 512  # rows per block of the leave-one-out distance computation
ARM_WORDS = {"cart": "CAR-T", "tec": "teclistamab"}


@dataclass
class JointSupport:
    """The cohort's rows per arm on the common scale and the per-arm distance thresholds."""

    columns: list[str]
    scored: np.ndarray  # bool per column: normal scores (else 0/1 as is)
    sorted_values: list[np.ndarray]  # per scored column, the cohort's sorted values
    rows: dict[str, np.ndarray]  # arm -> (n_arm, p) float32
    threshold: dict[str, float]
    k: int
    quantile: float

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Rows of the design matrix on the common scale."""
        X = np.asarray(X, dtype=float)
        out = X.copy()
        for j in np.flatnonzero(self.scored):
            values = self.sorted_values[j]
            n = values.size
            left = np.searchsorted(values, X[:, j], side="left")
            right = np.searchsorted(values, X[:, j], side="right")
            cdf = np.clip((left + right) / (2.0 * n), 0.5 / n, 1 - 0.5 / n)
            out[:, j] = ndtri(cdf)
        return out

    def distances(self, x: np.ndarray) -> dict[str, tuple[float, np.ndarray]]:
        """Per arm: the mean distance of one design row to its ``k`` nearest patients, and the
        mean absolute difference per column to those patients (what sets it apart)."""
        z = self.transform(np.atleast_2d(x))[0]
        out = {}
        for arm, rows in self.rows.items():
            diff = rows - z
            d = np.sqrt((diff * diff).sum(axis=1))
            nearest = np.argpartition(d, min(self.k, d.size - 1))[: self.k]
            out[arm] = (float(d[nearest].mean()), np.abs(diff[nearest]).mean(axis=0))
        return out


def _is_binary(column: np.ndarray) -> bool:
    values = np.unique(column[np.isfinite(column)])
    return values.size <= 2 and set(values.tolist()) <= {0.0, 1.0}


def _loo_knn_mean(Z: np.ndarray, arm_rows: np.ndarray, in_arm: np.ndarray, k: int) -> np.ndarray:
    """For every row of Z, the mean distance to its k nearest rows of ``arm_rows``; a row that
    is itself in the arm (``in_arm``) skips its zero distance to itself."""
    out = np.empty(Z.shape[0])
    sq_arm = (arm_rows * arm_rows).sum(axis=1)
    for start in range(0, Z.shape[0], CHUNK):
        block = Z[start : start + CHUNK]
        sq = (block * block).sum(axis=1)[:, None] + sq_arm[None, :] - 2 * block @ arm_rows.T
        d = np.sqrt(np.clip(sq, 0.0, None))
        take = k + 1  # one spare for the row itself
        part = np.sort(np.partition(d, min(take, d.shape[1] - 1), axis=1)[:, :take], axis=1)
        self_in = in_arm[start : start + CHUNK]
        out[start : start + CHUNK] = np.where(
            self_in, part[:, 1 : k + 1].mean(axis=1), part[:, :k].mean(axis=1)
        )
    return out


def fit_joint_support(
    X: np.ndarray,
    treatment: np.ndarray,
    columns: list[str],
    k: int = K_NEIGHBOURS,
    quantile: float = QUANTILE,
) -> JointSupport:
    """The common scale, the arms' rows and their thresholds, from the analysed cohort's design
    matrix ``X`` and treatment (1 = CAR-T)."""
    X = np.asarray(X, dtype=float)
    w = np.asarray(treatment).astype(int)
    scored = np.array([not _is_binary(X[:, j]) for j in range(X.shape[1])])
    sorted_values = [np.sort(X[:, j]) if scored[j] else np.zeros(0) for j in range(X.shape[1])]
    support = JointSupport(list(columns), scored, sorted_values, {}, {}, int(k), float(quantile))
    Z = support.transform(X)
    for arm, code in (("cart", 1), ("tec", 0)):
        rows = Z[w == code]
        support.rows[arm] = rows.astype(np.float32)
        loo = _loo_knn_mean(Z, rows.astype(float), w == code, int(k))
        support.threshold[arm] = float(np.quantile(loo, quantile))
    return support


def support_flags(
    support: JointSupport, x: np.ndarray, field_of: dict[str, str], labels: dict[str, str]
) -> tuple[list[str], dict]:
    """Plain-language flags for a design row unlike the patients of either arm (empty when it
    has close patients in both), and the distances and thresholds behind them.

    ``field_of`` maps design columns to clinical fields, ``labels`` fields to their labels."""
    distances = support.distances(x)
    detail: dict[str, dict] = {}
    unlike = []
    for arm, (distance, per_column) in distances.items():
        threshold = support.threshold[arm]
        by_field: dict[str, float] = {}
        for column, value in zip(support.columns, per_column, strict=True):
            name = field_of.get(column, column)
            by_field[name] = by_field.get(name, 0.0) + float(value)
        apart = sorted(by_field, key=lambda f: -by_field[f])[:3]
        detail[arm] = {
            "distance": distance,
            "threshold": threshold,
            "supported": distance <= threshold,
            "differs_most_in": [labels.get(f, f) for f in apart],
        }
        if distance > threshold:
            unlike.append(arm)
    if not unlike:
        return [], detail
    arms = " or ".join(ARM_WORDS[a] for a in unlike)
    apart = detail[unlike[0]]["differs_most_in"]
    far = ", ".join(
        f"{ARM_WORDS[a]} {detail[a]['distance']:.1f} (99% of the cohort's patients are within "
        f"{detail[a]['threshold']:.1f})"
        for a in unlike
    )
    text = (
        f"No patient treated with {arms} in the cohort had this combination of values: the "
        f"{support.k} most similar ones are far from it (average distance {far}, on "
        f"standardized covariates); it differs most in {', '.join(apart)}. The numbers below "
        "are extrapolated from other patients, not learned from patients like this."
    )
    return [text], detail
