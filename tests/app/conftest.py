"""One small run folder and one explorer launched in-process on a free localhost port, shared by
the app tests (gradio_client and Playwright)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

ROOT = Path(__file__).resolve().parents[2]

# configs/default.yaml made small: 400 patients, the two estimators the what-if explorer reads
# (causal survival forest, CRS causal forest) with few trees, no grade >= 3 CRS, no run-level SHAP
# files (the explorer's waterfalls come from its own surrogates in the profile bundle).
SMALL_OVERRIDES = [
    "data.n=400",
    "seeds.global=11",
    "estimators=[{name: causal_survival_forest, kind: causal_survival_forest, params: "
    "{n_estimators: 100, min_samples_leaf: 15}}, {name: crs_causal_forest, kind: "
    "crs_causal_forest, params: {n_estimators: 100}}]",
    "outcomes.crs.grade3=false",
    "evaluation.model_average=null",  # its members (BCF, S-learner, Cox) are not fitted here
    "explanation.shap=false",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def hte_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hte_home")


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, hte_home) -> Path:
    """configs/default.yaml with SMALL_OVERRIDES, run into a temporary output root."""
    from hte.config import load_config
    from hte.pipeline import run_experiment

    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(hte_home))
    root = tmp_path_factory.mktemp("runs")
    config = load_config(ROOT / "configs" / "default.yaml", SMALL_OVERRIDES)
    result = run_experiment(config, output_root=root, progress=False)
    from hte.report import write_report

    write_report(result.run_dir)  # as `hte run` does: the diagnostics tab offers it
    mp.undo()
    return result.run_dir


@pytest.fixture(scope="session")
def served(small_run, hte_home):
    """The explorer on the small run, served on a free port for the whole session:
    (Blocks, url)."""
    from hte.app import serve

    mp = pytest.MonkeyPatch()
    mp.setenv("HTE_HOME", str(hte_home))
    port = free_port()
    demo = serve(small_run, port=port, block=False, quiet=True, configs_dir=ROOT / "configs")
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()
    mp.undo()


@pytest.fixture(scope="session")
def app_url(served) -> str:
    return served[1]


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False, analytics_enabled=False)
