"""The cohort schema (docs/methods.md, "Data schema"): declared once, checked with pandera, every problem collected.

A cohort is one row per patient at time zero. ``validate_cohort`` coerces each known column to its
canonical dtype (text booleans, numeric text, treatment codes), then checks types, ranges, allowed
values, uniqueness and the cross-column rules, and raises one ``CohortValidationError`` that lists
every problem found. Rows are never dropped: the cohort comes back whole or not at all.
Row numbers in problems are 1-based data rows (the first row after a CSV header is row 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa

from hte.data.column_rules import (
    MAX_LEVELS,
    all_missing_issue,
    decimal_comma_hint,
    free_column_issues,
    looks_decimal_comma,
    nested_issue,
    quoted_examples,
    recode_hint,
    rename_hint,
    unsafe_text_issue,
)
from hte.data.columns import (
    BOOLEAN_COVARIATES,
    CART,
    CRS,
    CRS_GRADE,
    DAYS_PER_MONTH,
    DEATH,
    INFUSION_DAY,
    OS_MONTHS,
    PATIENT_ID,
    TEC,
    TREATMENT,
    TREATMENT_CODES,
    covariate_columns,
)
from hte.errors import HteError

MAX_EXAMPLE_ROWS = 5
TABLE = "(table)"  # the column name of problems that concern the whole table

_TRUE_TEXT = frozenset({"true", "yes", "1", "1.0"})
_FALSE_TEXT = frozenset({"false", "no", "0", "0.0"})
# Relative slack for "infusion day <= follow-up in days": months -> days is a float product.
_DAYS_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Problem:
    """One broken rule: the column, the rule in words, up to 5 example rows and how many rows break it.

    ``n_rows`` is 0 for table-level problems (a missing column, a one-arm cohort).
    """

    column: str
    rule: str
    rows: list[int] = field(default_factory=list)
    n_rows: int = 0
    hint: str = ""  # how to fix it, e.g. the column-map entry that would read the values

    def __str__(self) -> str:
        text = f"{self.column}: {self.rule}"
        if self.n_rows:
            text += f" ({describe_rows(self.rows, self.n_rows)})"
        return f"{text}; {self.hint}" if self.hint else text


def describe_rows(rows: list[int], n_rows: int) -> str:
    """Example rows in words: "row 3", "rows 1, 4 and 9 more"."""
    shown = ", ".join(str(r) for r in rows)
    more = f" and {n_rows - len(rows)} more" if n_rows > len(rows) else ""
    return f"{'row' if n_rows == 1 else 'rows'} {shown}{more}"


class CohortValidationError(HteError, ValueError):
    """The cohort breaks the schema; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        lines = "\n".join(f"- {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the cohort:\n{lines}")


Kind = Literal["id", "treatment", "float", "int", "bool", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """What one known column must look like. Bounds are inclusive unless ``min_exclusive``."""

    name: str
    kind: Kind
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    unit: str | None = None  # the unit values must be in (a column map converts others)

    def range_rule(self) -> str | None:
        """The range rule in words, e.g. "ecog must be 0-4", or None without bounds."""
        lo, hi = _fmt(self.minimum), _fmt(self.maximum)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.name} must be {lo}-{hi}"
        if self.minimum is not None:
            return f"{self.name} must be {'>' if self.min_exclusive else '>='} {lo}"
        if self.maximum is not None:
            return f"{self.name} must be <= {hi}"
        return None


def _fmt(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


def _specs() -> dict[str, ColumnSpec]:
    """Every known column. Upper bounds are generous physiological limits (far beyond any
    patient, so a real value is never refused) that stop corrupt or unit-confused values such as
    ferritin 1e300 from reaching a model; a cohort declares its own ranges in its column map."""
    specs = [
        ColumnSpec(PATIENT_ID, "id", nullable=False, unique=True),
        ColumnSpec(TREATMENT, "treatment", nullable=False, allowed=TREATMENT_CODES),
        # follow-up 0 (death or censoring on the day of the decision) is allowed here; the
        # day-zero rule (hte.data.day_zero) moves it to a small offset before any fit
        ColumnSpec(OS_MONTHS, "float", nullable=False, minimum=0, maximum=1200, unit="months"),
        ColumnSpec(DEATH, "bool", nullable=False),
        ColumnSpec(CRS, "bool", nullable=False),
        ColumnSpec(CRS_GRADE, "int", minimum=0, maximum=5),
        ColumnSpec(INFUSION_DAY, "float", minimum=0, maximum=36_500, unit="days"),
        ColumnSpec("age", "float", nullable=False, minimum=18, maximum=110, unit="years"),
        ColumnSpec("sex", "category", allowed=("female", "male")),
        ColumnSpec("race", "category"),
        ColumnSpec("ecog", "int", minimum=0, maximum=4),
        ColumnSpec("iss_stage", "int", minimum=1, maximum=3),
        ColumnSpec("prior_lines", "int", minimum=0, maximum=30),
        ColumnSpec("bm_plasma_pct", "float", minimum=0, maximum=100, unit="%"),
        ColumnSpec("ferritin", "float", minimum=0, maximum=1_000_000, unit="ng/mL"),
        ColumnSpec("crp", "float", minimum=0, maximum=1_000, unit="mg/L"),
        ColumnSpec("crcl", "float", minimum=0, maximum=500, unit="mL/min"),
        ColumnSpec("years_since_diagnosis", "float", minimum=0, maximum=80, unit="years"),
        *(ColumnSpec(name, "bool") for name in BOOLEAN_COVARIATES),
    ]
    return {s.name: s for s in specs}


SPECS: dict[str, ColumnSpec] = _specs()
ALWAYS_REQUIRED = (PATIENT_ID, TREATMENT, "age")
# Columns whose range a cohort may declare (covariates; ids, codes and outcomes keep theirs).
_FIXED_RANGES = (PATIENT_ID, TREATMENT, OS_MONTHS, DEATH, CRS, CRS_GRADE, INFUSION_DAY)

Ranges = Mapping[str, tuple[float | None, float | None]]


def specs_with_ranges(ranges: Ranges | None = None) -> dict[str, ColumnSpec]:
    """The schema's column specs with a cohort's own covariate ranges (``ranges``: column ->
    (min, max), None = unbounded) in place of the defaults. A range for a column the schema does
    not name makes it a checked number. Outcome, id and code columns keep their rules."""
    specs = dict(SPECS)
    for name, (lo, hi) in (ranges or {}).items():
        if name in _FIXED_RANGES:
            raise ValueError(f"the range of {name} is fixed by the schema; only covariates")
        base = specs.get(name, ColumnSpec(name, "float"))
        if base.kind not in ("float", "int"):
            raise ValueError(f"{name} is not a number ({base.kind}); it has no range")
        specs[name] = replace(base, minimum=lo, maximum=hi, min_exclusive=False)
    return specs


# --------------------------------------------------------------------------------------------
# Internal bookkeeping: full row positions per (column, rule), truncated to examples at the end.


@dataclass
class _Found:
    column: str
    rule: str
    positions: np.ndarray  # 0-based row positions; empty for table-level problems
    hint: str = ""

    def to_problem(self) -> Problem:
        rows = [int(p) + 1 for p in self.positions[:MAX_EXAMPLE_ROWS]]
        return Problem(self.column, self.rule, rows, len(self.positions), self.hint)


def _positions(mask: pd.Series | np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(mask, dtype=bool))


# --------------------------------------------------------------------------------------------
# Coercion to canonical dtypes; values that cannot be read are type problems.


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


def _coerce(spec: ColumnSpec, s: pd.Series) -> tuple[pd.Series, pd.Series, str]:
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


# --------------------------------------------------------------------------------------------
# Presence of columns (table-level rules).


def _presence_problems(columns: pd.Index) -> list[_Found]:
    empty = np.array([], dtype=int)
    present = set(columns)
    others = [str(c) for c in columns if c not in SPECS]
    found = [
        _Found(name, f"required column {name} is missing", empty, rename_hint(name, others))
        for name in ALWAYS_REQUIRED
        if name not in present
    ]
    has_time, has_death = OS_MONTHS in present, DEATH in present
    if has_time != has_death:
        there, absent = (OS_MONTHS, DEATH) if has_time else (DEATH, OS_MONTHS)
        found.append(
            _Found(
                absent,
                f"{there} is present but {absent} is missing: OS needs both",
                empty,
                rename_hint(absent, others),
            )
        )
    if CRS_GRADE in present and CRS not in present:
        found.append(_Found(CRS, "crs_grade is present but crs is missing", empty))
    if not (has_time or has_death or CRS in present):
        found.append(
            _Found(TABLE, "no outcome: give os_months and death (OS), or crs, or both", empty)
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
    df: pd.DataFrame, specs: Mapping[str, ColumnSpec] | None = None
) -> tuple[pa.DataFrameSchema, dict[str, str]]:
    """The pandera schema for the known columns of an already coerced cohort.

    Returns the schema and a map from each cross-column rule to the column it is reported under.
    Rule texts that quote offending values depend on the data, hence one schema per cohort.
    ``specs`` defaults to ``SPECS`` (see ``specs_with_ranges`` for a cohort's own ranges).
    """
    columns = {}
    for name, spec in (SPECS if specs is None else specs).items():
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


def _schema_problems(df: pd.DataFrame, specs: Mapping[str, ColumnSpec]) -> list[_Found]:
    schema, cross_columns = build_schema(df, specs)
    try:
        schema.validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return _from_failure_cases(exc.failure_cases, df, cross_columns)
    return []


def _from_failure_cases(
    cases: pd.DataFrame, df: pd.DataFrame, cross_columns: dict[str, str]
) -> list[_Found]:
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
        found.append(_Found(str(column), rule, positions))
    for rule, column in cross_columns.items():
        index = cases.loc[cases["check"] == rule, "index"].dropna().astype(int)
        if len(index):
            found.append(_Found(column, rule, np.unique(index.to_numpy())))
    return found


# --------------------------------------------------------------------------------------------
# Whole-cohort rules that only make sense once the columns themselves are readable.


def _table_problems(df: pd.DataFrame, unreadable: set[str]) -> list[_Found]:
    empty = np.array([], dtype=int)
    found = []
    if TREATMENT in df.columns and TREATMENT not in unreadable:
        arms = df[TREATMENT]
        if arms.notna().all() and arms.isin(TREATMENT_CODES).all():
            n_cart, n_tec = int(arms.eq(CART).sum()), int(arms.eq(TEC).sum())
            if min(n_cart, n_tec) == 0:
                found.append(
                    _Found(
                        TREATMENT,
                        f"only one arm ({n_cart} cart, {n_tec} tec): an effect needs both arms",
                        empty,
                    )
                )
    if DEATH in df.columns and OS_MONTHS in df.columns and DEATH not in unreadable:
        death = df[DEATH]
        if death.notna().all() and not death.astype(bool).any():
            found.append(
                _Found(
                    DEATH, "no deaths at all: OS is not analysable (every patient censored)", empty
                )
            )
        elif death.notna().all() and TREATMENT in df.columns and TREATMENT not in unreadable:
            found += _deaths_per_arm(df)
    return found


def _deaths_per_arm(df: pd.DataFrame) -> list[_Found]:
    """An arm without deaths makes every OS contrast unbounded (a hazard ratio of 0 or infinity,
    which a Cox fit reports as an absurd finite number): refuse it with the counts."""
    found = []
    for arm in TREATMENT_CODES:
        rows = df[TREATMENT].eq(arm).fillna(False).to_numpy(dtype=bool)
        if rows.any() and not df.loc[rows, DEATH].astype(bool).any():
            found.append(
                _Found(
                    DEATH,
                    f"no deaths in the {arm} arm (0 of {int(rows.sum())} patients): OS effects "
                    "are not estimable (the hazard ratio would be unbounded)",
                    np.array([], dtype=int),
                    "analyse CRS only (outcomes.os.enabled: false), or use longer follow-up",
                )
            )
    return found


def validate_cohort(
    df: pd.DataFrame, *, ranges: Ranges | None = None, max_levels: int = MAX_LEVELS
) -> pd.DataFrame:
    """Check a cohort against the schema and return it with canonical dtypes, every row kept.

    Raises ``CohortValidationError`` listing every problem found (column, rule, example rows).
    Known columns come back as: patient_id and treatment str ("cart"/"tec"), os_months and
    float covariates float64, death/crs bool, crs_grade and integer covariates Int64, boolean
    covariates bool (nullable "boolean" where values are missing). Other columns are kept as given
    but checked (``hte.data.column_rules``: not all missing, one value per cell, no decimal
    commas or text among numbers, text with at most ``max_levels`` distinct values).
    ``ranges`` replaces the schema's covariate ranges (a cohort's own, from its column map).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_cohort needs a pandas DataFrame; got {type(df).__name__}")
    found = _presence_problems(df.columns)
    if len(df) == 0:
        found.insert(0, _Found(TABLE, "cohort has no rows", np.array([], dtype=int)))
        raise CohortValidationError([f.to_problem() for f in found])
    duplicated = df.columns[df.columns.duplicated()].unique()
    if len(duplicated):
        found += [
            _Found(str(c), "column appears more than once", np.array([], dtype=int))
            for c in duplicated
        ]
        raise CohortValidationError([f.to_problem() for f in found])

    specs = specs_with_ranges(ranges)
    out = df.reset_index(drop=True)
    unreadable: dict[str, np.ndarray] = {}
    nested: list[str] = []
    for name in map(str, out.columns):
        issue = nested_issue(name, out[name])
        if issue is not None:
            found.append(_Found(issue.column, issue.rule, issue.positions, issue.hint))
            unreadable[name] = issue.positions
            nested.append(name)
    covariates = covariate_columns([str(c) for c in out.columns])
    free = [c for c in covariates if c not in specs and c not in unreadable]
    for issue in free_column_issues(out, free, max_levels):
        found.append(_Found(issue.column, issue.rule, issue.positions, issue.hint))
    for name in covariates:
        text_column = name not in specs or specs[name].kind == "category"
        issue = unsafe_text_issue(name, out[name]) if text_column else None
        if issue is not None and name not in unreadable:
            found.append(_Found(issue.column, issue.rule, issue.positions, issue.hint))
        issue = all_missing_issue(name, out[name]) if name in specs else None
        if issue is not None and specs[name].nullable:
            found.append(_Found(issue.column, issue.rule, np.array([], dtype=int), issue.hint))
    for name, spec in specs.items():
        if name not in out.columns or name in unreadable:
            continue
        values, bad, rule = _coerce(spec, out[name])
        out[name] = values
        if bad.any():
            unreadable[name] = _positions(bad)
            found.append(_Found(name, rule, unreadable[name]))

    for item in _schema_problems(out.drop(columns=nested), specs):
        if item.rule == f"{item.column} must not be missing" and item.column in unreadable:
            # unreadable values were already reported as such, not again as missing
            item.positions = np.setdiff1d(item.positions, unreadable[item.column])
            if not len(item.positions):
                continue
        found.append(item)
    found += _table_problems(out, set(unreadable))
    if found:
        order = {name: i for i, name in enumerate([TABLE, *out.columns])}
        found.sort(key=lambda f: order.get(f.column, -1))
        raise CohortValidationError([f.to_problem() for f in found])
    return out


def column_notes(columns: pd.Index | list[str], column_map: object | None = None) -> list[str]:
    """Notes on an accepted cohort: columns that look like a known column under another name
    (so they would be used unchecked), columns the map excluded, and true_* columns (ignored by
    runs on a file: truth metrics are for simulated cohorts)."""
    from hte.data.column_rules import rename_suggestions
    from hte.data.columns import TRUTH_PREFIX

    names = [str(c) for c in columns]
    notes = rename_suggestions(names, list(SPECS))
    excluded = list(getattr(column_map, "exclude", []) or [])
    if excluded:
        notes.append(f"left out by the column map (exclude): {', '.join(excluded)}")
    truth = [c for c in names if c.startswith(TRUTH_PREFIX)]
    if truth:
        notes.append(
            f"{len(truth)} true_* column(s) are ignored: never covariates, and a run on a file "
            "does not compute truth metrics from them (evaluation.truth_metrics: auto)"
        )
    return notes
