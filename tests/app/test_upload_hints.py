"""The upload check shows each problem's fix (the column-map hint), not only the broken rule."""

from hte.app import your_data
from hte.data.simulate import simulate_cohort


def test_a_renamed_column_points_at_the_column_the_file_has(tmp_path):
    path = tmp_path / "cohort.csv"
    simulate_cohort(60, seed=3).rename(columns={"age": "Age"}).to_csv(path, index=False)
    check = your_data.check_upload(path)
    assert not check.ok
    row = check.problems[check.problems["column"] == "age"].iloc[0]
    assert "required column age is missing" in row["rule"]
    assert "did you mean 'Age'? map it: columns: {Age: age}" in row["rule"]
