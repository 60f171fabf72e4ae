"""`hte simulate` and `hte calibrate` through the typer app."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from hte.cli import app

runner = CliRunner()


def test_simulate_writes_a_reproducible_file(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for path in (a, b):
        res = runner.invoke(app, ["simulate", "--n", "150", "--seed", "1", "--out", str(path)])
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()
    df = pd.read_csv(a)
    assert len(df) == 150 and "true_cate_rmst24" in df.columns


def test_simulate_scenario_and_parquet(tmp_path):
    out = tmp_path / "null.parquet"
    res = runner.invoke(
        app, ["simulate", "--n", "100", "--scenario", "null_effect", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert pd.read_parquet(out)["true_cate_surv12"].abs().max() < 1e-9


def test_simulate_rejects_unknown_scenario(tmp_path):
    res = runner.invoke(
        app, ["simulate", "--n", "10", "--scenario", "nope", "--out", str(tmp_path / "x.csv")]
    )
    assert res.exit_code == 2
    assert not (tmp_path / "x.csv").exists()


def test_calibrate_prints_every_target_and_the_bias():
    res = runner.invoke(app, ["calibrate", "--n", "5000", "--seed", "3"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # the console wraps long lines
    assert "overstates the CAR-T advantage" in text
    assert "26/26 targets" in text


def test_simulate_help_lists_every_scenario_and_bad_suffix_is_rejected(tmp_path):
    from hte.data.simulate import SCENARIOS

    text = " ".join(runner.invoke(app, ["simulate", "--help"]).output.split())
    for name in SCENARIOS:
        assert name in text
    res = runner.invoke(app, ["simulate", "--n", "10", "--out", str(tmp_path / "x.xlsx")])
    assert res.exit_code == 2
    assert not (tmp_path / "x.xlsx").exists()
