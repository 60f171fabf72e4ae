"""Reading cohort files (CSV or Parquet) and loading them as validated cohorts.

``load_cohort`` = ``read_table`` + the column map + ``validate_cohort``. Files that cannot be read
(missing, empty, binary content under a .csv name, another format) raise ``CohortFileError``
saying what was expected; readable files with bad content raise ``CohortValidationError``.
No row is ever dropped: a malformed CSV line is an error, not a skipped line.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from hte.data.column_map import ColumnMap
from hte.data.columns import PATIENT_ID
from hte.data.schema import validate_cohort
from hte.errors import HteError

CSV_SUFFIXES = (".csv",)
# Files above this size are refused before reading (pandas needs several times the file size in
# memory); raise it with read_table(max_file_mb=...), `hte validate --max-file-mb` or the
# config's data.max_file_mb on a machine that has the memory.
MAX_FILE_MB = 100.0
PARQUET_SUFFIXES = (".parquet", ".pq")
EXPECTED = "expected a .csv or .parquet file"
_SNIFF_BYTES = 8192

# Leading bytes of formats people save instead of CSV, to say what a file really is.
_MAGIC = {
    b"PAR1": "a Parquet file (name it .parquet)",
    b"PK\x03\x04": "a zip archive or Excel workbook (export it as CSV)",
    b"\xd0\xcf\x11\xe0": "an old Excel/Office file (export it as CSV)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"SQLite format 3": "an SQLite database",
}


class CohortFileError(HteError, ValueError):
    """A cohort file that cannot be read as a table: missing, empty, binary or of another type."""


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    suffix = "".join(path.suffixes) or "no extension"
    raise CohortFileError(f"unsupported file type ({suffix}); {EXPECTED}")


def _check_text(path: Path) -> None:
    """Refuse binary content under a CSV name, naming the format where it is recognisable."""
    with path.open("rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    if not head.strip():
        raise CohortFileError(
            f"the file is empty; {EXPECTED} with a header and one row per patient"
        )
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise CohortFileError(f"not a CSV file: its content is {what}; {EXPECTED}")
    if b"\x00" in head:
        raise CohortFileError(f"not a CSV file: it has binary content; {EXPECTED}")


def _read_csv(path: Path, text_columns: Iterable[str]) -> pd.DataFrame:
    _check_text(path)
    try:
        return _parse_csv(path, text_columns, "utf-8-sig")
    except UnicodeDecodeError:  # exports from older spreadsheet tools
        return _parse_csv(path, text_columns, "latin-1")


def _separator(path: Path, encoding: str) -> str:
    """ "," or, for exports from locales that write decimal commas, ";" (when the header line has
    semicolons and no comma)."""
    with path.open(encoding=encoding, newline="") as fh:
        header = fh.readline()
    return ";" if ";" in header and "," not in header else ","


def _parse_csv(path: Path, text_columns: Iterable[str], encoding: str) -> pd.DataFrame:
    try:
        sep = _separator(path, encoding)
        first = pd.read_csv(path, header=None, nrows=1, dtype=str, encoding=encoding, sep=sep)
        header = [str(h).strip() for h in first.iloc[0]]
        doubled = sorted({h for h in header if header.count(h) > 1})
        if doubled:
            raise CohortFileError(f"column names appear more than once: {', '.join(doubled)}")
        dtype = {c: str for c in text_columns if c in header}
        df = pd.read_csv(path, dtype=dtype, encoding=encoding, skipinitialspace=True, sep=sep)
    except pd.errors.EmptyDataError:
        raise CohortFileError(f"the file is empty; {EXPECTED}") from None
    except pd.errors.ParserError as exc:
        raise CohortFileError(f"cannot parse the CSV file: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != b"PAR1":
        what = "empty" if not head else "not a Parquet file (no PAR1 header)"
        raise CohortFileError(f"the file is {what}; {EXPECTED}")
    import pyarrow

    try:
        return pd.read_parquet(path)
    except (pyarrow.ArrowException, OSError, ValueError) as exc:  # corrupt or unsupported content
        raise CohortFileError(f"cannot read the Parquet file: {exc}") from None


def check_size(path: Path, max_file_mb: float | None = MAX_FILE_MB) -> None:
    """Refuse a file above ``max_file_mb`` megabytes (None: no limit) before reading it."""
    if max_file_mb is None:
        return
    size_mb = path.stat().st_size / 1e6
    if size_mb > max_file_mb:
        raise CohortFileError(
            f"the file is {size_mb:,.1f} MB, above the limit of {max_file_mb:g} MB; reading it "
            "needs several times that in memory. Raise the limit (hte validate --max-file-mb, "
            "data.max_file_mb in a config) if this machine has the memory"
        )


def read_table(
    path: str | Path,
    *,
    text_columns: Iterable[str] = (PATIENT_ID,),
    max_file_mb: float | None = MAX_FILE_MB,
) -> pd.DataFrame:
    """Read a .csv or .parquet file as it is (no renaming, no validation).

    ``text_columns`` are read from CSV as text, so ids such as "007" keep their leading zeros.
    A file above ``max_file_mb`` MB is refused before it is read (None: no limit). A CSV whose
    header is separated by semicolons (and has no comma) is read with ";".
    """
    path = Path(path)
    if not path.exists():
        raise CohortFileError(f"no such file: {path}")
    if not path.is_file():
        raise CohortFileError(f"not a file: {path}; {EXPECTED}")
    kind = _kind(path)
    check_size(path, max_file_mb)
    return _read_csv(path, text_columns) if kind == "csv" else _read_parquet(path)


def load_cohort(
    path: str | Path,
    column_map: ColumnMap | None = None,
    *,
    max_file_mb: float | None = MAX_FILE_MB,
) -> pd.DataFrame:
    """Read, map and validate a cohort file; every row comes back, or an error lists every problem.

    The column map renames, recodes and converts (``ColumnMap.apply``) and its declared ranges and
    ``max_levels`` replace the schema's defaults during validation.
    """
    id_column = PATIENT_ID
    if column_map is not None:
        id_column = next((k for k, v in column_map.columns.items() if v == PATIENT_ID), PATIENT_ID)
    df = read_table(path, text_columns=(id_column,), max_file_mb=max_file_mb)
    if column_map is None:
        return validate_cohort(df)
    df = column_map.apply(df)
    return validate_cohort(df, ranges=column_map.range_bounds(), max_levels=column_map.max_levels)
