"""Coercion of a cohort's known columns to their canonical dtypes (text booleans, numeric text,
treatment codes); values that cannot be read are type problems, with a hint when a column map
would read them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hte.data.column_rules import (
    decimal_comma_hint,
    looks_decimal_comma,
    quoted_examples,
    recode_hint,
)
from hte.data.column_spec import ColumnSpec

_TRUE_TEXT = frozenset({"true", "yes", "1", "1.0"})
_FALSE_TEXT = frozenset({"false", "no", "0", "0.0"})


def _is_missing(s: pd.Series) -> pd.Series:
    missing = s.isna()
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        missing |= s.astype("string").str.strip().eq("").fillna(False).astype(bool)
    return missing


def _to_text(s: pd.Series) -> pd.Series:
    """Text with integral floats written without ".0" (ids read back as 1.0 when a value is missing)."""

    def one(v: object) -> str:
        if isinstance(v, float | np.floating) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    missing = _is_missing(s)
    out = pd.Series(pd.NA, index=s.index, dtype="str")
    out[~missing] = s[~missing].map(one).astype("str")
    return out


def _to_float(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    missing = _is_missing(s)
    if pd.api.types.is_bool_dtype(s):
        num = s.astype(float)
    else:
        num = pd.to_numeric(s.where(~missing), errors="coerce").astype(float)
    bad = ~missing & ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan))
    return num.where(~bad), bad


def _to_int(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    num, bad = _to_float(s)
    fractional = num.notna() & (num.round() != num)
    bad = bad | fractional
    return num.where(~bad).astype("Int64"), bad


def _bool_value(v: object) -> object:
    """True/False, or None when the value is not a readable boolean."""
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float | np.integer | np.floating):
        return {1.0: True, 0.0: False}.get(float(v))
    text = str(v).strip().casefold()
    return True if text in _TRUE_TEXT else False if text in _FALSE_TEXT else None


def _to_bool(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    missing = _is_missing(s)
    if pd.api.types.is_bool_dtype(s) and not missing.any():
        return s.astype(bool), pd.Series(False, index=s.index)
    lookup = {v: _bool_value(v) for v in pd.unique(s[~missing])}
    parsed = pd.Series(None, index=s.index, dtype=object)
    parsed[~missing] = s[~missing].map(lookup)
    bad = ~missing & parsed.isna()
    out = parsed.astype("boolean")
    return (out.astype(bool) if not out.isna().any() else out), bad


def coerce_column(spec: ColumnSpec, s: pd.Series) -> tuple[pd.Series, pd.Series, str]:
    """The column in its canonical dtype, the rows that could not be read, and that rule in words
    (with a hint after "; " when a column map would read the values)."""
    name = spec.name
    if spec.kind == "float":
        out, bad = _to_float(s)
        rule = f"{name} must be a finite number"
    elif spec.kind == "int":
        out, bad = _to_int(s)
        rule = f"{name} must be a whole number"
    elif spec.kind == "bool":
        out, bad = _to_bool(s)
        rule = f"{name} must be boolean (True/False, 1/0, yes/no)"
    else:
        out = _to_text(s)
        if spec.allowed is not None:  # codes and categories match case-insensitively
            folded = out.str.casefold()
            out = out.where(~folded.isin(spec.allowed), folded)
        bad = pd.Series(False, index=s.index)
        rule = f"{name} must be text"
    if bad.any():
        rule += f" (found {quoted_examples(s[bad])})"
        hint = _coerce_hint(spec, s[bad])
        if hint:
            rule += f"; {hint}"
    return out, bad, rule


def _coerce_hint(spec: ColumnSpec, bad: pd.Series) -> str:
    text = bad.dropna().map(str)
    if spec.kind in ("float", "int") and len(text) and looks_decimal_comma(text).all():
        return decimal_comma_hint(spec.name)
    if spec.kind == "bool":
        return recode_hint(spec.name, "bool", text)
    return ""
