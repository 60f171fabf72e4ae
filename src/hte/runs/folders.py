"""Run folders: canonical JSON, run ids, creating and finishing folders, their state, data
fingerprints and package versions (the names of the files are in ``hte.runs.layout``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte.runs.layout import (
    COMPLETE_FILE,
    CONFIG_FILE,
    FAILED_FILE,
    FIGURES_DIR,
    LOG_FILE,
    MODELS_DIR,
    PARTIAL_SUFFIX,
)

SIGNIFICANT_DIGITS = 10  # floats in metrics.json: enough for any reading, stable across reruns
_PACKAGES = (
    "hte",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "scikit-survival",
    "econml",
    "lifelines",
    "pandera",
    "pydantic",
    "joblib",
    "matplotlib",
    "shap",
)


# --------------------------------------------------------------------------------------------------
# Canonical JSON


def _round_float(x: float, digits: int) -> float | None:
    if not math.isfinite(x):
        return None
    return float("%.*g" % (digits, x)) if x != 0 else 0.0  # noqa: UP031 (a third faster)


def _round_array(values: list[float], digits: int) -> list[float | None]:
    """``_round_float`` over a list, inlined (a call per element was half the time)."""
    return [
        (float("%.*g" % (digits, x)) if x != 0 else 0.0) if math.isfinite(x) else None  # noqa: UP031
        for x in values
    ]


def round_floats(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """A JSON-ready copy: floats to ``digits`` significant digits, NaN/inf -> None, numpy scalars
    and arrays to Python, tuples to lists, Paths to strings, mapping keys to strings."""
    kind = type(obj)  # exact built-in types first: a what-if answer is ~200 nodes, ~600 floats
    if kind is float:
        return _round_float(obj, digits)
    if kind is str or obj is None:
        return obj
    if kind is dict:
        return {str(k): round_floats(v, digits) for k, v in obj.items()}
    if kind is list or kind is tuple:
        return [round_floats(v, digits) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return _round_float(float(obj), digits)
    if isinstance(obj, Mapping):
        return {str(k): round_floats(v, digits) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # as asdict, without copies
        return {f.name: round_floats(getattr(obj, f.name), digits) for f in dataclasses.fields(obj)}
    if isinstance(obj, np.ndarray) and obj.dtype.kind == "f" and obj.ndim == 1:
        return _round_array(obj.tolist(), digits)  # the common case, without recursion
    if isinstance(obj, list | tuple | np.ndarray):
        return [round_floats(v, digits) for v in (obj.tolist() if hasattr(obj, "tolist") else obj)]
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA:
        return None
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def canonical_json(obj: Any) -> str:
    """Sorted keys, 2-space indent, rounded floats, trailing newline: byte-stable for equal input."""
    return json.dumps(round_floats(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, obj: Any) -> Path:
    path.write_text(canonical_json(obj), encoding="utf-8")
    return path


def config_hash(resolved: Mapping) -> str:
    """sha256 of the resolved config's canonical JSON."""
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Run ids and folders


def make_run_id(resolved: Mapping, now: datetime | None = None) -> str:
    """``YYYYmmddTHHMMSSZ-<first 8 hex of the config hash>``: sorts by time, names the config."""
    now = datetime.now(UTC) if now is None else now
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{config_hash(resolved)[:8]}"


def create_run_dir(root: Path, name: str, run_id: str) -> Path:
    """Create ``root/name/run_id`` (``-2``, ``-3`` ... appended if it exists) with its subfolders."""
    base = Path(root) / name
    run_dir = base / run_id
    k = 2
    while run_dir.exists():
        run_dir = base / f"{run_id}-{k}"
        k += 1
    (run_dir / MODELS_DIR).mkdir(parents=True)
    (run_dir / FIGURES_DIR).mkdir()
    return run_dir


# --------------------------------------------------------------------------------------------------
# Finished or not: runs are written into ``<run-id>.partial`` and renamed into place at the end


def create_partial_run_dir(root: Path, name: str, run_id: str) -> Path:
    """The folder a run is written into, ``root/name/<run_id>.partial`` (``-2`` ... if taken),
    with its subfolders: no reader takes it for a run until ``finish_run_dir`` renames it."""
    base = Path(root) / name
    k = 1
    while True:
        partial = base / (run_id + PARTIAL_SUFFIX + ("" if k == 1 else f"-{k}"))
        try:
            partial.mkdir(parents=True)  # claims the name (fails if it exists)
            break
        except FileExistsError:
            k += 1
    (partial / MODELS_DIR).mkdir()
    (partial / FIGURES_DIR).mkdir()
    return partial


def finish_run_dir(partial: Path, summary: Mapping[str, Any]) -> Path:
    """Write ``complete.json`` (``summary``) last into the partial folder, then rename it to its
    run id (``-2``, ``-3`` ... if that name is taken). Returns the finished folder."""
    partial = Path(partial)
    write_json(partial / COMPLETE_FILE, summary)
    run_id = partial.name.split(PARTIAL_SUFFIX)[0]
    k = 1
    while True:
        target = partial.parent / (run_id if k == 1 else f"{run_id}-{k}")
        if not target.exists():
            try:
                partial.rename(target)  # atomic on one file system
                return target
            except OSError:  # taken in between by another run
                pass
        k += 1


def mark_run_failed(partial: Path, reason: str) -> None:
    """Record why a run stopped in its partial folder (``hte runs`` lists it as failed)."""
    write_json(Path(partial) / FAILED_FILE, {"error": reason})


def run_state(path: Path) -> str:
    """``complete`` (renamed into place with ``complete.json``), ``failed`` (stopped with an
    error), or ``incomplete`` (still running, killed, or written before runs were marked)."""
    path = Path(path)
    if PARTIAL_SUFFIX in path.name:
        return "failed" if (path / FAILED_FILE).is_file() else "incomplete"
    return "complete" if (path / COMPLETE_FILE).is_file() else "incomplete"


def is_complete_run(path: Path) -> bool:
    """A finished run folder: every reader (app, report, predict, newest run) checks this."""
    return Path(path).is_dir() and run_state(path) == "complete"


def list_runs(root: Path) -> list[tuple[Path, str]]:
    """Every run folder ``root/<name>/<run-id>`` (or ``root/<run-id>`` when ``root`` is one
    experiment's folder) with its state, by name then run id."""
    root = Path(root)
    found = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        if _looks_like_run(child):
            found.append((child, run_state(child)))
            continue
        for run in sorted(p for p in child.iterdir() if p.is_dir()):
            if _looks_like_run(run):
                found.append((run, run_state(run)))
    return found


def _looks_like_run(path: Path) -> bool:
    return (
        PARTIAL_SUFFIX in path.name
        or (path / CONFIG_FILE).is_file()
        or any((path / f).exists() for f in (COMPLETE_FILE, LOG_FILE, MODELS_DIR))
    )


# --------------------------------------------------------------------------------------------------
# Data fingerprints and versions


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_frame(cohort: pd.DataFrame) -> dict:
    """Fingerprint of an in-memory cohort: sha256 of its canonical CSV bytes (no index, floats at
    17 significant digits so the hash sees every bit), n and columns."""
    text = cohort.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return {
        "sha256": _sha256_bytes(text.encode("utf-8")),
        "hashed": "canonical CSV of the cohort (index dropped, floats %.17g)",
        "n": len(cohort),
        "columns": [str(c) for c in cohort.columns],
    }


def fingerprint_file(path: Path, cohort: pd.DataFrame) -> dict:
    """Fingerprint of a cohort file: sha256 of the file's bytes, n and columns after the map."""
    return {
        "sha256": sha256_file(path),
        "hashed": f"bytes of {Path(path).name}",
        "path": str(path),
        "n": len(cohort),
        "columns": [str(c) for c in cohort.columns],
    }


def package_versions() -> dict[str, str]:
    """Python, platform and the versions of the packages a run depends on."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
