"""`hte validate`: "ok" and a summary for a good file; for each bad input of the acceptance list a
non-zero exit and a message naming the column and the rule."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from hte.cli import app


def _load_fixture_module():
    # tests/data/conftest.py holds the fixture cohort; load it by path under its own name, since
    # `import conftest` would find whichever conftest came first on sys.path
    path = Path(__file__).parent / "data" / "conftest.py"
    spec = importlib.util.spec_from_file_location("hte_tests_data_cohort", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_cohort = _load_fixture_module().make_cohort
runner = CliRunner()


def run(*args: str):
    """Invoke `hte validate` wide enough that table cells do not wrap inside the rule texts."""
    result = runner.invoke(app, ["validate", *args], env={"COLUMNS": "250"})
    text = re.sub(r"[ \t]+", " ", result.output)
    return result, text


def write_csv(tmp_path: Path, df: pd.DataFrame, name: str = "cohort.csv") -> str:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def cohort() -> pd.DataFrame:
    return make_cohort()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_valid_file_prints_ok_and_summary(tmp_path, cohort, suffix):
    path = tmp_path / f"cohort{suffix}"
    cohort.to_csv(path, index=False) if suffix == ".csv" else cohort.to_parquet(path)
    result, text = run(str(path))
    assert result.exit_code == 0, text
    assert text.startswith("ok")
    assert "cohort: 50 patients" in text and "deaths" in text and "reverse Kaplan-Meier" in text
    assert "infusion_day" in text  # missingness table (infusion is missing off CAR-T)


def test_column_map_option(tmp_path, cohort):
    export = cohort.rename(columns={"treatment": "arm", "os_months": "os_weeks"})
    export["arm"] = export["arm"].map({"cart": "CAR-T", "tec": "Tec"})
    export["os_weeks"] = export["os_weeks"] * 30.4375 / 7
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "columns:\n  arm: treatment\n  os_weeks: os_months\n"
        "treatment_codes:\n  CAR-T: cart\n  Tec: tec\ntime_unit: weeks\n"
    )
    result, text = run(write_csv(tmp_path, export), "--columns", str(mapping))
    assert result.exit_code == 0, text
    # without the map the same file fails, naming the missing columns
    result, text = run(write_csv(tmp_path, export))
    assert result.exit_code == 1
    assert "required column treatment is missing" in text


def test_bad_column_map_is_named(tmp_path, cohort):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("colums:\n  arm: treatment\n")
    result, text = run(write_csv(tmp_path, cohort), "--columns", str(mapping))
    assert result.exit_code == 1
    assert "bad column map" in text and "unknown key 'colums'" in text


def _broken(cohort: pd.DataFrame, kind: str) -> pd.DataFrame:
    df = cohort.copy()
    if kind == "missing column":
        return df.drop(columns="age")
    if kind == "wrong type":
        df["age"] = df["age"].astype(object)
        df.loc[[2, 6], "age"] = "unknown"
    elif kind == "zero time":
        df.loc[4, "os_months"] = 0.0
    elif kind == "negative time":
        df.loc[4, "os_months"] = -3.0
    elif kind == "duplicate ids":
        df.loc[9, "patient_id"] = df.loc[0, "patient_id"]
    elif kind == "unknown treatment code":
        df.loc[7, "treatment"] = "chemo"
    elif kind == "one arm":
        df = df.assign(treatment="tec", infusion_day=np.nan)
    elif kind == "no deaths":
        df["death"] = False
    return df


@pytest.mark.parametrize(
    ("kind", "column", "rule", "rows"),
    [
        ("missing column", "age", "required column age is missing", "(whole table)"),
        ("wrong type", "age", "age must be a finite number (found 'unknown')", "rows 3, 7"),
        ("negative time", "os_months", "os_months must be 0-1200", "row 5"),
        ("duplicate ids", "patient_id", "patient_id must be unique", "rows 1, 10"),
        ("unknown treatment code", "treatment", "treatment must be cart or tec", "row 8"),
        ("one arm", "treatment", "only one arm (0 cart, 50 tec)", "(whole table)"),
        ("no deaths", "death", "no deaths at all", "(whole table)"),
    ],
)
def test_bad_content_names_column_rule_and_rows(tmp_path, cohort, kind, column, rule, rows):
    result, text = run(write_csv(tmp_path, _broken(cohort, kind)))
    assert result.exit_code == 1, text
    assert "1 problem(s) in" in text
    line = next(line for line in text.splitlines() if rule in line)
    assert f"│ {column} │" in line and rows in line
    assert "ok" not in text.split()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("cohort.csv", b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV file"),
        ("cohort.csv", b"\x01\x02\x00\xff\xfe", "binary content"),
        ("cohort.xlsx", b"PK\x03\x04", "unsupported file type (.xlsx)"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result, text = run(str(path))
    assert result.exit_code == 1
    assert "cannot read" in text and message in text and "expected a .csv or .parquet" in text


def test_header_only_file(tmp_path, cohort):
    result, text = run(write_csv(tmp_path, cohort.iloc[:0]))
    assert result.exit_code == 1 and "cohort has no rows" in text


def test_missing_file(tmp_path):
    result, text = run(str(tmp_path / "nope.csv"))
    # rich wraps long temporary paths anywhere: compare with the line breaks folded
    assert result.exit_code == 1 and "no such file" in " ".join(text.split())


def test_three_problems_are_reported_together(tmp_path, cohort):
    df = _broken(_broken(_broken(cohort, "wrong type"), "negative time"), "duplicate ids")
    result, text = run(write_csv(tmp_path, df))
    assert result.exit_code == 1
    assert "3 problem(s) in" in text
    for rule in ("patient_id must be unique", "os_months must be 0-1200", "age must be a finite"):
        assert rule in text
