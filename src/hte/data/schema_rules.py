"""The cohort schema's rules beyond dtypes: columns that must be present, per-column ranges and
allowed values (a pandera schema built per cohort), cross-column rules and whole-cohort rules
(both arms, deaths in each arm). Each returns ``Found`` items (``hte.data.problems``)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from hte.data.column_rules import quoted_examples, recode_hint, rename_hint
from hte.data.column_spec import ColumnSpec
from hte.data.columns import (
    CART,
    CRS,
    CRS_GRADE,
    DAYS_PER_MONTH,
    DEATH,
    INFUSION_DAY,
    OS_MONTHS,
    TEC,
    TREATMENT,
    TREATMENT_CODES,
)
from hte.data.problems import TABLE, Found

# Relative slack for "infusion day <= follow-up in days": months -> days is a float product.
_DAYS_TOLERANCE = 1e-9


def presence_problems(
    columns: pd.Index, required: Collection[str], known: Collection[str]
) -> list[Found]:
    """Missing required columns (``required``; ``known``: every column the schema names)."""
    empty = np.array([], dtype=int)
    present = set(columns)
    others = [str(c) for c in columns if c not in known]
    found = [
        Found(name, f"required column {name} is missing", empty, rename_hint(name, others))
        for name in required
        if name not in present
    ]
    has_time, has_death = OS_MONTHS in present, DEATH in present
    if has_time != has_death:
        there, absent = (OS_MONTHS, DEATH) if has_time else (DEATH, OS_MONTHS)
        found.append(
            Found(
                absent,
                f"{there} is present but {absent} is missing: OS needs both",
                empty,
                rename_hint(absent, others),
            )
        )
    if CRS_GRADE in present and CRS not in present:
        found.append(Found(CRS, "crs_grade is present but crs is missing", empty))
    if not (has_time or has_death or CRS in present):
        found.append(
            Found(TABLE, "no outcome: give os_months and death (OS), or crs, or both", empty)
        )
    return found


# --------------------------------------------------------------------------------------------
# The pandera schema for the coerced frame: per-column rules and cross-column rules.


def _column_checks(spec: ColumnSpec, values: pd.Series) -> list[pa.Check]:
    checks = []
    rule = spec.range_rule()
    if rule is not None:
        lo, hi = spec.minimum, spec.maximum
        if spec.min_exclusive and hi is None:
            checks.append(pa.Check.gt(lo, error=rule))
        elif hi is None:
            checks.append(pa.Check.ge(lo, error=rule))
        elif lo is None:
            checks.append(pa.Check.le(hi, error=rule))
        else:
            checks.append(pa.Check.in_range(lo, hi, error=rule))
    if spec.allowed is not None:
        unknown = values.dropna()[~values.dropna().isin(spec.allowed)]
        words = " or ".join(spec.allowed)
        rule = f"{spec.name} must be {words}"
        if len(unknown):
            rule += f" (found {quoted_examples(unknown)})"
        if spec.kind == "treatment":
            rule += "; map other codes with treatment_codes in a column map"
        elif len(unknown):
            hint = recode_hint(spec.name, spec.name, unknown)
            rule += f"; {hint}" if hint else "; recode them with values: in a column map"
        checks.append(pa.Check.isin(list(spec.allowed), error=rule))
    return checks


def _unique_rule(values: pd.Series) -> str:
    dups = values[values.duplicated(keep="first") & values.notna()]
    return f"{values.name} must be unique (duplicates: {quoted_examples(dups)})"


def _grade_matches_crs(df: pd.DataFrame) -> pd.Series:
    grade, crs = df[CRS_GRADE], df[CRS].astype("boolean")
    broken = grade.notna() & crs.notna() & ((grade >= 1) != crs)
    return ~broken.fillna(False).astype(bool)


def _no_infusion_on_tec(df: pd.DataFrame) -> pd.Series:
    return ~(df[TREATMENT].eq(TEC).fillna(False).astype(bool) & df[INFUSION_DAY].notna())


def _infused_before_end(df: pd.DataFrame) -> pd.Series:
    limit = df[OS_MONTHS] * DAYS_PER_MONTH * (1 + _DAYS_TOLERANCE) + _DAYS_TOLERANCE
    # rows with an invalid follow-up (<= 0) are reported for that alone
    broken = df[TREATMENT].eq(CART) & (df[OS_MONTHS] > 0) & (df[INFUSION_DAY] > limit)
    return ~broken.fillna(False).astype(bool)


@dataclass(frozen=True)
class _CrossRule:
    column: str
    rule: str
    needs: tuple[str, ...]
    holds: Callable[[pd.DataFrame], pd.Series]


CROSS_RULES = (
    _CrossRule(
        CRS_GRADE,
        "crs_grade must be >= 1 exactly when crs is True",
        (CRS, CRS_GRADE),
        _grade_matches_crs,
    ),
    _CrossRule(
        INFUSION_DAY,
        "infusion_day must be missing on tec rows (CAR-T only)",
        (TREATMENT, INFUSION_DAY),
        _no_infusion_on_tec,
    ),
    _CrossRule(
        INFUSION_DAY,
        "infusion_day (days) must not exceed os_months in days",
        (TREATMENT, INFUSION_DAY, OS_MONTHS),
        _infused_before_end,
    ),
)


def build_schema(
    df: pd.DataFrame, specs: Mapping[str, ColumnSpec]
) -> tuple[pa.DataFrameSchema, dict[str, str]]:
    """The pandera schema for the known columns of an already coerced cohort.

    Returns the schema and a map from each cross-column rule to the column it is reported under.
    Rule texts that quote offending values depend on the data, hence one schema per cohort.
    ``specs``: the schema's column specs (``specs_with_ranges`` gives a cohort's own ranges).
    """
    columns = {}
    for name, spec in specs.items():
        if name in df.columns:
            columns[name] = pa.Column(
                checks=_column_checks(spec, df[name]),
                nullable=spec.nullable,
                unique=spec.unique,
                required=False,
            )
    cross = [r for r in CROSS_RULES if all(c in df.columns for c in r.needs)]
    checks = [pa.Check(r.holds, error=r.rule) for r in cross]
    schema = pa.DataFrameSchema(columns, checks=checks, strict=False, coerce=False)
    return schema, {r.rule: r.column for r in cross}


def schema_problems(df: pd.DataFrame, specs: Mapping[str, ColumnSpec]) -> list[Found]:
    schema, cross_columns = build_schema(df, specs)
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _from_failure_cases(exc.failure_cases, df, cross_columns)
    return []


def _from_failure_cases(
    cases: pd.DataFrame, df: pd.DataFrame, cross_columns: dict[str, str]
) -> list[Found]:
    found = []
    cases = cases.assign(check=cases["check"].astype(str))
    for (column, check), group in cases.groupby(["column", "check"], sort=False, dropna=False):
        if check in cross_columns:
            continue  # collected below, once per row instead of once per column
        if check == "not_nullable":
            rule = f"{column} must not be missing"
        elif check == "field_uniqueness":
            rule = _unique_rule(df[column])
        else:
            rule = check
        positions = np.unique(group["index"].dropna().astype(int).to_numpy())
        found.append(Found(str(column), rule, positions))
    for rule, column in cross_columns.items():
        index = cases.loc[cases["check"] == rule, "index"].dropna().astype(int)
        if len(index):
            found.append(Found(column, rule, np.unique(index.to_numpy())))
    return found


# --------------------------------------------------------------------------------------------
# Whole-cohort rules that only make sense once the columns themselves are readable.


def table_problems(df: pd.DataFrame, unreadable: set[str]) -> list[Found]:
    empty = np.array([], dtype=int)
    found = []
    if TREATMENT in df.columns and TREATMENT not in unreadable:
        arms = df[TREATMENT]
        if arms.notna().all() and arms.isin(TREATMENT_CODES).all():
            n_cart, n_tec = int(arms.eq(CART).sum()), int(arms.eq(TEC).sum())
            if min(n_cart, n_tec) == 0:
                found.append(
                    Found(
                        TREATMENT,
                        f"only one arm ({n_cart} cart, {n_tec} tec): an effect needs both arms",
                        empty,
                    )
                )
    if DEATH in df.columns and OS_MONTHS in df.columns and DEATH not in unreadable:
        death = df[DEATH]
        if death.notna().all() and not death.astype(bool).any():
            found.append(
                Found(
                    DEATH, "no deaths at all: OS is not analysable (every patient censored)", empty
                )
            )
        elif death.notna().all() and TREATMENT in df.columns and TREATMENT not in unreadable:
            found += _deaths_per_arm(df)
    return found


def _deaths_per_arm(df: pd.DataFrame) -> list[Found]:
    """An arm without deaths makes every OS contrast unbounded (a hazard ratio of 0 or infinity,
    which a Cox fit reports as an absurd finite number): refuse it with the counts."""
    found = []
    for arm in TREATMENT_CODES:
        rows = df[TREATMENT].eq(arm).fillna(False).to_numpy(dtype=bool)
        if rows.any() and not df.loc[rows, DEATH].astype(bool).any():
            found.append(
                Found(
                    DEATH,
                    f"no deaths in the {arm} arm (0 of {int(rows.sum())} patients): OS effects "
                    "are not estimable (the hazard ratio would be unbounded)",
                    np.array([], dtype=int),
                    "analyse CRS only (outcomes.os.enabled: false), or use longer follow-up",
                )
            )
    return found
