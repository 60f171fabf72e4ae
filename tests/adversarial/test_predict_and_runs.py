"""Attacks on run folders and ``hte predict`` (issue 16 items 5 and 9, issue 15 item 4), each with
the clear error expected and a check that nothing was written or lost:

- tampered and foreign model files, another run's ``models/`` copied in, an edited
  config.resolved.yaml, a list manifest and a non-string signature: refused with a plain message,
  no effects file written;
- ids that a spreadsheet would run as formulas: quoted in the CSV ``hte predict`` writes;
- runs interrupted (SIGINT, SIGKILL) or failing: no folder that looks finished, ``hte runs`` says
  which state each folder is in, readers skip unfinished folders, a rerun writes a complete one;
- a sweep interrupted between cells and resumed: no cell lost or counted twice.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest
from typer.testing import CliRunner

from hte.cli import app

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # dask workers get the stub cell

ROOT = Path(__file__).resolve().parents[2]
HTE = str(Path(sys.executable).with_name("hte"))
TINY = """\
name: tiny
data: {{source: synthetic, n: {n}}}
outcomes:
  os: {{enabled: true, survival_horizon: 12, rmst_horizon: null}}
  crs: {{enabled: true, any_grade: true, grade3: false}}
estimators:
  - {{name: cox_interaction, kind: cox_interaction}}
  - {{name: logistic_interaction, kind: logistic_interaction, params: {{penalty: 1.0}}}}
evaluation: {{robustness: false}}
explanation: {{shap: false, subgroup_rules: false}}
seeds: {{global: {seed}}}
"""


def _config(folder: Path, n: int = 300, seed: int = 1) -> Path:
    path = folder / f"tiny_{n}_{seed}.yaml"
    path.write_text(TINY.format(n=n, seed=seed))
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hte_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="module")
def two_runs(home, tmp_path_factory):
    """Two finished runs of the same experiment with different seeds (different models)."""
    from hte.config import load_config
    from hte.pipeline import run_experiment

    folder = tmp_path_factory.mktemp("runs")
    runs = []
    for seed in (1, 2):
        config = load_config(_config(folder, seed=seed))
        runs.append(run_experiment(config, output_root=folder / "out", progress=False).run_dir)
    return runs


@pytest.fixture()
def mine(two_runs, tmp_path):
    """A copy of the first run to attack."""
    target = tmp_path / "tiny" / two_runs[0].name
    shutil.copytree(two_runs[0], target)
    return target


@pytest.fixture(scope="module")
def patients(tmp_path_factory) -> Path:
    from hte.data.simulate import simulate_cohort

    path = tmp_path_factory.mktemp("new") / "new.csv"
    cohort = simulate_cohort(8, seed=12)
    cohort = cohort.drop(columns=[c for c in cohort.columns if c.startswith("true_")])
    cohort["patient_id"] = [
        "=cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        '=HYPERLINK("http://x")',
        "-cmd",
        "p7",
        "p8",
    ]
    cohort.to_csv(path, index=False)
    return path


def _predict(run_dir: Path, patients: Path, out: Path):
    return CliRunner().invoke(app, ["predict", str(run_dir), str(patients), "--out", str(out)])


def _refused(result, out: Path, message: str) -> None:
    text = " ".join(result.output.split())
    assert result.exit_code == 1, text
    assert "cannot predict" in text and message in text, text
    assert "Traceback" not in text and isinstance(result.exception, SystemExit)
    assert not out.exists()  # nothing written


# --------------------------------------------------------------------------------------------------
# Model files and run state


def test_untouched_run_predicts(mine, patients, tmp_path):
    out = tmp_path / "effects.csv"
    result = _predict(mine, patients, out)
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 8


def test_tampered_model_file_is_refused(mine, patients, tmp_path):
    model = mine / "models" / "decision" / "cox_interaction__survival.joblib"
    model.write_bytes(model.read_bytes() + b"\0")
    out = tmp_path / "effects.csv"
    _refused(_predict(mine, patients, out), out, "has changed since `hte run` wrote it")


def test_foreign_model_file_is_refused(mine, two_runs, patients, tmp_path):
    name = Path("models/decision/cox_interaction__survival.joblib")
    shutil.copy(two_runs[1] / name, mine / name)  # another run's model under the same name
    out = tmp_path / "effects.csv"
    _refused(_predict(mine, patients, out), out, "has changed since `hte run` wrote it")


def test_models_folder_copied_from_another_run_is_refused(mine, two_runs, patients, tmp_path):
    shutil.rmtree(mine / "models")
    shutil.copytree(two_runs[1] / "models", mine / "models")  # signed, but for the other run
    out = tmp_path / "effects.csv"
    _refused(_predict(mine, patients, out), out, "copied from another run")


def test_edited_alpha_in_the_resolved_config_is_refused(mine, patients, tmp_path):
    config = mine / "config.resolved.yaml"
    text = config.read_text()
    assert "alpha: 0.05" in text
    config.write_text(text.replace("alpha: 0.05", "alpha: 0.2"))
    out = tmp_path / "effects.csv"
    _refused(_predict(mine, patients, out), out, "config.resolved.yaml is not the file")


def test_the_app_refuses_models_that_are_not_this_runs(mine, two_runs):
    from hte.app.state import AppContext

    shutil.rmtree(mine / "models")
    shutil.copytree(two_runs[1] / "models", mine / "models")
    context = AppContext.create(mine)
    with pytest.raises(Exception, match="copied from another run"):
        context.explorer()


@pytest.mark.parametrize(
    "text",
    [
        '["files", "signature"]',
        '{"files": {}, "signature": 12345}',
        '{"files": {}, "signature": null}',
        '"just a string"',
        "{not json",
    ],
)
def test_malformed_manifest_gets_a_plain_message(mine, patients, tmp_path, text):
    (mine / "models" / "manifest.json").write_text(text)
    out = tmp_path / "effects.csv"
    _refused(_predict(mine, patients, out), out, "not a manifest written by hte")


def test_formula_like_ids_are_quoted_in_the_csv(two_runs, patients, tmp_path):
    out = tmp_path / "effects.csv"
    assert _predict(two_runs[0], patients, out).exit_code == 0
    ids = pd.read_csv(out, dtype={"patient_id": str}, keep_default_na=False)["patient_id"]
    assert list(ids[:6]) == [
        "'=cmd|' /C calc'!A0",
        "'+1+1",
        "'-2+3",
        "'@SUM(A1:A2)",
        '\'=HYPERLINK("http://x")',
        "'-cmd",
    ]
    assert list(ids[6:]) == ["p7", "p8"]
    numbers = pd.read_csv(out).select_dtypes("number")
    assert (numbers.lt(0).any()).any()  # negative effects stay numbers, unquoted
    parquet = tmp_path / "effects.parquet"
    assert _predict(two_runs[0], patients, parquet).exit_code == 0
    assert pd.read_parquet(parquet)["patient_id"].iloc[0] == "=cmd|' /C calc'!A0"


def test_tab_and_carriage_return_cells_are_quoted_too():
    from hte.pipeline.predict import neutralize_formulas

    frame = pd.DataFrame({"patient_id": ["\tx", "\rx", "ok", None], "e": [-1.0, 2.0, 0.0, 1.0]})
    out = neutralize_formulas(frame)
    assert list(out["patient_id"][:3]) == ["'\tx", "'\rx", "ok"] and pd.isna(out["patient_id"][3])
    assert list(out["e"]) == [-1.0, 2.0, 0.0, 1.0]


# --------------------------------------------------------------------------------------------------
# Interrupted and failed runs


def _hte_run(config: Path, root: Path, home: Path) -> subprocess.Popen:
    env = {**os.environ, "HTE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [HTE, "run", str(config), "--output-root", str(root), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _wait_for_stage(root: Path, stage: str, proc: subprocess.Popen, timeout: float = 240) -> Path:
    """The partial folder once its run.log shows ``stage`` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for log in root.glob("tiny/*.partial*/run.log"):
            if stage in log.read_text(encoding="utf-8"):
                return log.parent
        time.sleep(0.05)
    raise AssertionError(f"stage {stage!r} not reached")


def _runs(root: Path) -> list[tuple[str, str]]:
    from hte.runs import list_runs

    return [(p.name, state) for p, state in list_runs(root)]


@pytest.mark.parametrize("stage", ["cohort", "logistic_interaction"])
def test_ctrl_c_stops_cleanly_and_leaves_no_run_folder(home, tmp_path, stage):
    root = tmp_path / "out"
    proc = _hte_run(_config(tmp_path, n=800), root, home)
    _wait_for_stage(root, stage, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert _runs(root) == []  # the unfinished folder was removed


def test_a_lost_ctrl_c_still_stops_the_run_at_its_next_stage(home, tmp_path, monkeypatch):
    """A KeyboardInterrupt raised while a finalizer runs is dropped by Python ("Exception ignored
    in ..."); the Ctrl-C handler also calls request_stop, so the run stops at its next stage and
    leaves no folder. Simulated: the cohort stage requests a stop and nothing raises."""
    import hte.pipeline.run as run_module
    from hte.config import load_config
    from hte.pipeline import run_experiment

    original = run_module.prepare_cohort

    def cohort_then_lost_interrupt(*args, **kwargs):
        out = original(*args, **kwargs)
        run_module.request_stop()
        return out

    monkeypatch.setattr(run_module, "prepare_cohort", cohort_then_lost_interrupt)
    root = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(load_config(_config(tmp_path)), output_root=root, progress=False)
    assert _runs(root) == []
    monkeypatch.setattr(run_module, "prepare_cohort", original)  # a new run starts unstopped
    result = run_experiment(load_config(_config(tmp_path)), output_root=root, progress=False)
    assert _runs(root) == [(result.run_dir.name, "complete")]


def test_killed_run_leaves_only_an_incomplete_folder_and_a_rerun_completes(home, tmp_path):
    from hte.app.run_view import newest_run

    root = tmp_path / "out"
    config = _config(tmp_path, n=800)
    proc = _hte_run(config, root, home)
    partial = _wait_for_stage(root, "logistic_interaction", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _runs(root) == [(partial.name, "incomplete")]
    assert partial.name.endswith(".partial")
    # every reader ignores it
    assert newest_run(root, "tiny") is None
    result = CliRunner().invoke(app, ["report", str(partial)])
    assert result.exit_code == 1 and "not a finished run (state: incomplete" in " ".join(
        result.output.split()
    )
    listing = CliRunner().invoke(app, ["runs", str(root)])
    assert listing.exit_code == 0 and "incomplete" in listing.output
    # a rerun writes a complete folder beside it
    rerun = _hte_run(config, root, home)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    states = dict(_runs(root))
    finished = [name for name, state in states.items() if state == "complete"]
    assert len(finished) == 1 and not finished[0].endswith(".partial")
    assert newest_run(root, "tiny").name == finished[0]
    assert (root / "tiny" / finished[0] / "report.html").is_file()
    listing = CliRunner().invoke(app, ["runs", str(root)])
    assert "2 run folder(s): 1 complete, 1 incomplete, 0 failed" in listing.output


def test_a_failing_run_is_listed_as_failed_and_never_read(home, tmp_path, monkeypatch):
    import hte.pipeline.run as pipeline_run
    from hte.config import load_config
    from hte.pipeline import run_experiment

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pipeline_run, "write_figures", disk_full)
    root = tmp_path / "out"
    with pytest.raises(OSError, match="No space left"):
        run_experiment(load_config(_config(tmp_path)), output_root=root, progress=False)
    [(name, state)] = _runs(root)
    assert state == "failed" and name.endswith(".partial")
    listing = CliRunner().invoke(app, ["runs", str(root)])
    assert "failed" in listing.output and "No space left on device" in listing.output
    from hte.pipeline import PredictError, load_run_config

    with pytest.raises(PredictError, match=r"not a finished run.*state: failed"):
        load_run_config(root / "tiny" / name)


# --------------------------------------------------------------------------------------------------
# A sweep interrupted between cells


def _stub_cell(config_dict: dict, cell: dict) -> list[dict]:
    return [{**cell, "target": "crs", "mse": float(cell["seed"])}]


def test_sweep_interrupted_between_cells_resumes_without_loss_or_double_count(
    tmp_path, monkeypatch
):
    import hte.sweep as sweep
    from hte.config import load_config

    path = tmp_path / "sweep.yaml"
    path.write_text(
        TINY.format(n=300, seed=1) + "sweep:\n  scenarios: [default]\n  sizes: [300]"
        "\n  estimators: [logistic_interaction]\n  seeds: [1, 2, 3, 4, 5, 6]\n"
    )
    config = load_config(path)
    out = tmp_path / "sweep"
    real_append = sweep._append_done
    written = []

    def append_then_interrupt(handle, key, cell, rows):
        real_append(handle, key, cell, rows)
        written.append(key)
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C between the third and the fourth cell

    monkeypatch.setattr(sweep, "_append_done", append_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(config, workers=1, out_dir=out, cell_fn=_stub_cell)
    assert len(sweep.read_done(out)) == 3
    with (out / sweep.DONE_FILE).open("a") as fh:  # a fourth record cut short by a kill
        fh.write('{"key": "abc", "cell": {"scen')
    monkeypatch.setattr(sweep, "_append_done", real_append)
    result = sweep.run_sweep(config, workers=1, out_dir=out, cell_fn=_stub_cell)
    assert (result.n_cells, result.n_skipped, result.n_run, result.n_failed) == (6, 3, 3, 0)
    assert sorted(result.table["seed"]) == [1, 2, 3, 4, 5, 6]  # each cell once
    results = pd.read_csv(out / sweep.RESULTS_FILE)
    assert len(results) == 6 and results["seed"].is_unique
    lines = [json.loads(x) for x in (out / sweep.DONE_FILE).read_text().splitlines()[:3]]
    assert [rec["key"] for rec in lines] == written  # the first three kept as written
