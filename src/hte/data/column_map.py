"""Column maps: read a user's export as it is, by renaming columns, mapping treatment codes and
converting follow-up to months, so the file itself never needs editing.

A column map is a small YAML file (or the ``columns:`` block of a config)::

    columns:            # user name -> canonical name
      ID: patient_id
      arm: treatment
      os_days: os_months
      dead: death
    treatment_codes:    # user code -> cart / tec (compared as text, case-insensitively)
      1: cart
      0: tec
    time_unit: days     # unit of the follow-up column (os_months); infusion_day is always in days
    values:             # recode values of a column (codes compared as text, case-insensitively)
      sex: {1: male, 2: female}
      prior_asct: {"Y": true, "N": false, "unknown": null}
    units:              # the unit a lab is in when it differs from the schema's (converted)
      ferritin: pmol/L
      crcl: mL/s
    ranges:             # this cohort's own covariate ranges (replace the schema's)
      age: {min: 13, max: 90}
    exclude: [notes]    # columns to leave out (recorded), e.g. free text
    decimal: ","        # numbers written with a decimal comma ("0,5")
    max_levels: 50      # most distinct values a free text covariate may have

Keys of ``values``, ``units`` and ``ranges`` are column names after renaming (a name from the file
that the map renames is accepted too). The order of application: exclude, rename, decimal commas,
values, treatment codes, time unit, units; then validation with the ranges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hte.data.column_rules import MAX_LEVELS, looks_decimal_comma
from hte.data.columns import (
    CART,
    DAYS_PER_MONTH,
    OS_MONTHS,
    TEC,
    TREATMENT,
    WEEKS_PER_MONTH,
)
from hte.data.problems import CohortValidationError, Problem
from hte.data.schema import _FIXED_RANGES, SPECS
from hte.errors import HteError

TimeUnit = Literal["months", "days", "weeks", "years"]
MONTHS_PER_UNIT: dict[str, float] = {
    "months": 1.0,
    "days": 1.0 / DAYS_PER_MONTH,
    "weeks": 1.0 / WEEKS_PER_MONTH,
    "years": 12.0,
}


# Unit conversions to the schema's unit (hte.data.schema SPECS[...].unit): value x factor.
# Ferritin 1 ng/mL = 2.247 pmol/L; CRP 1 mg/L = 9.524 nmol/L (M = 105 kDa); CrCl 1 mL/s = 60 mL/min.
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "ferritin": {"ng/ml": 1.0, "ug/l": 1.0, "µg/l": 1.0, "pmol/l": 1.0 / 2.247},
    "crp": {"mg/l": 1.0, "mg/dl": 10.0, "nmol/l": 1.0 / 9.524},
    "crcl": {"ml/min": 1.0, "ml/s": 60.0, "l/h": 1000.0 / 60.0},
    "age": {"years": 1.0, "months": 1.0 / 12.0},
    "years_since_diagnosis": {"years": 1.0, "months": 1.0 / 12.0, "days": 1.0 / 365.25},
    "bm_plasma_pct": {"%": 1.0, "fraction": 100.0},
    "infusion_day": {"days": 1.0, "weeks": 7.0},
}

Scalar = str | int | float | bool | None


class ColumnMapError(HteError, ValueError):
    """A column map file that cannot be read or has a bad key or value."""


def code_key(value: object) -> str:
    """A treatment code as comparable text: 1, 1.0, "1" and " 1 " are all "1"; case is ignored."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip().casefold()


class ColumnMap(BaseModel):
    """How a user's cohort file maps onto the canonical schema (docs/methods.md, "Data schema")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    treatment_codes: dict[str, Literal["cart", "tec"]] = {}
    time_unit: TimeUnit = "months"
    values: dict[str, dict[str, Scalar]] = {}
    units: dict[str, str | float] = {}
    ranges: dict[str, tuple[float | None, float | None]] = {}
    exclude: list[str] = []
    decimal: Literal[".", ","] = "."
    max_levels: int = Field(MAX_LEVELS, ge=2, le=10_000)

    @field_validator("columns", "treatment_codes", "units", "ranges", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        """YAML reads `1: cart` with an int key and `yes: tec` with a bool key; keep them as text."""
        if isinstance(value, dict):
            return {_yaml_text(k): v for k, v in value.items()}
        return value

    @field_validator("values", mode="before")
    @classmethod
    def _codes_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {
                str(col): {_yaml_text(k): v for k, v in codes.items()}
                if isinstance(codes, dict)
                else codes
                for col, codes in value.items()
            }
        return value

    @field_validator("ranges", mode="before")
    @classmethod
    def _range_forms(cls, value: object) -> object:
        """A range is {min: a, max: b} (either may be left out) or [a, b]."""
        if not isinstance(value, dict):
            return value
        out = {}
        for col, rng in value.items():
            if isinstance(rng, dict):
                unknown = set(rng) - {"min", "max"}
                if unknown:
                    raise ValueError(f"ranges.{col}: unknown key(s) {sorted(map(str, unknown))}")
                rng = (rng.get("min"), rng.get("max"))
            out[col] = rng
        return out

    @field_validator("ranges")
    @classmethod
    def _ordered_ranges(cls, value: dict) -> dict:
        for col, (lo, hi) in value.items():
            if col in _FIXED_RANGES:
                raise ValueError(f"ranges.{col}: the range of {col} is fixed by the schema")
            spec = SPECS.get(col)
            if spec is not None and spec.kind not in ("float", "int"):
                raise ValueError(f"ranges.{col}: {col} is not a number, it has no range")
            for bound in (lo, hi):
                if bound is not None and not np.isfinite(bound):
                    raise ValueError(f"ranges.{col}: bounds must be finite numbers")
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"ranges.{col}: min {lo} is above max {hi}")
        return value

    @field_validator("units")
    @classmethod
    def _known_units(cls, value: dict) -> dict:
        for col, unit in value.items():
            if isinstance(unit, int | float) and not isinstance(unit, bool):
                if not (np.isfinite(unit) and unit > 0):
                    raise ValueError(f"units.{col}: a factor must be a finite number > 0")
                if col in UNIT_FACTORS:
                    raise ValueError(
                        f"units.{col}: give the unit by name ({', '.join(UNIT_FACTORS[col])})"
                    )
                continue
            known = UNIT_FACTORS.get(col)
            if known is None:
                raise ValueError(
                    f"units.{col}: no named units for {col} (known: {', '.join(UNIT_FACTORS)}); "
                    "give a number to multiply by instead"
                )
            if str(unit).strip().casefold() not in known:
                raise ValueError(f"units.{col}: unknown unit {unit!r} (known: {', '.join(known)})")
        return value

    @model_validator(mode="after")
    def _keys_after_renaming(self) -> ColumnMap:
        """values/units/ranges keyed by a file name that is renamed are keyed by the new name."""
        renames = self.columns
        update = {}
        for name in ("values", "units", "ranges"):
            mapping = getattr(self, name)
            moved = {renames.get(k, k): v for k, v in mapping.items()}
            if len(moved) != len(mapping):
                raise ValueError(f"{name}: a column is given twice (under its old and new name)")
            if moved != mapping:
                update[name] = moved
        for key, mapping in update.items():
            object.__setattr__(self, key, mapping)
        return self

    def range_bounds(self) -> dict[str, tuple[float | None, float | None]]:
        """The declared ranges, for ``validate_cohort(ranges=...)``."""
        return dict(self.ranges)

    @field_validator("columns")
    @classmethod
    def _one_source_per_column(cls, value: dict[str, str]) -> dict[str, str]:
        targets = list(value.values())
        doubled = sorted({t for t in targets if targets.count(t) > 1})
        if doubled:
            raise ValueError(f"several columns are renamed to {', '.join(doubled)}")
        return value

    @classmethod
    def from_yaml(cls, path: str | Path) -> ColumnMap:
        """Read a column map YAML file; errors name the file and the bad key."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ColumnMapError(f"cannot read column map {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ColumnMapError(f"column map {path} is not valid YAML: {exc}") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ColumnMapError(
                f"column map {path} must be a mapping with keys "
                f"{', '.join(cls.model_fields)}; got {type(raw).__name__}"
            )
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ColumnMapError(f"column map {path}: {_describe(exc)}") from None

    def apply(self, df: pd.DataFrame) -> pd.DataFrame:
        """The cohort renamed, with treatment codes mapped and follow-up in months.

        A renamed column the file lacks, or a rename onto a column the file already has, raises
        ``CohortValidationError`` naming it. Codes not in ``treatment_codes`` are left as they are
        (validation then reports any that are not cart/tec). No rows are dropped.
        """
        self._check_columns(df)
        out = df.drop(columns=self._excluded(df))
        out = out.rename(columns=self.columns)
        if self.decimal == ",":
            out = _read_decimal_commas(out)
        for column, codes in self.values.items():
            if column in out.columns:
                out[column] = _recode(out[column], codes)
        if self.treatment_codes and TREATMENT in out.columns:
            out[TREATMENT] = self._map_codes(out[TREATMENT])
        if self.time_unit != "months" and OS_MONTHS in out.columns:
            out[OS_MONTHS] = _to_months(out[OS_MONTHS], MONTHS_PER_UNIT[self.time_unit])
        for column in self.units:
            if column in out.columns:
                out[column] = _to_months(out[column], self.unit_factor(column))
        return out

    def unit_factor(self, column: str) -> float:
        """What a value of ``column`` is multiplied by to reach the schema's unit."""
        unit = self.units.get(column)
        if unit is None:
            return 1.0
        if isinstance(unit, int | float):
            return float(unit)
        return UNIT_FACTORS[column][str(unit).strip().casefold()]

    def _excluded(self, df: pd.DataFrame) -> list[str]:
        """File columns named in ``exclude`` (by their name in the file or after renaming)."""
        back = {target: source for source, target in self.columns.items()}
        return [c for c in map(str, df.columns) if c in self.exclude or back.get(c) in self.exclude]

    def _check_columns(self, df: pd.DataFrame) -> None:
        present = {str(c) for c in df.columns}
        problems = [
            Problem(source, f"column {source!r} of the column map (-> {target}) is not in the file")
            for source, target in self.columns.items()
            if source not in present
        ]
        renamed = present | set(self.columns.values())
        problems += [
            Problem(name, f"column {name!r} of the column map (exclude) is not in the file")
            for name in self.exclude
            if name not in renamed
        ]
        for key in ("values", "units", "ranges"):
            problems += [
                Problem(name, f"column {name!r} of the column map ({key}) is not in the file")
                for name in getattr(self, key)
                if name not in renamed and name not in SPECS
            ]
        problems += [
            Problem(target, f"column map renames {source!r} to {target}, which the file has too")
            for source, target in self.columns.items()
            if target in present and target not in self.columns and source != target
        ]
        if problems:
            raise CohortValidationError(problems)

    def _map_codes(self, arm: pd.Series) -> pd.Series:
        codes = {code_key(k): v for k, v in self.treatment_codes.items()}
        canonical = {CART: CART, TEC: TEC}

        def one(value: object) -> object:
            if pd.isna(value):
                return value
            key = code_key(value)
            return codes.get(key, canonical.get(key, value))

        return arm.map(one).astype(object)


def _yaml_text(key: object) -> str:
    """A YAML key as text: True/False (YAML's yes/no/on/off) as "true"/"false"."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _recode(column: pd.Series, codes: dict[str, Scalar]) -> pd.Series:
    """Values of ``codes`` (matched as text, case-insensitively; 1, 1.0 and "1" alike) replaced
    by their new value (None = missing); other values are left for validation to judge."""
    lookup = {code_key(k): v for k, v in codes.items()}
    # YAML turns an unquoted yes/no key into a bool: match the words people write for it too
    for word, flag in (("yes", "true"), ("no", "false"), ("y", "true"), ("n", "false")):
        if flag in lookup and word not in lookup:
            lookup[word] = lookup[flag]

    def one(value: object) -> object:
        if isinstance(value, list | tuple | dict | set | np.ndarray) or pd.isna(value):
            return value  # nested cells are reported by validation
        key = code_key(value)
        return lookup[key] if key in lookup else value

    return column.map(one).astype(object)


def _read_decimal_commas(df: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every value is a number, some with a decimal comma, as numbers."""
    out = df.copy()
    for name in out.columns:
        s = out[name]
        if s.dtype != object and not pd.api.types.is_string_dtype(s):
            continue
        text = s.dropna().map(lambda v: str(v).strip())
        text = text[text != ""]
        if text.empty:
            continue
        comma = looks_decimal_comma(text)
        plain = pd.to_numeric(text, errors="coerce").notna().to_numpy()
        if comma.any() and (comma | plain).all():
            fixed = s.map(lambda v: str(v).strip().replace(",", ".") if isinstance(v, str) else v)
            out[name] = pd.to_numeric(fixed.replace("", np.nan), errors="coerce")
    return out


def _to_months(time: pd.Series, factor: float) -> pd.Series:
    """Values times ``factor`` (follow-up to months, a lab to the schema's unit); a column with
    unreadable values is left unconverted for validation to report (it fails there anyway, so no
    row is ever analysed in the wrong unit)."""
    num = pd.to_numeric(time, errors="coerce")
    if (num.isna() & time.notna()).any():
        return time
    return num.astype(float) * factor


def _describe(exc: ValidationError) -> str:
    """Pydantic errors as "key: message" lines naming the offending key."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = ", ".join(ColumnMap.model_fields)
            parts.append(f"unknown key {where!r} (allowed: {allowed})")
        elif err["type"] == "value_error":
            parts.append(err["msg"].removeprefix("Value error, "))
        else:
            parts.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)
