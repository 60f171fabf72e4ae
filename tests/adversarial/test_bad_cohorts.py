"""Adversarial cohort files: each bad input is refused with the column, the rule and the rows (or
the file-level reason), by `hte validate`, by `load_cohort` and by `hte run`'s pre-flight; and
nothing is written (no run folder) or lost (the input file is unchanged).

Each case is one real, distinct input built from a small synthetic cohort (no true_* columns, as
a registry export would look). The oversized file is simulated with a small configured limit.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from hte.cli import app
from hte.config import ConfigError, load_config
from hte.data.column_map import ColumnMap
from hte.data.load import CohortFileError, load_cohort
from hte.data.schema import CohortValidationError
from hte.data.simulate import simulate_cohort
from hte.pipeline import run_experiment

runner = CliRunner()


def base_cohort(n: int = 120) -> pd.DataFrame:
    """A valid cohort as a registry would export it (the simulator's columns, no truth)."""
    df = simulate_cohort(n, seed=3)
    return df[[c for c in df.columns if not c.startswith("true_")]].copy()


def _csv(df: pd.DataFrame, path: Path, **kwargs) -> Path:
    df.to_csv(path, index=False, **kwargs)
    return path


def _set(df: pd.DataFrame, column: str, rows: list[int], value: object) -> pd.DataFrame:
    out = df.copy()
    out[column] = out[column].astype(object)
    out.loc[rows, column] = value
    return out


@dataclass(frozen=True)
class Case:
    """A bad input: how to write it, and what the refusal must say."""

    build: Callable[[Path], Path]  # writes the file into a folder, returns its path
    column: str | None  # the column the problem names (None: a file-level refusal)
    rule: str  # words the rule (or the file-level message) must contain
    rows: str | None = None  # e.g. "rows 3, 8" (1-based data rows)
    column_map: dict = field(default_factory=dict)
    max_file_mb: float = 100.0
    validate_passes: bool = False  # a cohort that is valid but that the run cannot analyse


def _df_case(make: Callable[[pd.DataFrame], pd.DataFrame], name: str = "cohort.csv"):
    def build(folder: Path) -> Path:
        return _csv(make(base_cohort()), folder / name)

    return build


def _bytes_case(content: bytes, name: str = "cohort.csv"):
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path

    return build


def _parquet_case(make: Callable[[pd.DataFrame], pd.DataFrame]):
    def build(folder: Path) -> Path:
        path = folder / "cohort.parquet"
        make(base_cohort()).to_parquet(path, index=False)
        return path

    return build


def _bom_duplicate_ids(folder: Path) -> Path:
    df = base_cohort()
    df.loc[7, "patient_id"] = df.loc[2, "patient_id"]
    return _csv(df, folder / "cohort.csv", encoding="utf-8-sig")  # BOM before "patient_id"


def _semicolon_decimal_comma(folder: Path) -> Path:
    df = base_cohort()
    df["albumin"] = [f"{3.5 + 0.01 * i:.2f}".replace(".", ",") for i in range(len(df))]
    return _csv(df, folder / "cohort.csv", sep=";")


def _duplicate_header(folder: Path) -> Path:
    df = base_cohort()
    text = df.to_csv(index=False).replace(",ecog,", ",age,", 1)
    path = folder / "cohort.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _ragged_line(folder: Path) -> Path:
    df = base_cohort()
    lines = df.to_csv(index=False).splitlines()
    lines[5] += ",extra,fields"
    path = folder / "cohort.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _one_arm_short(folder: Path) -> Path:
    """Teclistamab followed at most 6 months; CAR-T much longer (a 12-month horizon)."""
    df = base_cohort(300)
    tec = df["treatment"] == "tec"
    df.loc[tec, "death"] = df.loc[tec, "death"] & (df.loc[tec, "os_months"] <= 6.0)
    df.loc[tec, "os_months"] = df.loc[tec, "os_months"].clip(upper=6.0)
    return _csv(df, folder / "cohort.csv")


def _no_deaths_in_tec(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(death=df["death"] & (df["treatment"] == "cart"))


CASES: dict[str, Case] = {
    "missing required column": Case(
        _df_case(lambda d: d.drop(columns="age")), "age", "required column age is missing"
    ),
    "renamed column Age": Case(
        _df_case(lambda d: d.rename(columns={"age": "Age"})), "age", "did you mean 'Age'"
    ),
    "duplicate column names": Case(_duplicate_header, None, "appear more than once: age"),
    "BOM and duplicate ids": Case(
        _bom_duplicate_ids, "patient_id", "patient_id must be unique", "rows 3, 8"
    ),
    "semicolon CSV with decimal commas": Case(
        _semicolon_decimal_comma, "albumin", "set decimal: ',' in the column map"
    ),
    "decimal comma in a schema lab": Case(
        _df_case(lambda d: _set(d, "ferritin", [4], "0,5")),
        "ferritin",
        "ferritin must be a finite number (found '0,5'); ferritin looks like numbers with a "
        "decimal comma",
        "row 5",
    ),
    "text among numbers": Case(
        _df_case(lambda d: d.assign(albumin=[3.5] * 117 + ["pending", "3.7", "haemolysed"])),
        "albumin",
        "albumin is mostly numbers but some rows hold text (found 'pending', 'haemolysed')",
        "rows 118, 120",
    ),
    "text in a numeric column": Case(
        _df_case(lambda d: _set(d, "age", [9, 10], "old")),
        "age",
        "age must be a finite number (found 'old')",
        "rows 10, 11",
    ),
    "NaN follow-up": Case(
        _df_case(lambda d: _set(d, "os_months", [0], np.nan)),
        "os_months",
        "os_months must not be missing",
        "row 1",
    ),
    "infinite follow-up": Case(
        _df_case(lambda d: _set(d, "os_months", [6], "inf")),
        "os_months",
        "os_months must be a finite number",
        "row 7",
    ),
    "negative follow-up": Case(
        _df_case(lambda d: _set(d, "os_months", [11], -2.0)),
        "os_months",
        "os_months must be 0-1200",
        "row 12",
    ),
    "ferritin 1e300": Case(
        _df_case(lambda d: _set(d, "ferritin", [2], 1e300)),
        "ferritin",
        "ferritin must be 0-1000000",
        "row 3",
    ),
    "oversized file (limit set to 1 kB)": Case(
        _df_case(lambda d: d), None, "above the limit of 0.001 MB", max_file_mb=0.001
    ),
    "formula injection in a category": Case(
        _df_case(lambda d: _set(d, "race", [3], "=cmd|' /C calc'!A0")),
        "race",
        "race has values that read as spreadsheet formulas, HTML or math",
        "row 4",
    ),
    "HTML in a category": Case(
        _df_case(lambda d: d.assign(site=["a", "b"] * 59 + ["<script>alert(1)</script>", "a"])),
        "site",
        "found '<script>alert(1)</script>'",
        "row 119",
    ),
    "matplotlib math in a category": Case(
        _df_case(lambda d: _set(d, "race", [0], "$\\alpha_{$")),
        "race",
        "read as spreadsheet formulas, HTML or math",
        "row 1",
    ),
    "unknown treatment code": Case(
        _df_case(lambda d: _set(d, "treatment", [5], "chemo")),
        "treatment",
        "treatment must be cart or tec (found 'chemo')",
        "row 6",
    ),
    "one arm only": Case(
        _df_case(lambda d: d.assign(treatment="tec", infusion_day=np.nan)),
        "treatment",
        "only one arm (0 cart, 120 tec)",
    ),
    "no deaths in one arm": Case(_df_case(_no_deaths_in_tec), "death", "no deaths in the tec arm"),
    "covariate missing for every patient": Case(
        _df_case(lambda d: d.assign(crp=np.nan)), "crp", "crp is missing for every patient"
    ),
    "list-valued Parquet column": Case(
        _parquet_case(lambda d: d.assign(lines=[[1, 2]] * len(d))),
        "lines",
        "lines holds nested values",
        "rows 1, 2, 3, 4, 5 and 115 more",
    ),
    "dict-valued Parquet column": Case(
        _parquet_case(lambda d: d.assign(labs=[{"ldh": 200.0, "b2m": 3.1}] * len(d))),
        "labs",
        "labs holds nested values",
    ),
    "unique free-text column": Case(
        _df_case(lambda d: d.assign(notes=[f"seen by dr {i}" for i in range(len(d))])),
        "notes",
        "notes is text with 120 distinct values in 120 rows",
    ),
    "binary content named .csv": Case(
        _bytes_case(b"\x01\x02\x00\xff\xfe" * 20), None, "binary content"
    ),
    "Excel workbook named .csv": Case(_bytes_case(b"PK\x03\x04" + b"\x00" * 64), None, "Excel"),
    "empty file": Case(_bytes_case(b""), None, "the file is empty"),
    "header only": Case(_df_case(lambda d: d.iloc[:0]), "(table)", "cohort has no rows"),
    "ragged CSV line": Case(_ragged_line, None, "cannot parse the CSV file"),
    "adolescent without a declared range": Case(
        _df_case(lambda d: _set(d, "age", [20], 15.0)), "age", "age must be 18-110", "row 21"
    ),
    "sex coded 1/2": Case(
        _df_case(lambda d: d.assign(sex=d["sex"].map({"male": 1, "female": 2}))),
        "sex",
        "sex must be female or male (found",
    ),
    "CRS grade without CRS": Case(
        _df_case(lambda d: _set(_set(d, "crs", [1], False), "crs_grade", [1], 3)),
        "crs_grade",
        "crs_grade must be >= 1 exactly when crs is True",
        "row 2",
    ),
    "unknown unit in the column map": Case(
        _df_case(lambda d: d),
        None,
        "unknown unit 'furlongs'",
        column_map={"units": {"crp": "furlongs"}},
    ),
    "column map names a column the file lacks": Case(
        _df_case(lambda d: d),
        "albumin",
        "column 'albumin' of the column map (values) is not in the file",
        column_map={"values": {"albumin": {"low": 1}}},
    ),
    "one arm followed 6 months, horizon 12": Case(
        _one_arm_short,
        None,
        "horizon 12 months is beyond the longest follow-up in the tec arm (6.00 months)",
        validate_passes=True,
    ),
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request, tmp_path) -> tuple[Case, Path]:
    spec = CASES[request.param]
    folder = tmp_path / "input"
    folder.mkdir()
    return spec, spec.build(folder)


def test_loader_names_column_rule_and_rows(case):
    spec, path = case
    if spec.validate_passes:
        load_cohort(path, ColumnMap.model_validate(spec.column_map), max_file_mb=spec.max_file_mb)
        return
    try:
        column_map = ColumnMap.model_validate(spec.column_map)
    except ValueError as exc:  # a bad column map is refused when it is read
        assert spec.rule in str(exc)
        return
    with pytest.raises((CohortFileError, CohortValidationError)) as info:
        load_cohort(path, column_map, max_file_mb=spec.max_file_mb)
    if spec.column is None:
        assert isinstance(info.value, CohortFileError) and spec.rule in str(info.value)
        return
    problems = [p for p in info.value.problems if p.column == spec.column]
    assert problems, f"no problem names {spec.column}: {info.value}"
    text = _flat(" | ".join(str(p) for p in problems))
    assert _flat(spec.rule) in text
    if spec.rows is not None:
        assert spec.rows in text


def test_run_refuses_before_writing_anything_and_keeps_the_input(case, tmp_path, monkeypatch):
    spec, path = case
    monkeypatch.setenv("HTE_HOME", str(tmp_path / "home"))
    before = _sha(path)
    config = {
        "name": "adversarial",
        "data": {
            "source": "file",
            "path": str(path),
            "columns": spec.column_map,
            "max_file_mb": spec.max_file_mb,
        },
        "outcomes": {"os": {"survival_horizon": 12, "rmst_horizon": None}},
        "estimators": [{"kind": "cox_interaction"}],
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "runs"
    with pytest.raises(ConfigError) as info:
        run_experiment(load_config(config_path), output_root=out, progress=False)
    assert _flat(spec.rule) in _flat(str(info.value))
    assert not out.exists(), "a run folder was written for a refused input"
    assert _sha(path) == before and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_hte_validate_exits_1_and_names_the_column(case):
    spec, path = case
    args = ["validate", str(path), "--max-file-mb", str(spec.max_file_mb)]
    if spec.column_map:
        map_path = path.parent.parent / "map.yaml"
        map_path.write_text(yaml.safe_dump(spec.column_map), encoding="utf-8")
        args += ["--columns", str(map_path)]
    result = runner.invoke(app, args, env={"COLUMNS": "250"})
    if spec.validate_passes:
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    text = _flat(result.output)
    if spec.column is not None and spec.column != "(table)":
        assert f"│ {spec.column} │" in text or spec.column in text
    first_words = _flat(spec.rule).split(" (")[0][:30]
    assert _flat(first_words) in text.replace("│ ", "")


def test_at_least_25_distinct_inputs():
    assert len(CASES) >= 25
