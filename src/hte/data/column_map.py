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
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from hte.data.columns import (
    CART,
    DAYS_PER_MONTH,
    OS_MONTHS,
    TEC,
    TREATMENT,
    WEEKS_PER_MONTH,
)
from hte.data.schema import CohortValidationError, Problem

TimeUnit = Literal["months", "days", "weeks", "years"]
MONTHS_PER_UNIT: dict[str, float] = {
    "months": 1.0,
    "days": 1.0 / DAYS_PER_MONTH,
    "weeks": 1.0 / WEEKS_PER_MONTH,
    "years": 12.0,
}


class ColumnMapError(ValueError):
    """A column map file that cannot be read or has a bad key or value."""


def code_key(value: object) -> str:
    """A treatment code as comparable text: 1, 1.0, "1" and " 1 " are all "1"; case is ignored."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    return str(value).strip().casefold()


class ColumnMap(BaseModel):
    """How a user's cohort file maps onto the canonical schema (DESIGN.md section 5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, str] = {}
    treatment_codes: dict[str, Literal["cart", "tec"]] = {}
    time_unit: TimeUnit = "months"

    @field_validator("columns", "treatment_codes", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        """YAML reads `1: cart` with an int key and `yes: tec` with a bool key; keep them as text."""
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

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
                f"column map {path} must be a mapping with keys columns, treatment_codes, "
                f"time_unit; got {type(raw).__name__}"
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
        out = df.rename(columns=self.columns)
        if self.treatment_codes and TREATMENT in out.columns:
            out[TREATMENT] = self._map_codes(out[TREATMENT])
        if self.time_unit != "months" and OS_MONTHS in out.columns:
            out[OS_MONTHS] = _to_months(out[OS_MONTHS], MONTHS_PER_UNIT[self.time_unit])
        return out

    def _check_columns(self, df: pd.DataFrame) -> None:
        present = {str(c) for c in df.columns}
        problems = [
            Problem(source, f"column {source!r} of the column map (-> {target}) is not in the file")
            for source, target in self.columns.items()
            if source not in present
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


def _to_months(time: pd.Series, factor: float) -> pd.Series:
    """Follow-up in months; a column with unreadable values is left unconverted for validation
    to report (it fails there anyway, so no row is ever analysed in the wrong unit)."""
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
        else:
            parts.append(f"{where}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(parts)
