"""Suite-wide settings: the suite runs in 2 pytest workers that keep both cores busy, so the
pipeline's own worker processes are capped at 1 (``HTE_MAX_PROCESSES``; same numbers either way,
tests/pipeline/test_parallel_stages.py lifts the cap to check exactly that)."""

from __future__ import annotations

import os

os.environ.setdefault("HTE_MAX_PROCESSES", "1")

# The slowest modules first (seconds of setup + calls, `pytest --durations=50`, 2026-12-07): with
# `--dist loadfile` the two workers then finish together, instead of one running a long module
# alone at the end (the top-level tests/test_*.py files are collected last). Order only: every
# module still runs, in one worker, with its fixtures.
SLOWEST_FIRST = (
    "tests/app/test_browser.py",  # 130
    "tests/adversarial/test_predict_and_runs.py",  # 100
    "tests/pipeline/test_parallel_stages.py",  # 90
    "tests/test_pipeline.py",  # 69
    "tests/app/test_safety.py",  # 58
    "tests/report/test_report_build.py",  # 57
    "tests/report/test_report_model_choice.py",  # 53
    "tests/test_cli_run.py",  # 45
    "tests/test_sweep.py",  # 36
    "tests/pipeline/test_shared_nuisance_fits.py",  # 34
    "tests/pipeline/test_robustness.py",  # 31
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {path: k for k, path in enumerate(SLOWEST_FIRST)}
    root = config.rootpath

    def module_rank(item) -> int:
        path = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        return rank.get(path, len(rank))

    items.sort(key=module_rank)  # stable: the rest keep their collected order
