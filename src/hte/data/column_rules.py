"""Rules for columns the schema does not name, and hints that say how a column map would fix a
problem.

The schema (``hte.data.schema``) knows the canonical columns. A real export carries other columns
too, which become covariates as they are; these rules stop the ones that would crash a run or
silently turn into nonsense features:

- a column missing for every patient (nothing to adjust for; the design cannot impute it);
- nested values (lists, mappings: a Parquet list or struct column): not one value per cell;
- numbers written with a decimal comma ("0,5"): read as text they would become a category;
- numbers mixed with text ("12", "13", "n/a"): the text would turn the column into categories;
- free text with many distinct values (notes, names): hundreds of one-hot features;
- category values that a spreadsheet would run as a formula ("=cmd|...", "@SUM(...)"), HTML
  markup ("<script>") or matplotlib math ("$\\alpha_{$"): category values become feature
  names, figure labels, report text and CSV cells, so they must be plain words.

Each rule names the column, the rows and the fix (usually an entry of the column map:
``exclude``, ``decimal``, ``values``). ``recode_hint`` and ``rename_hint`` suggest column-map
entries for known recodable patterns (sex as 1/2, yes/no spelled Y/N, ``Age`` for ``age``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_LEVELS = 50  # distinct text values a free covariate may have (column map: max_levels)
MIN_ROWS_FOR_UNIQUE = 20  # "every value differs" is only a sign of an id or free text from here
_DECIMAL_COMMA = re.compile(r"^\s*[-+]?\d+,\d+\s*$")
_NESTED = (list, tuple, dict, set, np.ndarray)
_MARKUP = re.compile(r"<\s*[A-Za-z/!?]")
_SIGNED_NUMBER = re.compile(r"^[+-]?[\d.,]*$")


@dataclass(frozen=True)
class ColumnIssue:
    """One broken rule of a free column: column, rule, 0-based row positions, how to fix it."""

    column: str
    rule: str
    positions: np.ndarray
    hint: str = ""


def quoted_examples(values: Iterable[object], k: int = 3) -> str:
    """Up to k distinct offending values, quoted, for a rule text."""
    shown: list[str] = []
    for v in values:
        text = repr(str(v))
        if text not in shown:
            shown.append(text)
        if len(shown) == k:
            break
    return ", ".join(shown)


def nested_rows(s: pd.Series) -> np.ndarray:
    """0-based rows of a column whose cell holds a list, tuple, mapping, set or array."""
    if s.dtype != object:
        return np.array([], dtype=int)
    return np.flatnonzero(s.map(lambda v: isinstance(v, _NESTED)).to_numpy(dtype=bool))


def nested_issue(name: str, s: pd.Series) -> ColumnIssue | None:
    """A column with nested cells (any column: such a cell cannot be read as one value)."""
    rows = nested_rows(s)
    if not len(rows):
        return None
    kind = type(s.iloc[int(rows[0])]).__name__
    return ColumnIssue(
        name,
        f"{name} holds nested values ({kind}) instead of one value per cell",
        rows,
        f"flatten the column into one value per patient, or exclude: [{name}] in the column map",
    )


def _is_text(s: pd.Series) -> bool:
    return (
        s.dtype == object
        or pd.api.types.is_string_dtype(s)
        or isinstance(s.dtype, pd.CategoricalDtype)
    )


def _non_missing_text(s: pd.Series) -> pd.Series:
    text = s.dropna().map(lambda v: str(v).strip())
    return text[text != ""]


def looks_decimal_comma(values: pd.Series) -> np.ndarray:
    """Mask of text values written as numbers with a decimal comma ("0,5", "-12,75")."""
    return values.map(lambda v: bool(_DECIMAL_COMMA.match(str(v)))).to_numpy(dtype=bool)


def decimal_comma_hint(column: str) -> str:
    return (
        f"{column} looks like numbers with a decimal comma: set decimal: ',' in the column map "
        "(or export with a decimal point)"
    )


def free_column_issues(
    df: pd.DataFrame, columns: Iterable[str], max_levels: int = MAX_LEVELS
) -> list[ColumnIssue]:
    """Problems of the free covariates ``columns`` of ``df`` (columns the schema does not name).

    Nested cells are reported by the caller for every column; here: all missing, decimal commas,
    numbers mixed with text, and text with too many distinct values.
    """
    out = []
    for name in columns:
        s = df[name]
        issue = _free_column_issue(name, s, max_levels)
        if issue is not None:
            out.append(issue)
    return out


def all_missing_issue(name: str, s: pd.Series) -> ColumnIssue | None:
    """A covariate with no value for any patient: nothing to adjust for, and nothing to impute."""
    if len(s) == 0:
        return None
    present = s.notna()
    if _is_text(s):
        present &= s.map(lambda v: str(v).strip() != "").astype(bool)
    if present.any():
        return None
    return ColumnIssue(
        name,
        f"{name} is missing for every patient",
        np.array([], dtype=int),
        f"drop the column, or exclude: [{name}] in the column map",
    )


def _free_column_issue(name: str, s: pd.Series, max_levels: int) -> ColumnIssue | None:
    missing = all_missing_issue(name, s)
    if missing is not None or not _is_text(s):
        return missing
    if len(nested_rows(s)):
        return None  # reported by nested_issue
    text = _non_missing_text(s)
    if text.empty:
        return None
    numeric = pd.to_numeric(text, errors="coerce").notna().to_numpy()
    comma = looks_decimal_comma(text)
    other = ~numeric & ~comma
    positions = s.index.get_indexer(text.index)
    if comma.any() and not other.any():
        return ColumnIssue(
            name,
            f"{name} is not a number (found {quoted_examples(text[comma])})",
            positions[comma],
            decimal_comma_hint(name),
        )
    if (numeric | comma).mean() >= 0.5 and other.any():
        return ColumnIssue(
            name,
            f"{name} is mostly numbers but some rows hold text (found "
            f"{quoted_examples(text[other])})",
            positions[other],
            "correct or blank these values (blank = missing), or map them with values: in the "
            "column map",
        )
    n_levels = int(text.nunique())
    every_row_differs = n_levels == len(text) and len(text) >= MIN_ROWS_FOR_UNIQUE
    if n_levels > max_levels or (every_row_differs and n_levels > 1):
        why = "every value differs (an identifier or free text?)" if every_row_differs else ""
        return ColumnIssue(
            name,
            f"{name} is text with {n_levels} distinct values in {len(text)} rows: too many "
            f"categories for a covariate (at most {max_levels}){'; ' + why if why else ''}",
            np.array([], dtype=int),
            f"exclude: [{name}] in the column map, or recode it into a few categories "
            "(values: in the column map; max_levels raises the limit)",
        )
    return None


# --------------------------------------------------------------------------------------------
# Hints: column-map entries for known recodable patterns

_SEX_CODES = {"m": "male", "f": "female", "man": "male", "woman": "female", "w": "female"}
_TRUE_WORDS = {"y", "j", "ja", "si", "oui", "t", "present", "positive", "pos", "+", "x"}
_FALSE_WORDS = {"n", "nein", "non", "f", "absent", "negative", "neg", "-"}


def _yaml_key(value: str) -> str:
    """A code as it should be written as a YAML key (quoted where YAML would change it)."""
    if value.casefold() in {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}:
        return f'"{value}"'
    return value


def recode_hint(column: str, kind: str, found: Iterable[object]) -> str:
    """A suggested ``values:`` entry for codes a known column cannot read, or "" without one.

    Sex as 1/2 (codebooks differ on which is which, so the user must check), M/F; booleans as
    Y/N, present/absent, +/-.
    """
    codes = sorted({str(v).strip() for v in found})[:6]
    if not codes:
        return ""
    if kind == "sex":
        known = {c: _SEX_CODES.get(c.casefold()) for c in codes}
        if all(known.values()):
            pairs = ", ".join(f"{_yaml_key(c)}: {v}" for c, v in known.items())
            return f"recode in the column map: values: {{{column}: {{{pairs}}}}}"
        pairs = ", ".join(f"{_yaml_key(c)}: <female|male>" for c in codes)
        return (
            f"recode in the column map: values: {{{column}: {{{pairs}}}}} "
            "(check your codebook for which code is which)"
        )
    if kind == "bool":
        mapped = {
            c: "true" if c.casefold() in _TRUE_WORDS else "false"
            for c in codes
            if c.casefold() in _TRUE_WORDS | _FALSE_WORDS
        }
        if mapped:
            pairs = ", ".join(f"{_yaml_key(c)}: {v}" for c, v in mapped.items())
            return f"recode in the column map: values: {{{column}: {{{pairs}}}}}"
        pairs = ", ".join(f"{_yaml_key(c)}: <true|false>" for c in codes)
        return f"recode in the column map: values: {{{column}: {{{pairs}}}}}"
    return ""


def rename_hint(name: str, present: Iterable[str]) -> str:
    """ "did you mean 'Age'?" for a missing canonical column, with the column-map entry."""
    candidates = [str(c) for c in present]
    folded = {c.casefold().replace(" ", "_").replace("-", "_"): c for c in candidates}
    match = folded.get(name)
    if match is None:
        close = difflib.get_close_matches(name, list(folded), n=1, cutoff=0.8)
        match = folded[close[0]] if close else None
    if match is None or match == name:
        return ""
    return f"did you mean {match!r}? map it: columns: {{{match}: {name}}}"


def rename_suggestions(present: Iterable[str], known: Iterable[str]) -> list[str]:
    """Notes for columns that look like a known column under another spelling (``ECOG``,
    ``Sex``): such a column would be used as an unchecked free covariate."""
    columns = [str(c) for c in present]
    have = set(columns)
    notes = []
    for name in known:
        if name in have:
            continue
        hint = rename_hint(name, [c for c in columns if c not in set(known)])
        if hint:
            notes.append(f"{name} is not in the file; {hint} (so its rules are checked)")
    return notes


def unsafe_text(value: str) -> bool:
    """A category value that could act as a spreadsheet formula (starts with =, @, a tab or CR, or
    with + or - not followed by a number), HTML markup (a tag), or matplotlib math (two $)."""
    text = value.strip()
    if not text:
        return False
    if text[0] in "=@" or value[:1] in ("\t", "\r"):
        return True
    if text[0] in "+-" and not _SIGNED_NUMBER.match(text):
        return True
    return bool(_MARKUP.search(text)) or text.count("$") >= 2


def unsafe_text_issue(name: str, s: pd.Series) -> ColumnIssue | None:
    """Category values that are formulas, markup or math (see ``unsafe_text``)."""
    if not _is_text(s) or len(nested_rows(s)):
        return None
    text = s.dropna().map(str)
    bad = text.map(unsafe_text).to_numpy(dtype=bool)
    if not bad.any():
        return None
    return ColumnIssue(
        name,
        f"{name} has values that read as spreadsheet formulas, HTML or math (found "
        f"{quoted_examples(text[bad])})",
        s.index.get_indexer(text.index[bad]),
        "category values must be plain words; recode them with values: in the column map",
    )
