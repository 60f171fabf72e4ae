"""The covariate fields of a patient profile: clinical labels, kinds, units, observed ranges,
defaults (cohort median / mode), validation of an entered profile, example profiles built from
cohort subgroups, and a profile's design row (``encode_row``). Labels and units come from the
column schema (``hte.data.columns.COVARIATE_LABELS``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from hte.data.columns import CONTINUOUS_COVARIATES, INTEGER_COVARIATES, covariate_label
from hte.data.schema import SPECS
from hte.errors import HteError

KINDS = ("number", "integer", "boolean", "category")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
MIN_SUBGROUP = 10  # patients an example profile's subgroup needs before its medians are used


class ProfileError(HteError, ValueError):
    """A profile the models cannot score, or a run without what the explorer needs: ``field``
    names the field (or "run" / "analysis" / "target"), ``message`` the rule it broke."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class ProfileField:
    """One covariate as the app shows it.

    ``minimum``/``maximum``: observed in the analysed cohort (values outside are accepted but
    flagged); ``p01``/``p99``: its 1st and 99th percentiles (slider ends that ignore outliers);
    ``hard_minimum``/``hard_maximum``: the schema's limits (values outside are errors).
    """

    name: str
    label: str
    kind: str  # "number" | "integer" | "boolean" | "category"
    unit: str | None
    default: object
    minimum: float | None = None
    maximum: float | None = None
    p01: float | None = None
    p99: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()
    hard_minimum: float | None = None
    hard_maximum: float | None = None
    # the run's design has a missing-value path for it (median / reference fill plus a 0/1
    # indicator, learned from patients without the value): "unknown" is a valid entry
    missing_allowed: bool = False

    def to_json(self) -> dict:
        out = asdict(self)
        out["choices"] = list(self.choices)
        return out

    def describe(self, value: object) -> str:
        """The value in words, e.g. "Age = 72 years", "Extramedullary disease: yes"."""
        if _missing(value):
            return f"{self.label}: unknown"
        if self.kind == "boolean":
            return f"{self.label}: {'yes' if value else 'no'}"
        if self.kind == "number":
            text = f"{float(value):.{_decimals(self.step)}f}"
        else:
            text = str(value)
        return f"{self.label} = {text}{' ' + self.unit if self.unit else ''}"


def _decimals(step: float | None) -> int:
    if not step or step >= 1:
        return 0
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _nice_step(lo: float, hi: float) -> float:
    span = hi - lo
    if not span > 0:
        return 1.0
    return float(10.0 ** math.floor(math.log10(span / 50.0)))


def _mode(values: pd.Series) -> object:
    counts = values.dropna().map(str if values.dtype == object else (lambda v: v)).value_counts()
    top = counts.max()
    return sorted(counts.index[counts == top], key=str)[0]


def _is_integral(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(np.all(finite == np.round(finite)))


def build_fields(cohort: pd.DataFrame, encoder) -> list[ProfileField]:
    """One field per covariate the encoding uses, in its order."""
    fields = []
    for enc in encoder.encodings_:
        s = cohort[enc.name]
        label, unit = covariate_label(enc.name)
        spec = SPECS.get(enc.name)
        hard = (spec.minimum, spec.maximum) if spec is not None else (None, None)
        f = _field(enc, s, label, unit, hard)
        fields.append(replace(f, missing_allowed=bool(enc.indicator)))
    return fields


def _field(enc, s: pd.Series, label, unit, hard) -> ProfileField:
    if enc.kind == "categorical":
        choices = tuple(sorted(enc.levels))
        default = str(_mode(s.map(lambda v: v if pd.isna(v) else str(v))))
        return ProfileField(enc.name, label, "category", unit, default, choices=choices)
    if enc.kind == "boolean":
        default = bool(s.dropna().astype(bool).mean() >= 0.5)
        return ProfileField(enc.name, label, "boolean", unit, default)
    return _numeric_field(enc.name, s, label, unit, hard)


def _numeric_field(name, s: pd.Series, label, unit, hard) -> ProfileField:
    values = pd.to_numeric(s).to_numpy(dtype=float, na_value=np.nan)
    # named continuous measurements stay numbers even when a cohort records them as whole values
    integer = name in INTEGER_COVARIATES or (
        name not in CONTINUOUS_COVARIATES and _is_integral(values)
    )
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    p01, p99 = (float(v) for v in np.nanpercentile(values, [1, 99]))
    median = float(np.nanmedian(values))
    if integer:
        return ProfileField(
            name,
            label,
            "integer",
            unit,
            round(median),
            lo,
            hi,
            p01,
            p99,
            1.0,
            hard_minimum=hard[0],
            hard_maximum=hard[1],
        )
    step = _nice_step(p01, p99)
    default = round(median, _decimals(step))
    return ProfileField(
        name,
        label,
        "number",
        unit,
        default,
        lo,
        hi,
        p01,
        p99,
        step,
        hard_minimum=hard[0],
        hard_maximum=hard[1],
    )


# --------------------------------------------------------------------------------------------------
# Validation


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float | np.floating) and math.isnan(float(value))


def _number(field: ProfileField, value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise ProfileError(field.name, f"must be a number; got {type(value).__name__} {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ProfileError(field.name, f"must be a finite number; got {value!r}")
    return x


def coerce_value(field: ProfileField, value: object) -> object:
    """The value as the cohort stores it (bool, str, int or float), or ``ProfileError`` naming the
    field and the rule."""
    if _missing(value) or (isinstance(value, str) and value.strip().lower() == "unknown"):
        if getattr(field, "missing_allowed", False):
            return None  # the design's missing-value path (fill plus indicator)
        raise ProfileError(
            field.name,
            "is unknown (empty); every patient in this run's cohort had it recorded, so the "
            "models have no way to use an unknown value: enter a value",
        )
    if field.kind == "boolean":
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | np.integer) and int(value) in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ProfileError(field.name, f"must be true or false; got {value!r}")
    if field.kind == "category":
        text = str(value) if isinstance(value, str | np.str_) else None
        if text not in field.choices:
            raise ProfileError(
                field.name,
                f"unknown category {value!r}; choose one of {', '.join(field.choices)}",
            )
        return text
    x = _number(field, value)
    if field.kind == "integer" and x != round(x):
        raise ProfileError(field.name, f"must be a whole number; got {value!r}")
    lo, hi = field.hard_minimum, field.hard_maximum
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        rule = SPECS[field.name].range_rule() if field.name in SPECS else f"{lo}-{hi}"
        raise ProfileError(field.name, f"{rule} (the cohort schema); got {value!r}")
    return round(x) if field.kind == "integer" else x


def coerce_profile(
    fields: list[ProfileField], defaults: Mapping[str, object], profile: Mapping[str, object]
) -> tuple[dict, list[str]]:
    """The profile's values as the cohort stores them (fields it leaves out take the cohort
    default) and the names of the defaulted fields; ``ProfileError`` on an unknown field or a bad
    value."""
    if not isinstance(profile, Mapping):
        raise ProfileError("profile", f"must be a mapping of field -> value; got {type(profile)}")
    by_name = {f.name: f for f in fields}
    for key in profile:
        if key not in by_name:
            raise ProfileError(str(key), f"unknown field; the models use {', '.join(by_name)}")
    row, defaulted = {}, []
    for f in fields:
        if f.name in profile:
            row[f.name] = coerce_value(f, profile[f.name])
        else:
            row[f.name] = defaults[f.name]
            defaulted.append(f.name)
    return row, defaulted


def profile_frame(fields: list[ProfileField], row: Mapping[str, object]) -> pd.DataFrame:
    """A coerced profile as a one-row cohort frame (categories as text)."""
    frame = pd.DataFrame({f.name: [row[f.name]] for f in fields})
    for f in fields:
        if f.kind == "category":
            frame[f.name] = frame[f.name].astype(object)
    return frame


def validate_profile(
    fields: list[ProfileField], defaults: Mapping[str, object], profile: Mapping[str, object]
) -> tuple[pd.DataFrame, list[str]]:
    """``coerce_profile`` as a one-row cohort frame."""
    row, defaulted = coerce_profile(fields, defaults, profile)
    return profile_frame(fields, row), defaulted


def out_of_range(fields: list[ProfileField], row: Mapping[str, object]) -> list[str]:
    """Plain-language flags for numeric values outside the cohort's observed range."""
    flags = []
    for f in fields:
        if f.kind not in ("number", "integer") or _missing(row[f.name]):
            continue
        x = float(row[f.name])
        if x < f.minimum or x > f.maximum:
            flags.append(
                f"{f.describe(x)} is outside the range seen in the cohort "
                f"({f.describe(f.minimum).split(' = ')[1]} to "
                f"{f.describe(f.maximum).split(' = ')[1]}): the models extrapolate"
            )
    return flags


# --------------------------------------------------------------------------------------------------
# Example profiles


def typical_profile(fields: list[ProfileField], rows: pd.DataFrame) -> dict:
    """Median (numbers, rounded to the field's step), rounded median (integers) or mode of each
    field over ``rows``."""
    out: dict[str, object] = {}
    for f in fields:
        s = rows[f.name]
        if f.kind == "category":
            out[f.name] = str(_mode(s.map(lambda v: v if pd.isna(v) else str(v))))
        elif f.kind == "boolean":
            out[f.name] = bool(s.dropna().astype(bool).mean() >= 0.5)
        else:
            median = float(np.nanmedian(pd.to_numeric(s).to_numpy(float, na_value=np.nan)))
            out[f.name] = round(median) if f.kind == "integer" else round(median, _decimals(f.step))
    return out


def example_profiles(fields: list[ProfileField], cohort: pd.DataFrame) -> dict[str, dict]:
    """A few profiles from cohort subgroups (their medians / modes, so inside the support): the
    typical patient; an older patient with extramedullary disease; a frail ECOG 2 patient."""
    names = {f.name for f in fields}
    examples = {"Typical patient (cohort medians)": typical_profile(fields, cohort)}
    if {"age", "extramedullary"} <= names:
        emd = cohort["extramedullary"].fillna(False).astype(bool)
        older = cohort["age"] >= cohort["age"].quantile(0.75)
        rows = cohort[emd & older] if (emd & older).sum() >= MIN_SUBGROUP else cohort[emd]
        if len(rows) >= MIN_SUBGROUP:
            profile = typical_profile(fields, rows)
            profile["extramedullary"] = True
            profile["age"] = max(profile["age"], round(float(cohort["age"].quantile(0.75)), 1))
            examples["Older patient with extramedullary disease"] = profile
    if "ecog" in names:
        ecog = pd.to_numeric(cohort["ecog"])
        rows = cohort[ecog == 2] if (ecog == 2).sum() >= MIN_SUBGROUP else cohort[ecog >= 2]
        if len(rows) >= MIN_SUBGROUP:
            profile = typical_profile(fields, rows)
            profile["ecog"] = 2
            examples["Frail patient (ECOG 2)"] = profile
    return examples


# --------------------------------------------------------------------------------------------------
# Encoding and sweeps


def encode_row(encoder, row: Mapping[str, object]) -> np.ndarray:
    """(1, p) design row of one complete profile, as ``DesignEncoder.transform`` encodes it
    (numbers and yes/no as floats, categories one-hot without the reference level; an unknown
    value (None) as the encoder's fill with its missingness indicator 1), without building
    DataFrames: a query spends microseconds here, not ~20 ms."""
    values: list[float] = []
    indicator_at: dict[str, int] = {}
    for enc in encoder.encodings_:
        v = row[enc.name]
        unknown = v is None  # only where the encoding has a missing-value path (checked before)
        if enc.kind == "categorical":
            values.extend(0.0 if unknown else float(str(v) == level) for level in enc.levels[1:])
        else:
            values.append(float(enc.fill_value) if unknown else float(v))
        if enc.indicator:  # columns missing together at fit share one indicator
            if enc.indicator not in indicator_at:
                indicator_at[enc.indicator] = len(values)
                values.append(0.0)
            if unknown:
                values[indicator_at[enc.indicator]] = 1.0
    return np.asarray([values], dtype=float)


def sweep_values(f: ProfileField, n_points: int) -> list:
    """The values ``what_moves_it`` tries for one field (see ``ProfileExplorer.what_moves_it``)."""
    if f.kind == "boolean":
        return [False, True]
    if f.kind == "category":
        return list(f.choices)
    if f.kind == "integer":
        lo, hi = int(np.rint(f.minimum)), int(np.rint(f.maximum))
        if hi - lo + 1 <= n_points:
            return list(range(lo, hi + 1))
        return sorted({int(np.rint(v)) for v in np.linspace(lo, hi, n_points)})
    # continuous: the cohort's 1st-99th percentiles, so a skewed field (ferritin 25-7,000) is not
    # squashed by its outliers; the observed extremes are still reachable through the form
    lo = f.p01 if f.p01 is not None else f.minimum
    hi = f.p99 if f.p99 is not None else f.maximum
    if not hi > lo:
        lo, hi = f.minimum, f.maximum
    return [float(v) for v in np.linspace(lo, hi, n_points)]
