"""From a validated cohort to the numeric design matrix estimators take, with a reusable encoding.

The encoding is learned once (``DesignEncoder.fit``) and applied unchanged to new patients
(``transform``), so a model fitted on the cohort can score a profile entered in the app.

- Covariates: ``hte.data.columns.covariate_columns`` (never outcomes, infusion_day, treatment, id or
  true_*).
- Booleans -> 0/1. Categorical (sex, race, any text/category column) -> one-hot without the
  reference level (the first level in sorted order unless ``reference_levels`` says otherwise).
  Numbers stay numbers.
- Missing values stay NaN and are reported (``missing_columns``); estimators that cannot take NaN
  refuse. ``impute="median"`` instead fills each column that had missing values at fit with its
  fit-time median (categorical: all dummies 0) and adds a ``<column>_missing`` 0/1 indicator.
  Nothing is imputed silently.
- Columns that were missing for exactly the same patients at fit (two FISH results from one test,
  say) share one indicator, named after the first of them: identical indicator columns would make
  a Cox fit singular and split SHAP credit for one fact. For a new patient the shared indicator is
  1 when any column of its group is missing (``shared_indicators_`` lists the groups).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from hte.data.columns import CART, TEC, TREATMENT, covariate_columns

IMPUTE_OPTIONS = (None, "median")
MISSING_SUFFIX = "_missing"
MAX_ROWS_SHOWN = 5


@dataclass(frozen=True)
class ColumnEncoding:
    """How one cohort column becomes design-matrix columns."""

    name: str
    kind: Literal["numeric", "boolean", "categorical"]
    outputs: tuple[str, ...]  # design-matrix columns for the values (not the indicator)
    levels: tuple[str, ...] = ()  # categorical: every level seen at fit, reference first
    fill_value: float | None = None  # impute="median": fit-time median (numeric/boolean)
    indicator: str | None = None  # impute="median": name of the missingness indicator


def _rows(mask) -> list[int]:
    """Up to 5 example rows, 1-based data rows as in hte.data's validation messages."""
    return (np.flatnonzero(np.asarray(mask, dtype=bool))[:MAX_ROWS_SHOWN] + 1).tolist()


def _is_boolean(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s):
        return True
    if s.dtype == object:
        values = s.dropna()
        return len(values) > 0 and all(isinstance(v, bool | np.bool_) for v in values)
    return False


def _is_categorical(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(s)
        or s.dtype == object
    ) and not _is_boolean(s)


def _kind(s: pd.Series) -> str:
    if _is_boolean(s):
        return "boolean"
    if _is_categorical(s):
        return "categorical"
    if pd.api.types.is_numeric_dtype(s):
        return "numeric"
    raise ValueError(f"covariate {s.name!r} has dtype {s.dtype}, which hte cannot encode")


def _as_float(s: pd.Series, name: str) -> np.ndarray:
    """Numeric or boolean column as float with NaN for missing."""
    if _is_boolean(s):
        return s.map(lambda v: np.nan if pd.isna(v) else float(bool(v))).to_numpy(dtype=float)
    try:
        return pd.to_numeric(s).astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise ValueError(f"covariate {name!r} must be numeric: {err}") from err


def _levels(s: pd.Series) -> list[str]:
    return sorted({str(v) for v in s.dropna()})


class DesignEncoder:
    """Learns the covariate encoding on one cohort; applies it to any cohort with those columns."""

    def __init__(
        self,
        covariates: list[str] | None = None,
        impute: str | None = None,
        reference_levels: dict[str, str] | None = None,
    ):
        self.covariates = covariates
        self.impute = impute
        self.reference_levels = reference_levels

    # -- fit
    def _select(self, cohort: pd.DataFrame) -> list[str]:
        allowed = covariate_columns([str(c) for c in cohort.columns])
        if self.covariates is None:
            if not allowed:
                raise ValueError("the cohort has no covariate columns")
            return allowed
        absent = [c for c in self.covariates if c not in cohort.columns]
        if absent:
            raise ValueError(f"covariates {absent} are not columns of the cohort")
        forbidden = [c for c in self.covariates if c not in allowed]
        if forbidden:
            raise ValueError(
                f"{forbidden} cannot be covariates: ids, treatment, outcomes, infusion_day and "
                "true_* columns are never used to adjust"
            )
        if len(set(self.covariates)) != len(self.covariates):
            raise ValueError(f"covariates listed more than once: {self.covariates}")
        return list(self.covariates)

    def _encode_spec(self, s: pd.Series, name: str) -> ColumnEncoding:
        kind = _kind(s)
        missing = bool(s.isna().any())
        indicator = f"{name}{MISSING_SUFFIX}" if (self.impute and missing) else None
        if kind == "categorical":
            levels = _levels(s)
            if not levels:
                raise ValueError(f"categorical covariate {name!r} has no non-missing values")
            ref = (self.reference_levels or {}).get(name, levels[0])
            if ref not in levels:
                raise ValueError(
                    f"reference level {ref!r} for {name!r} is not among its levels {levels}"
                )
            ordered = (ref, *[lv for lv in levels if lv != ref])
            outputs = tuple(f"{name}_{lv}" for lv in ordered[1:])
            return ColumnEncoding(name, "categorical", outputs, ordered, None, indicator)
        fill = None
        if indicator:
            values = _as_float(s, name)
            if np.isnan(values).all():
                raise ValueError(f"covariate {name!r} is missing for every patient; drop it")
            fill = float(np.nanmedian(values))
        return ColumnEncoding(name, kind, (name,), (), fill, indicator)

    def fit(self, cohort: pd.DataFrame) -> DesignEncoder:
        if not isinstance(cohort, pd.DataFrame):
            raise TypeError("cohort must be a pandas DataFrame")
        if self.impute not in IMPUTE_OPTIONS:
            raise ValueError(f"impute must be one of {IMPUTE_OPTIONS}; got {self.impute!r}")
        columns = self._select(cohort)
        encodings = [self._encode_spec(cohort[c], c) for c in columns]
        self.encodings_, self.shared_indicators_ = _share_identical_indicators(encodings, cohort)
        self.covariates_ = columns
        self.missing_columns_ = [c for c in columns if cohort[c].isna().any()]
        names, indicators = [], set()
        for enc in self.encodings_:
            names.extend(enc.outputs)
            if enc.indicator and enc.indicator not in indicators:
                indicators.add(enc.indicator)
                names.append(enc.indicator)
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise ValueError(f"encoded column names collide: {clash}; rename the source columns")
        self.feature_names_ = names
        return self

    # -- transform
    def _transform_column(self, s: pd.Series, enc: ColumnEncoding) -> dict[str, np.ndarray]:
        missing = s.isna().to_numpy()
        if missing.any() and self.impute and enc.indicator is None:
            raise ValueError(
                f"covariate {enc.name!r} has missing values in rows {_rows(missing)} but had none "
                "when the encoding was fitted, so no imputation was learned for it"
            )
        out: dict[str, np.ndarray] = {}
        if enc.kind == "categorical":
            text = s.map(lambda v: v if pd.isna(v) else str(v))
            unseen = ~missing & ~text.isin(enc.levels).to_numpy()
            if unseen.any():
                values = sorted(set(text[unseen]))
                raise ValueError(
                    f"covariate {enc.name!r} has level(s) {values} in rows {_rows(unseen)} that "
                    f"were not seen when the encoding was fitted (known levels: {list(enc.levels)})"
                )
            fill = 0.0 if enc.indicator else np.nan
            for level, col in zip(enc.levels[1:], enc.outputs, strict=True):
                out[col] = np.where(missing, fill, (text == level).to_numpy(dtype=float))
        else:
            values = _as_float(s, enc.name)
            if enc.indicator:
                values = np.where(missing, enc.fill_value, values)
            out[enc.name] = values
        if enc.indicator:
            out[enc.indicator] = missing.astype(float)
        return out

    def transform(self, cohort: pd.DataFrame) -> pd.DataFrame:
        """The design matrix (float DataFrame, columns ``feature_names_``) of any cohort."""
        if not hasattr(self, "encodings_"):
            raise RuntimeError("DesignEncoder is not fitted; call fit(cohort) first")
        absent = [c for c in self.covariates_ if c not in cohort.columns]
        if absent:
            raise ValueError(f"the cohort lacks covariates the encoding needs: {absent}")
        data: dict[str, np.ndarray] = {}
        for enc in self.encodings_:
            for name, values in self._transform_column(cohort[enc.name], enc).items():
                shared = name == enc.indicator and name in data
                data[name] = np.maximum(data[name], values) if shared else values
        return pd.DataFrame(data, index=cohort.index, columns=self.feature_names_, dtype=float)

    def fit_transform(self, cohort: pd.DataFrame) -> pd.DataFrame:
        return self.fit(cohort).transform(cohort)


def _share_identical_indicators(
    encodings: list[ColumnEncoding], cohort: pd.DataFrame
) -> tuple[list[ColumnEncoding], dict[str, tuple[str, ...]]]:
    """Point columns missing for exactly the same rows at one indicator (the first column's).

    Returns the encodings (later group members re-pointed) and ``{indicator: (columns...)}`` for
    every indicator that stands for more than one column.
    """
    first_by_pattern: dict[bytes, ColumnEncoding] = {}
    groups: dict[str, list[str]] = {}
    out = []
    for enc in encodings:
        if enc.indicator is None:
            out.append(enc)
            continue
        pattern = np.packbits(cohort[enc.name].isna().to_numpy()).tobytes()
        first = first_by_pattern.setdefault(pattern, enc)
        if first is not enc:
            enc = ColumnEncoding(
                enc.name, enc.kind, enc.outputs, enc.levels, enc.fill_value, first.indicator
            )
        groups.setdefault(str(enc.indicator), []).append(enc.name)
        out.append(enc)
    shared = {ind: tuple(cols) for ind, cols in groups.items() if len(cols) > 1}
    return out, shared


@dataclass(frozen=True)
class DesignMatrix:
    """The numeric covariates of a cohort and the encoding that produced them."""

    X: pd.DataFrame  # float; NaN kept unless impute="median"
    feature_names: list[str]
    encoder: DesignEncoder
    missing_columns: list[str]  # cohort covariates that had missing values
    imputed: dict[str, float]  # impute="median": column -> fill value (categorical: NaN)

    def transform(self, new_cohort: pd.DataFrame) -> pd.DataFrame:
        """Apply the same encoding to new patients."""
        return self.encoder.transform(new_cohort)

    @property
    def has_missing(self) -> bool:
        return bool(self.X.isna().to_numpy().any())

    def describe_missing(self) -> str:
        """One line for logs and reports on what was missing and what was done about it."""
        if not self.missing_columns:
            return "no missing covariate values"
        action = (
            "imputed with the median (categorical: reference dummies) plus a _missing indicator"
            if self.imputed
            else "kept as NaN (estimators that cannot take NaN will refuse; use impute='median')"
        )
        shared = getattr(self.encoder, "shared_indicators_", {})
        joint = "".join(
            f"; {ind} stands for {', '.join(cols)} (missing for the same patients)"
            for ind, cols in shared.items()
        )
        return f"missing values in {self.missing_columns}: {action}{joint}"


def build_design_matrix(
    cohort: pd.DataFrame,
    covariates: list[str] | None = None,
    *,
    impute: str | None = None,
    reference_levels: dict[str, str] | None = None,
) -> DesignMatrix:
    """Encode the cohort's covariates (all usable columns unless ``covariates`` names them)."""
    encoder = DesignEncoder(covariates, impute=impute, reference_levels=reference_levels)
    X = encoder.fit_transform(cohort)
    imputed = {
        enc.name: (np.nan if enc.fill_value is None else enc.fill_value)
        for enc in encoder.encodings_
        if enc.indicator
    }
    return DesignMatrix(
        X=X,
        feature_names=list(encoder.feature_names_),
        encoder=encoder,
        missing_columns=list(encoder.missing_columns_),
        imputed=imputed,
    )


def treatment_array(cohort: pd.DataFrame) -> np.ndarray:
    """The treatment column as 0/1 ints: "cart" -> 1, "tec" -> 0."""
    if TREATMENT not in cohort.columns:
        raise ValueError(f"the cohort has no {TREATMENT!r} column")
    codes = cohort[TREATMENT]
    bad = (~codes.isin([CART, TEC])).to_numpy()
    if bad.any():
        values = sorted({str(v) for v in codes[bad]})
        raise ValueError(
            f"{TREATMENT} must be {CART!r} or {TEC!r}; rows {_rows(bad)} have {values}"
        )
    return (codes == CART).to_numpy().astype(int)
