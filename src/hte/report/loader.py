"""Read a run folder for the report: the typed run summary through ``hte.runs.RunReader``, every
other file optional, nothing refitted.

The folder must be a finished run with a metrics.json of this hte's schema (``RunFolderError``,
``OlderRunFolderError`` otherwise). Any other missing or unreadable file is not an error here:
the report says "not run in this run folder" (or names the unreadable file) where the content
would have gone, so a partial run folder still gives a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pyarrow import ArrowException

from hte.runs import (
    ATTRIBUTIONS_DIR,
    CONFIG_FILE,
    EFFECTS_FILE,
    FINGERPRINT_FILE,
    LOG_FILE,
    SEEDS_FILE,
    TIMINGS_FILE,
    VERSIONS_FILE,
    RunReader,
    RunSummary,
)

LOG_TAIL_LINES = 400  # the log is shown whole up to this many lines, then its last lines


@dataclass
class RunFolder:
    """Everything the report reads from one run folder (None where a file is absent)."""

    path: Path
    run_id: str
    summary: RunSummary  # metrics.json, typed
    metrics: dict  # the same as JSON: the sections read its evidence objects
    config: dict | None
    config_text: str | None
    fingerprint: dict | None
    versions: dict | None
    seeds: dict | None
    timings: dict | None
    log_text: str | None
    effects: pd.DataFrame | None
    attributions: dict[tuple[str, str, str], pd.DataFrame]
    figures: dict[str, Path]
    targets: dict | None
    level: str  # every interval's level as a label, "90%" at evaluation.alpha 0.10
    problems: list[str] = field(default_factory=list)

    def analysis_labels(self) -> list[str]:
        return self.summary.labels


def _read_text(path: Path, problems: list[str]) -> str | None:
    if not path.is_file():
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path.name}: unreadable ({exc})")
        return None


def _read_json(path: Path, problems: list[str]) -> Any:
    text = _read_text(path, problems)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        problems.append(f"{path.name}: not valid JSON ({exc})")
        return None


def _read_parquet(path: Path, problems: list[str]) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(path)
    except (ArrowException, OSError, ValueError) as exc:  # a corrupt file: say which, keep going
        problems.append(f"{path.name}: unreadable parquet ({exc})")
        return None


def _attributions(folder: Path, problems: list[str]) -> dict[tuple[str, str, str], pd.DataFrame]:
    """``attributions/<analysis>__<estimator>__<target>.parquet`` keyed by the three names."""
    out: dict[tuple[str, str, str], pd.DataFrame] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.parquet")):
        parts = path.stem.split("__")
        if len(parts) == 4 and parts[3].startswith("arm_"):
            continue  # per-arm attributions: summarized in metrics.json (attributions.arms)
        if len(parts) != 3:
            problems.append(f"{ATTRIBUTIONS_DIR}/{path.name}: name not <analysis>__<est>__<target>")
            continue
        frame = _read_parquet(path, problems)
        if frame is not None:
            out[(parts[0], parts[1], parts[2])] = frame
    return out


def calibration_targets() -> dict | None:
    """The published real-world figures shipped with hte (``hte/data/calibration_targets.yaml``)."""
    try:
        text = resources.files("hte.data").joinpath("calibration_targets.yaml").read_text("utf-8")
        return yaml.safe_load(text)
    except (OSError, yaml.YAMLError, ModuleNotFoundError):
        return None


def load_run_folder(run_dir: Path) -> RunFolder:
    """Read ``run_dir``; raises ``hte.runs.RunFolderError`` only when it is not a finished run
    folder with a metrics.json of this hte's schema (``OlderRunFolderError`` says how to rerun an
    older one)."""
    run_dir = Path(run_dir)
    reader = RunReader.open(run_dir)
    problems: list[str] = []
    config_text = _read_text(run_dir / CONFIG_FILE, problems)
    config = None
    if config_text is not None:
        try:
            config = yaml.safe_load(config_text)
        except yaml.YAMLError as exc:
            problems.append(f"{CONFIG_FILE}: not valid YAML ({exc})")
    log_text = _read_text(run_dir / LOG_FILE, problems)
    if log_text is not None:
        lines = log_text.splitlines()
        if len(lines) > LOG_TAIL_LINES:
            log_text = "\n".join(
                [
                    f"... {len(lines) - LOG_TAIL_LINES} earlier lines not shown ...",
                    *lines[-LOG_TAIL_LINES:],
                ]
            )
    return RunFolder(
        path=run_dir,
        run_id=reader.run_id,
        summary=reader.summary,
        metrics=reader.summary.as_json_dict(),
        config=config if isinstance(config, dict) else None,
        config_text=config_text,
        fingerprint=_read_json(run_dir / FINGERPRINT_FILE, problems),
        versions=_read_json(run_dir / VERSIONS_FILE, problems),
        seeds=_read_json(run_dir / SEEDS_FILE, problems),
        timings=_read_json(run_dir / TIMINGS_FILE, problems),
        log_text=log_text,
        effects=_read_parquet(run_dir / EFFECTS_FILE, problems),
        attributions=_attributions(run_dir / ATTRIBUTIONS_DIR, problems),
        figures=reader.figures(),
        targets=calibration_targets(),
        problems=problems,
        level=reader.level,
    )
