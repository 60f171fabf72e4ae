"""Real-data edge cases that used to stop the report or the app (issue 16, items 2 and 7):

- a failed fit: its row in the report's CATE table had 7 cells for 6 headers, so ``hte run`` exited
  1 after writing the run folder and ``hte report`` failed the same way;
- data text read as matplotlib mathtext: text like ``$\\alpha_{$`` in a covariate reaches figure
  labels (balance, SHAP) and stopped the report and the app at start. The schema now refuses such
  category values (``hte.data.column_rules``), but a column name carrying it is still accepted and
  reaches the same labels, so the figures must draw it literally.

One small file-cohort run (truth metrics off, as on real data) carries both: an extra covariate
named ``clinic $\\alpha_{$`` (levels ``north`` and ``south``), and a Cox fit made to fail.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lifelines.exceptions import ConvergenceError
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
MATH_LEVEL = "clinic $\\alpha_{$"  # a covariate name: its dummy's feature name carries the text

CONFIG = """\
name: edges
data: {{source: file, path: '{path}'}}
outcomes:
  os: {{enabled: true, survival_horizon: 12, rmst_horizon: null}}
  crs: {{enabled: true, any_grade: true, grade3: false}}
estimators:
  - {{name: cox_interaction, kind: cox_interaction}}
  - {{name: crs_causal_forest, kind: crs_causal_forest, params: {{n_estimators: 40}}}}
evaluation: {{truth_metrics: false, robustness: false}}
explanation: {{shap: true, n_patients_shap: 30, subgroup_rules: false}}
seeds: {{global: 5}}
"""


def _boom(self, *args, **kwargs):
    raise ConvergenceError("Convergence halted: the Cox fit did not converge (made to fail)")


def write_edge_cohort(folder: Path, n: int = 300) -> Path:
    """A synthetic cohort saved as a real file would be (no true_* columns) plus a covariate
    covariate whose name is mathtext-looking."""
    from hte.data.simulate import simulate_cohort

    cohort = simulate_cohort(n=n, seed=3)
    cohort = cohort.drop(columns=[c for c in cohort.columns if c.startswith("true_")])
    cohort[MATH_LEVEL] = ["south" if i % 3 == 0 else "north" for i in range(n)]
    path = folder / "cohort.csv"
    cohort.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory):
    """``hte run`` (in-process) on the edge cohort with the Cox fit failing: (result, run folder)."""
    import hte.estimators
    from hte.cli import app

    folder = tmp_path_factory.mktemp("edges")
    config = folder / "edges.yaml"
    config.write_text(CONFIG.format(path=write_edge_cohort(folder).as_posix()))
    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(folder / "home"))
    mp.setattr(hte.estimators.CoxInteractionModel, "fit", _boom)
    try:
        result = CliRunner().invoke(
            app, ["run", str(config), "--output-root", str(folder / "runs"), "--no-progress"]
        )
    finally:
        mp.undo()
    runs = sorted((folder / "runs" / "edges").iterdir())
    return result, runs[-1]


def test_run_with_a_failed_fit_writes_its_report(edge_run):
    result, run_dir = edge_run
    assert result.exit_code == 0, result.output + repr(result.exception)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "failed: ConvergenceError: Convergence halted" in html
    assert "crs_causal_forest" in html  # the other fit is reported as usual


def test_report_command_on_a_run_with_a_failed_fit(edge_run, tmp_path):
    from hte.cli import app

    out = tmp_path / "again.html"
    result = CliRunner().invoke(app, ["report", str(edge_run[1]), "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "1 fit(s) failed" in out.read_text(encoding="utf-8")


def test_every_report_table_row_matches_its_headers():
    from hte.report import blocks

    headers = ["estimator", "target", "mean", "SD"]
    assert blocks.failed_row(headers, ["cox", "survival"], "failed: x") == [
        "cox",
        "survival",
        "failed: x",
        "",
    ]
    with pytest.raises(ValueError, match="row 1 has 3 cells for 4 headers"):
        blocks.table(headers, [["a", "b", "c"]])


def test_math_text_in_category_values_is_drawn_literally(edge_run):
    run_dir = edge_run[1]
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "alpha_{" in html  # the level reached the report's tables as text
    import json

    features = json.loads((run_dir / "metrics.json").read_text())["analyses"]["decision"]
    assert any(MATH_LEVEL in f for f in features["design"]["features"])


def test_app_starts_on_a_run_with_math_text_in_its_data(edge_run, monkeypatch):
    import socket

    import httpx

    from hte.app import serve

    monkeypatch.setenv("HTE_HOME", str(edge_run[1].parents[2] / "home"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = serve(edge_run[1], port=port, block=False, quiet=True, configs_dir=ROOT / "configs")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
    finally:
        demo.close()
