"""Up-front checks of array inputs (covariates, treatment, outcomes) shared by the design layer
and every estimator: fail early and name the problem.

It sits at the package top so design (upstream) and estimators (downstream) both use it without
the design layer importing the estimators package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats


def check_covariates(X, *, allow_nan: bool = False) -> tuple[np.ndarray, list[str]]:
    """Return X as a float array and its feature names; reject empty input and (unless allowed) NaN."""
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns.tolist()]  # one conversion (arrow-backed names)
        # by dtype, not column by column: a column lookup per feature cost ~2 ms per call
        non_numeric = [c for c, dt in X.dtypes.items() if not pd.api.types.is_numeric_dtype(dt)]
        if non_numeric:
            raise ValueError(
                f"X columns {non_numeric} are not numeric; encode them first "
                "(hte.design builds the numeric design matrix)"
            )
        arr = X.to_numpy(dtype=float)
    else:
        arr = np.asarray(X, dtype=float)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        names = [f"x{j}" for j in range(arr.shape[1])]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-d array; got shape {arr.shape}")
    if not allow_nan and np.isnan(arr).any():
        rows, cols = np.where(np.isnan(arr))
        bad = sorted({names[c] for c in cols})
        raise ValueError(
            f"X has missing values in columns {bad} (e.g. rows {sorted(set(rows.tolist()))[:5]}); "
            "this estimator cannot take NaN: impute or drop these columns first"
        )
    return arr, names


def check_treatment(treatment, n: int) -> np.ndarray:
    """Treatment as a 0/1 int array (1 = CAR-T) with both arms present."""
    w = np.asarray(treatment)
    if w.shape != (n,):
        raise ValueError(f"treatment must have shape ({n},); got {w.shape}")
    if not np.isin(w, (0, 1)).all():
        bad = np.flatnonzero(~np.isin(w, (0, 1)))[:5].tolist()
        raise ValueError(f"treatment must be 0 (teclistamab) or 1 (CAR-T); bad rows {bad}")
    w = w.astype(int)
    counts = np.bincount(w, minlength=2)
    if counts.min() == 0:
        arm = "CAR-T (1)" if counts[1] == 0 else "teclistamab (0)"
        raise ValueError(f"only one arm present: no patients on {arm}; an effect needs both arms")
    return w


def check_survival_outcome(time, event, n: int, horizon: float | None = None):
    """Follow-up times > 0 and 0/1 events, with at least one event; horizon within follow-up."""
    t = np.asarray(time, dtype=float)
    d = np.asarray(event)
    if t.shape != (n,) or d.shape != (n,):
        raise ValueError(f"time and event must have shape ({n},); got {t.shape} and {d.shape}")
    if np.isnan(t).any():
        raise ValueError(
            f"time has missing values in rows {np.flatnonzero(np.isnan(t))[:5].tolist()}"
        )
    if (t <= 0).any():
        raise ValueError(
            f"time must be > 0; rows {np.flatnonzero(t <= 0)[:5].tolist()} have time <= 0 "
            "(for follow-up of 0, apply hte.data.day_zero's rule first; a config run does)"
        )
    if not np.isin(d, (0, 1, True, False)).all():
        raise ValueError("event must be 0/1 (1 = death observed)")
    d = d.astype(bool)
    if not d.any():
        raise ValueError(
            "no events: every patient is censored, so survival effects are not identified"
        )
    if horizon is not None:
        if horizon <= 0:
            raise ValueError(f"horizon must be > 0; got {horizon}")
        if horizon > t.max():
            raise ValueError(
                f"horizon {horizon} is beyond the longest follow-up ({t.max():.2f}); "
                "choose a horizon within follow-up"
            )
    return t, d


def check_binary_outcome(y, n: int, name: str = "outcome") -> np.ndarray:
    """A 0/1 outcome with both values present."""
    arr = np.asarray(y)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {arr.shape}")
    if pd.isna(arr).any():
        raise ValueError(
            f"{name} has missing values in rows {np.flatnonzero(pd.isna(arr))[:5].tolist()}"
        )
    if not np.isin(arr, (0, 1, True, False)).all():
        raise ValueError(f"{name} must be 0/1")
    arr = arr.astype(int)
    if arr.min() == arr.max():
        raise ValueError(f"{name} takes a single value ({arr[0]}); a risk difference needs both")
    return arr


def check_new_covariates(
    estimator, X, *, fitted_attribute: str, allow_nan: bool = False
) -> np.ndarray:
    """Covariates for predicting with a fitted estimator: fitted, and as many columns as in fit."""
    name = type(estimator).__name__
    if not hasattr(estimator, fitted_attribute):
        raise RuntimeError(f"{name} is not fitted; call fit first")
    arr, names = check_covariates(X, allow_nan=allow_nan)
    expected = estimator.n_features_in_
    if arr.shape[1] != expected:
        raise ValueError(f"X has {arr.shape[1]} columns; {name} was fitted with {expected}")
    if isinstance(X, pd.DataFrame):
        check_feature_names(names, getattr(estimator, "feature_names_in_", None), name)
    return arr


def check_feature_names(names, fitted, estimator_name: str) -> None:
    """A frame's columns must be the fitted feature names, in order (a model fitted on a plain
    array, with names x0, x1, ..., accepts any names)."""
    if fitted is None:
        return
    fitted = [str(c) for c in fitted]
    if fitted == [f"x{j}" for j in range(len(fitted))] or list(names) == fitted:
        return
    missing = [c for c in fitted if c not in names]
    extra = [c for c in names if c not in fitted]
    detail = (
        f"missing {missing[:5]}, unexpected {extra[:5]}"
        if missing or extra
        else "same columns in another order"
    )
    raise ValueError(
        f"X columns differ from the features {estimator_name} was fitted with ({detail}); "
        "pass the columns of the fitted design matrix, in its order"
    )


def check_weights(weights, n: int, name: str = "weights") -> np.ndarray:
    """Weights as a float array of shape (n,), finite and >= 0; None gives ones."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {w.shape}")
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        raise ValueError(
            f"{name} must be finite and >= 0; rows {np.flatnonzero(bad)[:5].tolist()} are not"
        )
    return w


def interval_z(alpha: float) -> float:
    """The normal quantile of a two-sided (1 - alpha) interval; alpha must be in (0, 1)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    return float(stats.norm.ppf(1 - alpha / 2))


def feature_names_match(names, estimator) -> bool:
    """Whether a frame with these columns passes ``estimator``'s name check at predict time
    (``check_feature_names``): then the same rows as an array give the same numbers."""
    try:
        check_feature_names(names, getattr(estimator, "feature_names_in_", None), "")
    except ValueError:
        return False
    return True
