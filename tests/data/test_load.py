"""Reading cohort files: CSV and Parquet round trips, unreadable files refused with a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hte.data.column_map import ColumnMap
from hte.data.load import CohortFileError, load_cohort, read_table
from hte.data.schema import CohortValidationError, validate_cohort


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_gives_back_the_validated_cohort(tmp_path, cohort, suffix):
    path = tmp_path / f"cohort{suffix}"
    if suffix == ".csv":
        cohort.to_csv(path, index=False)  # booleans come back as the text True/False
    else:
        cohort.to_parquet(path)
    loaded = load_cohort(path)
    pd.testing.assert_frame_equal(loaded, validate_cohort(cohort))


def test_csv_with_missing_values_round_trips(tmp_path, cohort):
    cohort = cohort.astype({"gain_1q": object, "ecog": float})
    cohort.loc[[1, 4], "gain_1q"] = None
    cohort.loc[[2], "ecog"] = np.nan
    path = tmp_path / "cohort.csv"
    cohort.to_csv(path, index=False)
    loaded = load_cohort(path)
    assert len(loaded) == len(cohort)
    assert loaded["gain_1q"].isna().tolist() == cohort["gain_1q"].isna().tolist()
    assert loaded["ecog"].dtype == "Int64" and loaded["ecog"].isna().sum() == 1


def test_ids_keep_leading_zeros_even_when_renamed(tmp_path, cohort):
    cohort["patient_id"] = [f"{i:03d}" for i in range(len(cohort))]
    path = tmp_path / "cohort.csv"
    cohort.rename(columns={"patient_id": "MRN"}).to_csv(path, index=False)
    loaded = load_cohort(path, ColumnMap(columns={"MRN": "patient_id"}))
    assert loaded["patient_id"].tolist() == cohort["patient_id"].tolist()


def test_load_with_column_map_from_days_and_numeric_codes(tmp_path, cohort):
    export = cohort.assign(
        arm=cohort["treatment"].map({"cart": 1, "tec": 0}),
        os_days=cohort["os_months"] * 30.4375,
    ).drop(columns=["treatment", "os_months"])
    path = tmp_path / "export.csv"
    export.to_csv(path, index=False)
    cmap = ColumnMap(
        columns={"arm": "treatment", "os_days": "os_months"},
        treatment_codes={"1": "cart", "0": "tec"},
        time_unit="days",
    )
    loaded = load_cohort(path, cmap)
    assert loaded["treatment"].tolist() == cohort["treatment"].tolist()
    # 30.4375 days per month is DAYS_PER_MONTH exactly; only CSV/float round-off remains
    np.testing.assert_allclose(loaded["os_months"], cohort["os_months"], rtol=1e-12)


def test_rows_are_never_dropped_for_bad_lines(tmp_path, cohort):
    path = tmp_path / "cohort.csv"
    cohort.to_csv(path, index=False)
    with path.open("a") as fh:
        fh.write("P999999,cart,1.0,True,extra,fields,too,many" + ",x" * 40 + "\n")
    with pytest.raises(CohortFileError, match="cannot parse the CSV file"):
        read_table(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\n\n  \n", "the file is empty"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a CSV file: its content is a PNG"),
        ("book.csv", b"PK\x03\x04\x14\x00\x06\x00", "zip archive or Excel workbook"),
        ("blob.csv", b"abc\x00\x01\x02def", "binary content"),
        (
            "cohort.xlsx",
            b"PK\x03\x04",
            "unsupported file type (.xlsx); expected a .csv or .parquet",
        ),
        ("cohort", b"a,b\n1,2\n", "unsupported file type (no extension)"),
        ("fake.parquet", b"a,b\n1,2\n", "not a Parquet file"),
        ("cut.parquet", b"PAR1\x00\x00", "cannot read the Parquet file"),
    ],
)
def test_unreadable_files_say_what_was_expected(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CohortFileError) as info:
        read_table(path)
    assert message in str(info.value)


def test_parquet_under_a_csv_name_is_recognised(tmp_path, cohort):
    path = tmp_path / "cohort.csv"
    cohort.to_parquet(path)
    with pytest.raises(CohortFileError, match="Parquet file"):
        read_table(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CohortFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(CohortFileError, match="not a file"):
        read_table(tmp_path)


def test_duplicate_header_names_are_refused(tmp_path):
    path = tmp_path / "cohort.csv"
    path.write_text("patient_id,age,age\nP1,50,51\n")
    with pytest.raises(CohortFileError, match="appear more than once: age"):
        read_table(path)


def test_header_only_file_is_a_validation_problem(tmp_path, cohort):
    path = tmp_path / "cohort.csv"
    cohort.iloc[:0].to_csv(path, index=False)
    with pytest.raises(CohortValidationError, match="cohort has no rows"):
        load_cohort(path)


def test_latin1_export_is_read(tmp_path, cohort):
    cohort["site"] = "Zürich"
    path = tmp_path / "cohort.csv"
    cohort.to_csv(path, index=False, encoding="latin-1")
    assert load_cohort(path)["site"].eq("Zürich").all()
