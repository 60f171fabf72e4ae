"""Sweeps: a grid of synthetic runs (scenarios x sizes x estimators x seeds) on dask.distributed.

A config's ``sweep`` section declares the grid. Each cell draws its cohort
(``simulate_cohort(size, seed, scenario)``), applies the config's first time-zero analysis, encodes
the covariates, fits its one estimator (seeded with the cell seed) for every configured outcome
target and scores it against the cohort's true effects (hte.evaluation.truth_scoring.score_fit).
Cells run on a local cluster (``workers`` processes, one thread each) or on an existing scheduler.

The sweep folder (default ``<output.root>/<name>/sweep/``) holds:

- ``cells_done.jsonl``: one line per finished cell (its key, the cell and its rows), appended as
  cells finish, so an interrupted sweep loses nothing. A cell's key is a hash of the cell and of
  the parts of the resolved config it depends on (time zero, outcomes, its estimator entry, alpha),
  so a rerun skips cells already done and recomputes only what a config change touches. Cells
  that failed (any row with an error) are retried on a rerun.
- ``results.csv``: the tidy table, one row per cell and target (cell keys, target, horizon,
  metrics, fit_seconds, error).
- ``summary.csv`` / ``summary.md``: means over seeds per scenario x size x estimator x target.
- ``config.json``: the resolved config.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from hte.config import ExperimentConfig, resolved_config_dict
from hte.errors import STAGE_FAILURES, HteError
from hte.runs import interval_level

__all__ = [
    "SweepCell",
    "SweepError",
    "SweepResult",
    "cell_key",
    "read_done",
    "render_sweep_summary",
    "run_sweep",
    "run_sweep_cell",
    "summarize_sweep",
    "sweep_cells",
]

CellFn = Callable[[dict, dict], list[dict]]
CELL_KEYS = ("scenario", "size", "estimator", "seed")
DONE_FILE = "cells_done.jsonl"
RESULTS_FILE = "results.csv"
_KEY_VERSION = 1  # bump when a cell's rows change meaning, so old records are not reused


class SweepError(HteError, RuntimeError):
    """A sweep that cannot run at all (no sweep section, unreachable scheduler)."""


@dataclass(frozen=True)
class SweepCell:
    """One grid cell: draw (scenario, size, seed), fit one estimator seeded with ``seed``."""

    scenario: str
    size: int
    estimator: str
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SweepResult:
    """What a sweep produced: the tidy table (every cell of the grid, run now or before), the
    summary, the folder, and how many cells were run, skipped as done, or failed."""

    table: pd.DataFrame
    summary: pd.DataFrame
    out_dir: Path
    n_cells: int
    n_run: int
    n_skipped: int
    n_failed: int


def sweep_cells(config: ExperimentConfig) -> list[SweepCell]:
    """The grid of a config's sweep section, scenario-major, seeds innermost."""
    spec = config.sweep
    if spec is None:
        raise SweepError(f"config {config.name!r} has no sweep section (see configs/bench.yaml)")
    return [
        SweepCell(scenario, int(size), estimator, int(seed))
        for scenario in spec.scenarios
        for size in spec.sizes
        for estimator in spec.estimators
        for seed in spec.seeds
    ]


def cell_key(config_dict: dict, cell: dict) -> str:
    """A stable hash of a cell and the config parts its result depends on.

    The data section, global seed, explanation, output and the sweep itself do not enter: the
    cell fixes scenario, size and seed, and its rows never use the rest.
    """
    estimator = next(e for e in config_dict["estimators"] if e["name"] == cell["estimator"])
    payload = {
        "version": _KEY_VERSION,
        "time_zero": config_dict["time_zero"][0],
        "outcomes": config_dict["outcomes"],
        "estimator": estimator,
        "alpha": config_dict["evaluation"]["alpha"],
        "cell": {k: cell[k] for k in CELL_KEYS},
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------------------------------
# One cell (runs on a dask worker: plain arguments in, plain rows out)


def run_sweep_cell(config_dict: dict, cell: dict) -> list[dict]:
    """Draw the cell's cohort, fit its estimator for each configured target, score against truth.

    ``config_dict`` is a resolved config (``resolved_config_dict``), ``cell`` a ``SweepCell`` as a
    dict. Returns one row per target: the cell keys, time_zero, target, horizon, the truth metrics
    and fit_seconds, or an ``error`` for a target whose fit failed.
    """
    from hte.data.columns import CRS_GRADE
    from hte.data.simulate import simulate_cohort
    from hte.design.design_matrix import build_design_matrix, treatment_array
    from hte.design.time_zero import apply_time_zero
    from hte.evaluation.truth_scoring import score_fit

    config = ExperimentConfig.model_validate(config_dict)
    spec = next(e for e in config.estimators if e.name == cell["estimator"])
    seed = int(cell["seed"])
    analysis = config.time_zero[0]
    drawn = simulate_cohort(n=int(cell["size"]), seed=seed, scenario=cell["scenario"])
    cohort = apply_time_zero(drawn, analysis.mode, analysis.landmark_days).cohort
    X = build_design_matrix(cohort).X
    w = treatment_array(cohort)
    if spec.outcome == "os":
        targets = config.outcomes.os.targets()
    else:
        has_grade = CRS_GRADE in cohort.columns and cohort[CRS_GRADE].notna().any()
        targets = [(name, None) for name in config.outcomes.crs.outcomes(has_grade)]
    rows = []
    for target, horizon in targets:

        def make(target=target, horizon=horizon):
            if spec.outcome == "os":
                return spec.build(target=target, horizon=horizon, random_state=seed)
            return spec.build(crs_outcome=target, random_state=seed)

        row = {k: cell[k] for k in CELL_KEYS}
        row |= {"time_zero": analysis.label, "target": target, "horizon": horizon}
        row |= score_fit(
            make, spec.outcome, target, horizon, X, cohort, w, alpha=config.evaluation.alpha
        )
        rows.append(row)
    return rows


def _guarded_cell(cell_fn: CellFn, config_dict: dict, cell: dict) -> list[dict]:
    """Run a cell; a failure data can cause (``hte.errors.STAGE_FAILURES``) becomes one row
    carrying the error, so the sweep goes on; a bug propagates and stops the sweep."""
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # joblib runs estimators single-threaded in a dask worker: intended, the sweep is
            # parallel across cells (one thread per worker)
            warnings.filterwarnings("ignore", message="Inside a Dask worker with daemon=True")
            return list(cell_fn(config_dict, cell))
    except STAGE_FAILURES as exc:
        return [_error_row(cell, exc, time.perf_counter() - started)]


def _error_row(cell: dict, exc: BaseException, seconds: float | None = None) -> dict:
    return {
        **{k: cell[k] for k in CELL_KEYS},
        "fit_seconds": seconds,
        "error": f"{type(exc).__name__}: {exc}",
    }


def _failed(rows: Iterable[dict]) -> bool:
    return any(_is_error(r.get("error")) for r in rows)


def _is_error(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


# --------------------------------------------------------------------------------------------------
# The done-cells file


def read_done(out_dir: str | Path) -> dict[str, dict]:
    """Records of ``cells_done.jsonl`` by cell key (the last record of a key wins)."""
    path = Path(out_dir) / DONE_FILE
    done: dict[str, dict] = {}
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by an interrupted sweep
                    continue
                done[record["key"]] = record
    return done


def _append_done(handle, key: str, cell: dict, rows: list[dict]) -> None:
    record = {"key": key, "cell": cell, "failed": _failed(rows), "rows": rows}
    handle.write(json.dumps(record, default=_json_default) + "\n")
    handle.flush()


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


# --------------------------------------------------------------------------------------------------
# Orchestration


def run_sweep(
    config: ExperimentConfig,
    *,
    workers: int = 2,
    scheduler_address: str | None = None,
    out_dir: str | Path | None = None,
    cell_fn: CellFn = run_sweep_cell,
    progress: bool = False,
    command: str | None = None,
) -> SweepResult:
    """Run every cell of the config's sweep not already done; collect the table and summary.

    Cells run on ``LocalCluster(workers processes x 1 thread)`` bound to 127.0.0.1 with no
    dashboard, or on the scheduler at ``scheduler_address`` (``tcp://host:port``). No cluster is
    started when every cell is already done. ``command`` is quoted in summary.md.
    """
    cells = [c.as_dict() for c in sweep_cells(config)]
    config_dict = resolved_config_dict(config)
    out = Path(out_dir) if out_dir is not None else config.output.root / config.name / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config_dict, indent=2) + "\n", encoding="utf-8")
    keys = [cell_key(config_dict, cell) for cell in cells]
    done = read_done(out)
    pending = [(k, c) for k, c in zip(keys, cells, strict=True) if _needs_run(done.get(k))]
    n_skipped = len(cells) - len(pending)
    if pending:
        with (out / DONE_FILE).open("a", encoding="utf-8") as handle:
            for key, cell, rows in _run_cells(
                pending, config_dict, cell_fn, workers, scheduler_address, progress
            ):
                _append_done(handle, key, cell, rows)
                done[key] = {"key": key, "cell": cell, "failed": _failed(rows), "rows": rows}
    records = [done[k] for k in keys]
    table = _table(records)
    summary = summarize_sweep(table)
    _write_outputs(out, table, summary, config, command)
    return SweepResult(
        table=table,
        summary=summary,
        out_dir=out,
        n_cells=len(cells),
        n_run=len(pending),
        n_skipped=n_skipped,
        n_failed=sum(1 for r in records if r["failed"]),
    )


def _needs_run(record: dict | None) -> bool:
    return record is None or bool(record.get("failed"))


def _run_cells(pending, config_dict, cell_fn, workers, scheduler_address, progress):
    """Yield (key, cell, rows) as cells complete on the cluster."""
    from dask.distributed import Client, KilledWorker, LocalCluster, as_completed
    from distributed.comm.core import CommClosedError

    with ExitStack() as stack:
        if scheduler_address is None:
            if workers < 1:
                raise ValueError(f"workers must be at least 1; got {workers}")
            # no dashboard; the scheduler's health endpoint binds to 127.0.0.1 on 8787 or, when
            # that port is taken (another local cluster), any free port: not worth a warning
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message="Port 8787 is already in use")
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler_address))
            except (OSError, ValueError, TimeoutError) as exc:
                raise SweepError(
                    f"cannot connect to the dask scheduler at {scheduler_address}: {exc}"
                ) from None
        bar = stack.enter_context(_progress(len(pending), progress))
        futures = {}
        for key, cell in pending:
            future = client.submit(_guarded_cell, cell_fn, config_dict, cell, pure=False)
            futures[future] = (key, cell)
        for future in as_completed(futures):
            key, cell = futures[future]
            try:
                rows = future.result()
            except (KilledWorker, CommClosedError) as exc:  # the worker died (memory, crash)
                rows = [_error_row(cell, exc)]
            bar(cell)
            yield key, cell, rows


class _progress:
    """A rich progress bar of cells completed (a no-op when off); call it once per cell."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self._bar, self._task = total, enabled, None, None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task("sweep cells", total=self.total)
        return self

    def __call__(self, cell: dict) -> None:
        if self._bar is not None:
            label = f"{cell['scenario']} n={cell['size']} {cell['estimator']} seed {cell['seed']}"
            self._bar.update(self._task, advance=1, description=label)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


def _table(records: list[dict]) -> pd.DataFrame:
    rows = [row for record in records for row in record["rows"]]
    table = pd.DataFrame(rows)
    for column in (*CELL_KEYS, "target", "error"):
        if column not in table.columns:
            table[column] = None
    first = [*CELL_KEYS, "time_zero", "target", "horizon"]
    order = [c for c in first if c in table.columns]
    rest = [c for c in table.columns if c not in order and c != "error"]
    return table[[*order, *rest, "error"]]


def summarize_sweep(table: pd.DataFrame) -> pd.DataFrame:
    """Means over seeds per scenario x size x estimator x target (see truth_scoring.summarize);
    a cell that failed before reaching any target counts as failed under target "(cell)"."""
    from hte.evaluation.truth_scoring import summarize

    if table.empty:
        return pd.DataFrame()
    filled = table.assign(target=table["target"].fillna("(cell)"))
    if "horizon" in filled.columns:
        filled["horizon"] = filled["horizon"].astype(float)
    return summarize(filled)


def _write_outputs(
    out: Path, table: pd.DataFrame, summary: pd.DataFrame, config: ExperimentConfig, command
) -> None:
    from hte.evaluation.truth_scoring import summary_markdown

    table.to_csv(out / RESULTS_FILE, index=False)
    summary.to_csv(out / "summary.csv", index=False)
    command = command or f"run_sweep(load_config(...)) on config {config.name!r}"
    title = f"Sweep {config.name}: estimators against the synthetic truth"
    level = interval_level(config.evaluation.alpha)
    (out / "summary.md").write_text(
        summary_markdown(summary, command, title, level), encoding="utf-8"
    )


def render_sweep_summary(result: SweepResult):
    """The summary as a rich table for the terminal (main metrics only; summary.md has all)."""
    from rich import box
    from rich.table import Table

    shown = {
        "scenario": "scenario",
        "size": "n",
        "estimator": "estimator",
        "target": "target",
        "normalized_mse": "nmse",
        "coverage": "cover",
        "ate_bias": "ate bias",
    }
    summary = result.summary
    columns = [c for c in shown if c in summary.columns]
    table = Table(
        title=f"mean over seeds (all metrics: {result.out_dir / 'summary.md'})",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),  # the box's space divider separates columns
    )
    for column in columns:
        text = column in ("scenario", "estimator", "target")
        width = int(summary[column].astype(str).str.len().max()) if text else None
        table.add_column(shown[column], justify="left" if text else "right", min_width=width)
    table.add_column("seeds", justify="right")
    for row in summary.to_dict("records"):
        runs = str(row.get("runs", ""))
        if row.get("failed"):
            runs += f" ({row['failed']} failed)"
        table.add_row(*(_cell_text(row[c]) for c in columns), runs)
    return table


def _cell_text(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.2f}"
    return str(value)
