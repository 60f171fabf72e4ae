"""``EffectData``: one analysis's roles declared once (covariates with names, treatment, survival
outcome, CRS and grade, weights), the object every estimator's ``fit`` takes.

Why: before it, each caller unpacked the cohort into arrays for each estimator, target and
nuisance model, and the column meaning lived in each call. One object per analysis is checked
once (shapes, 0/1 treatment with both arms, positive follow-up, 0/1 event) and subset
consistently (held-out folds keep ``row_ids``, the rows of the analysis they came from, so
leakage can be checked by row).

It sits in the design layer (upstream of the estimators) and imports nothing downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hte.array_checks import check_binary_outcome, check_covariates, check_treatment


def _optional(values, n: int, name: str, dtype=None) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values) if dtype is None else np.asarray(values, dtype=dtype)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one per row of X); got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)  # eq=False: array fields
class EffectData:
    """Covariates, treatment and outcomes of one analysis (build it with ``from_arrays``).

    ``X`` (n, p) float with ``feature_names``; ``treatment`` 0/1 (1 = CAR-T); ``time`` (months,
    > 0) and ``event`` (1 = death) for OS; ``crs`` (0/1) and ``crs_grade`` (0-5, NaN when not
    recorded) for CRS; ``weights`` (>= 0) when the analysis is weighted; ``row_ids``: each row's
    index in the analysis it was taken from (``subset`` keeps them).
    """

    X: np.ndarray
    feature_names: tuple[str, ...]
    treatment: np.ndarray
    time: np.ndarray | None = None
    event: np.ndarray | None = None
    crs: np.ndarray | None = None
    crs_grade: np.ndarray | None = None
    weights: np.ndarray | None = None
    row_ids: np.ndarray = field(default=None)  # type: ignore[assignment]

    @classmethod
    def from_arrays(
        cls,
        X,
        treatment,
        *,
        time=None,
        event=None,
        crs=None,
        crs_grade=None,
        weights=None,
        allow_nan: bool = False,
    ) -> EffectData:
        """Check and hold the roles. ``X``: DataFrame (its columns name the features) or array
        (features named x0, x1, ...). ``time`` and ``event`` come together."""
        arr, names = check_covariates(X, allow_nan=allow_nan)
        n = arr.shape[0]
        w = check_treatment(treatment, n)
        if (time is None) != (event is None):
            raise ValueError("time and event must be given together (the survival outcome)")
        t = _optional(time, n, "time", float)
        d = None
        if t is not None:
            bad = ~np.isfinite(t) | (t <= 0)
            if bad.any():
                raise ValueError(
                    f"time must be finite and > 0 months; rows {np.flatnonzero(bad)[:5].tolist()}"
                )
            d = _optional(event, n, "event")
            if not np.isin(d, (0, 1, True, False)).all():
                rows = np.flatnonzero(~np.isin(d, (0, 1, True, False)))[:5].tolist()
                raise ValueError(f"event must be 0/1 (1 = death); bad rows {rows}")
            d = d.astype(bool)
        c = None if crs is None else check_binary_outcome(crs, n, name="crs")
        grade = _optional(crs_grade, n, "crs_grade", object)
        sw = _optional(weights, n, "weights", float)
        if sw is not None and (~np.isfinite(sw) | (sw < 0)).any():
            raise ValueError("weights must be finite and >= 0")
        return cls(arr, tuple(names), w, t, d, c, grade, sw, np.arange(n))

    def __post_init__(self) -> None:
        if self.row_ids is None:
            object.__setattr__(self, "row_ids", np.arange(self.X.shape[0]))

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def has_survival(self) -> bool:
        return self.time is not None

    def frame(self) -> pd.DataFrame:
        """X as a DataFrame with the feature names (what ``predict`` checks names against)."""
        return pd.DataFrame(self.X, columns=list(self.feature_names))

    def survival(self) -> tuple[np.ndarray, np.ndarray]:
        """(time, event); an error naming the missing role when the analysis has no OS."""
        if self.time is None:
            raise ValueError("this EffectData has no survival outcome (time, event)")
        return self.time, self.event

    def subset(self, rows) -> EffectData:
        """The rows ``rows`` (indices or a boolean mask), with their original ``row_ids``."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)

        def take(a):
            return None if a is None else a[idx]

        return EffectData(
            self.X[idx],
            self.feature_names,
            self.treatment[idx],
            take(self.time),
            take(self.event),
            take(self.crs),
            take(self.crs_grade),
            take(self.weights),
            self.row_ids[idx],
        )


def unpack_survival_fit(X, time, event, treatment, weights=None):
    """``(X, time, event, treatment, weights)`` of a survival estimator's ``fit``: from an
    ``EffectData`` in place of X (the other arguments then must be None), or as given."""
    if not isinstance(X, EffectData):
        if time is None or event is None or treatment is None:
            raise ValueError("fit needs time, event and treatment (or an EffectData as X)")
        return X, time, event, treatment, weights
    if any(v is not None for v in (time, event, treatment, weights)):
        raise ValueError("give either an EffectData or the arrays, not both")
    t, d = X.survival()
    return X.frame(), t, d, X.treatment, X.weights


def unpack_crs_fit(X, crs, treatment, crs_grade, weights=None):
    """``(X, crs, treatment, crs_grade, weights)`` of a CRS estimator's ``fit`` (as above)."""
    if not isinstance(X, EffectData):
        return X, crs, treatment, crs_grade, weights
    if any(v is not None for v in (crs, treatment, crs_grade, weights)):
        raise ValueError("give either an EffectData or the arrays, not both")
    if X.crs is None:
        raise ValueError("this EffectData has no crs column (any-grade CRS, 0/1)")
    return X.frame(), X.crs, X.treatment, X.crs_grade, X.weights
