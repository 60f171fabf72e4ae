"""Sweeps on dask.distributed: a small grid on a 2-worker LocalCluster gives the tidy table, a failing
cell is recorded and the others complete, and a rerun skips finished cells (retrying failed ones).

Fixtures chain the runs so each test stays independent of test order: ``first_run`` (LocalCluster
with 2 workers, one cell made to fail), ``second_run`` (a rerun in a copy of its folder: only the
failed cell runs again, on a 1-worker cluster, with a stub cell function that marks it). A third
rerun needs no cluster at all.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from filelock import FileLock
from typer.testing import CliRunner

from hte.cli import app
from hte.config import load_config
from hte.runs import interval_level
from hte.sweep import (
    SweepError,
    _guarded_cell,
    cell_key,
    read_done,
    run_sweep,
    run_sweep_cell,
    sweep_cells,
)

# dask workers cannot import this test module: ship its cell functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SMALL = """\
name: tiny
data: {source: synthetic, n: 300}
outcomes:
  crs: {grade3: false}
estimators:
  - {name: cox_interaction, kind: cox_interaction}
  - {name: logistic_interaction, kind: logistic_interaction}
  - {name: t_learner_rsf, kind: t_learner, params: {base_learner: rsf}}
sweep:
  scenarios: [default, null_effect]
  sizes: [300]
  estimators: [cox_interaction, logistic_interaction]
  seeds: [1, 2]
"""
N_CELLS = 2 * 1 * 2 * 2
TARGETS = {"cox_interaction": {"survival", "rmst"}, "logistic_interaction": {"crs"}}
BROKEN = {"scenario": "null_effect", "size": 300, "estimator": "logistic_interaction", "seed": 2}


def _flaky_cell(config_dict: dict, cell: dict) -> list[dict]:
    """The real cell, except one cell that raises (as a crashing estimator would)."""
    if cell == BROKEN:
        raise ValueError("deliberately broken cell")
    return run_sweep_cell(config_dict, cell)


def _stub_cell(config_dict: dict, cell: dict) -> list[dict]:
    """A cheap stand-in that marks which cells a rerun ran (no estimator imports on the worker)."""
    return [{**cell, "target": "rerun", "mse": 0.0}]


def _must_not_run(config_dict: dict, cell: dict) -> list[dict]:
    raise AssertionError(f"cell {cell} was run although it is done")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return path


def _once(tmp_path_factory, name: str, make):
    """``make(folder)`` once per test session, shared by pytest-xdist workers (the first to take
    the lock runs it and pickles the result; the others load it), so no sweep runs twice."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return make(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent
    with FileLock(str(root / f"{name}.lock")):
        cached = root / f"{name}.pkl"
        if cached.exists():
            return pickle.loads(cached.read_bytes())
        result = make(root / name)
        cached.write_bytes(pickle.dumps(result))
        return result


@pytest.fixture(scope="module")
def first_run(config_path, tmp_path_factory):
    def make(folder: Path):
        config = load_config(config_path)
        return run_sweep(config, workers=2, out_dir=folder / "first", cell_fn=_flaky_cell)

    return _once(tmp_path_factory, "sweep_first", make)


@pytest.fixture(scope="module")
def second_run(first_run, config_path, tmp_path_factory):
    def make(folder: Path):
        shutil.copytree(first_run.out_dir, folder / "second")
        config = load_config(config_path)
        return run_sweep(config, workers=1, out_dir=folder / "second", cell_fn=_stub_cell)

    return _once(tmp_path_factory, "sweep_second", make)


def test_small_sweep_collects_one_scored_row_per_cell_and_target(first_run):
    table = first_run.table
    assert first_run.n_cells == N_CELLS and first_run.n_run == N_CELLS
    assert first_run.n_skipped == 0
    good = table[table["error"].isna()]
    cells = good.groupby(["scenario", "size", "estimator", "seed"])["target"].agg(set)
    assert len(cells) == N_CELLS - 1  # every cell but the broken one
    for (_, _, estimator, _), targets in cells.items():
        assert targets == TARGETS[estimator]
    assert good[["mse", "ate_bias", "fit_seconds"]].notna().all().all()
    assert np.isfinite(good[["mse", "ate_bias"]].to_numpy()).all()
    assert (good["n_analysed"] == 300).all()  # decision time zero: nobody dropped
    # The Cox interaction model tracks the true OS effect (correlation about 0.5 at n = 300 in
    # the cox_interaction bench rows); a harness scoring the wrong truth column or mixing up
    # patients would give a correlation near 0, so 0.3 separates the two with room for noise.
    cox = good[(good["estimator"] == "cox_interaction") & (good["scenario"] == "default")]
    assert len(cox) == 4 and (cox["correlation"] > 0.3).all()
    # the null scenario has a constant truth: normalized MSE undefined, not a number
    assert good.loc[good["scenario"] == "null_effect", "normalized_mse"].isna().all()


def test_a_failing_cell_is_recorded_with_its_error_and_the_others_complete(first_run):
    assert first_run.n_failed == 1
    failed = first_run.table[first_run.table["error"].notna()]
    assert len(failed) == 1
    row = failed.iloc[0]
    assert {k: row[k] for k in BROKEN} == BROKEN
    assert row["error"] == "ValueError: deliberately broken cell"
    summary = first_run.summary
    broken = summary[(summary["scenario"] == "null_effect") & (summary["target"] == "(cell)")]
    assert broken["failed"].tolist() == [1]
    assert summary.loc[summary["target"] != "(cell)", "failed"].eq(0).all()


def test_sweep_folder_holds_results_summary_and_done_cells(first_run):
    out = first_run.out_dir
    results = pd.read_csv(out / "results.csv")
    assert len(results) == len(first_run.table)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["runs"]) == {2, 1, 0}  # 2 seeds; the broken cell's scenario has 1 crs run
    assert "| scenario | size |" in (out / "summary.md").read_text()
    alpha = json.loads((out / "config.json").read_text())["evaluation"]["alpha"]
    assert f"whose {interval_level(alpha)} interval holds" in (out / "summary.md").read_text()
    done = read_done(out)
    assert len(done) == N_CELLS and sum(r["failed"] for r in done.values()) == 1


def test_rerun_retries_only_the_failed_cell(first_run, second_run):
    assert second_run.n_skipped == N_CELLS - 1 and second_run.n_run == 1
    assert second_run.n_failed == 0 and second_run.table["error"].isna().all()
    rerun = second_run.table[second_run.table["target"] == "rerun"]
    assert rerun[list(BROKEN)].to_dict("records") == [BROKEN]
    # cells done before are reused as recorded, not recomputed
    keys = ["scenario", "size", "estimator", "seed", "target"]
    before = first_run.table.dropna(subset=["mse"]).set_index(keys)["mse"]
    after = second_run.table.set_index(keys)["mse"]
    assert after.loc[before.index].equals(before)


def test_rerun_of_a_finished_sweep_skips_every_cell_without_running_any(
    second_run, config_path, tmp_path
):
    out = tmp_path / "third"
    shutil.copytree(second_run.out_dir, out)
    again = run_sweep(load_config(config_path), out_dir=out, cell_fn=_must_not_run)
    assert again.n_skipped == N_CELLS and again.n_run == 0 and again.n_failed == 0
    pd.testing.assert_frame_equal(again.table, second_run.table)


def test_cell_keys_ignore_the_grid_and_change_with_what_the_cell_uses(config_path):
    config = load_config(config_path)
    cell = sweep_cells(config)[0].as_dict()
    key = cell_key(config.model_dump(mode="json", by_alias=True), cell)

    def key_with(*overrides):
        other = load_config(config_path, list(overrides))
        return cell_key(other.model_dump(mode="json", by_alias=True), cell)

    assert key_with("sweep.seeds=[1, 2, 3]") == key  # a bigger grid keeps finished cells
    assert key_with("estimators.t_learner_rsf.params.base_learner=gbsa") == key  # not this cell
    assert key_with("outcomes.os.rmst_horizon=18") != key
    assert key_with("evaluation.alpha=0.1") != key


def test_cli_sweep_reports_cells_skipped(second_run, config_path, tmp_path):
    out = tmp_path / "cli"
    shutil.copytree(second_run.out_dir, out)
    result = CliRunner().invoke(
        app, ["sweep", str(config_path), "--out", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    assert f"{N_CELLS} cells: 0 run, {N_CELLS} already done, 0 failed" in result.output
    assert f"`hte sweep {config_path} --workers 2 --out {out}`" in (out / "summary.md").read_text()


def test_cli_sweep_needs_a_sweep_section():
    result = CliRunner().invoke(app, ["sweep", str(CONFIGS / "default.yaml")])
    assert result.exit_code == 1
    assert "has no sweep section" in result.output


def test_bench_config_is_the_bench_sweep_grid():
    """configs/bench.yaml and `python -m benchmarks.bench_synthetic` run the same grid."""
    from benchmarks.bench_synthetic import bench_config
    from hte.config import ESTIMATOR_KINDS

    shipped = load_config(CONFIGS / "bench.yaml")
    built = bench_config()
    assert sweep_cells(shipped) == sweep_cells(built)
    # 2 scenarios x 1 size x every estimator kind x 5 seeds
    assert len(sweep_cells(shipped)) == 2 * 1 * len(ESTIMATOR_KINDS) * 5
    dumped = [c.model_dump(mode="json", by_alias=True) for c in (shipped, built)]
    first = sweep_cells(shipped)[0].as_dict()
    assert cell_key(dumped[0], first) == cell_key(dumped[1], first)  # same results folder reuse


def test_a_config_without_sweep_section_is_a_clear_error(tmp_path):
    with pytest.raises(SweepError, match="has no sweep section"):
        run_sweep(load_config(CONFIGS / "default.yaml"), out_dir=tmp_path)


def _no_events_cell(config_dict: dict, cell: dict) -> list[dict]:
    raise ValueError("no events: every patient is censored")


def _buggy_cell(config_dict: dict, cell: dict) -> list[dict]:
    raise TypeError("unsupported operand type(s) for -: 'str' and 'float'")


def test_a_cell_failing_on_its_data_is_a_row_and_a_bug_in_a_cell_propagates():
    rows = _guarded_cell(_no_events_cell, {}, BROKEN)
    assert [r["error"] for r in rows] == ["ValueError: no events: every patient is censored"]
    assert {k: rows[0][k] for k in BROKEN} == BROKEN
    with pytest.raises(TypeError, match="unsupported operand"):
        _guarded_cell(_buggy_cell, {}, BROKEN)
