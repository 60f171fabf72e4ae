"""Run folders: layout, ids, data fingerprints, package versions, canonical JSON, and fitted models
saved with a signed hash manifest.

A run folder ``<root>/<name>/<run-id>/`` holds everything needed to audit and reuse one experiment:

    config.resolved.yaml   the config with every default filled in
    fingerprint.json       sha256 of the cohort (input file bytes, or canonical CSV of a draw), n, columns
    versions.json          python and package versions
    seeds.json             the seeds used
    metrics.json           results (sorted keys, floats rounded: same config + seed, same bytes)
    timings.json           seconds per stage (kept out of metrics.json so that stays reproducible)
    effects.parquet        per-patient effects with intervals, one row per patient x analysis
    models/                joblib files + manifest.json (sha256 of each file, signed)
    figures/               PNG diagnostics
    run.log                the log of the run

Models are pickles, and unpickling runs code, so ``load_model`` only opens a file whose sha256 is
listed in the run folder's ``models/manifest.json`` *and* whose manifest carries a valid HMAC
signature made with this user's local key (``$HTE_HOME/signing.key``, default
``~/.local/share/hte``). A file from elsewhere, a tampered file or a manifest written by anything but
this tool is refused with a plain message; never load model files you were sent.

The signed manifest also carries the sha256 of the run's own files that drive prediction with the
models (``RUN_FILES``: config.resolved.yaml, with alpha, the column map and the analyses, and
fingerprint.json, the data the models were fitted on). ``read_manifest`` checks them, so a
``models/`` folder copied from another run, or an edited config.resolved.yaml, is refused: the
models, their encoder and the config are trusted together or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import platform
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hte.errors import HteError

__all__ = [
    "COHORT_SPEC_FILE",
    "CONFIG_FILE",
    "EFFECTS_FILE",
    "FINGERPRINT_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "ModelIntegrityError",
    "ModelStore",
    "attribution_path",
    "canonical_json",
    "config_hash",
    "create_partial_run_dir",
    "create_run_dir",
    "fingerprint_file",
    "fingerprint_frame",
    "finish_run_dir",
    "is_complete_run",
    "list_runs",
    "load_model",
    "make_run_id",
    "mark_run_failed",
    "package_versions",
    "read_manifest",
    "round_floats",
    "run_state",
    "write_json",
]

CONFIG_FILE = "config.resolved.yaml"
FINGERPRINT_FILE = "fingerprint.json"
VERSIONS_FILE = "versions.json"
SEEDS_FILE = "seeds.json"
METRICS_FILE = "metrics.json"
TIMINGS_FILE = "timings.json"
EFFECTS_FILE = "effects.parquet"
LOG_FILE = "run.log"
COHORT_SPEC_FILE = "cohort_spec.yaml"  # the OMOP cohort spec a run extracted its cohort with
MODELS_DIR = "models"
FIGURES_DIR = "figures"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"
ATTRIBUTIONS_DIR = "attributions"
NUISANCES_DIR = "nuisances"  # <analysis>.npz: the shared cross-fitted nuisances (no pickle)
SHAP_PREFIX = "shap__"  # attribution tables: one ``shap__<feature>`` column per feature
COMPLETE_FILE = "complete.json"  # written last: the run finished (see ``run_state``)
# the run's files that drive prediction with its models; their sha256 is in the signed manifest
RUN_FILES = (CONFIG_FILE, FINGERPRINT_FILE)


def attribution_path(analysis: str, fit_key: str, arm: str | None = None) -> str:
    """Where a run folder keeps one fit's SHAP table, relative to the folder:
    ``attributions/<analysis>__<estimator>__<target>[__arm_<arm>].parquet`` (``fit_key`` is
    ``<estimator>__<target>``; ``arm`` for the attributions of one arm's prediction)."""
    suffix = "" if arm is None else f"__arm_{arm}"
    return f"{ATTRIBUTIONS_DIR}/{analysis}__{fit_key}{suffix}.parquet"


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


def round_floats(obj: Any, digits: int = SIGNIFICANT_DIGITS) -> Any:
    """A JSON-ready copy: floats to ``digits`` significant digits, NaN/inf -> None, numpy scalars
    and arrays to Python, tuples to lists, Paths to strings, mapping keys to strings."""
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        x = float(obj)
        if not math.isfinite(x):
            return None
        return float(f"{x:.{digits}g}") if x != 0 else 0.0
    if isinstance(obj, Mapping):
        return {str(k): round_floats(v, digits) for k, v in obj.items()}
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

PARTIAL_SUFFIX = ".partial"
FAILED_FILE = "failed.json"  # in a partial folder: the run stopped with an error (kept to debug)


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


# --------------------------------------------------------------------------------------------------
# Models with a signed manifest


class ModelIntegrityError(HteError, RuntimeError):
    """A model file that this tool did not write into this run folder, or that changed since."""


def _key_path() -> Path:
    home = os.environ.get("HTE_HOME")
    base = Path(home) if home else Path.home() / ".local" / "share" / "hte"
    return base / "signing.key"


def _signing_key(create: bool) -> bytes | None:
    """This user's local signing key (32 random bytes), created on first save."""
    path = _key_path()
    if path.exists():
        return path.read_bytes()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


def _signature(body: Mapping, key: bytes) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


class ModelStore:
    """Saves fitted objects under ``run_dir/models`` and writes the signed manifest at the end.

    ``save(relpath, obj, **info)`` dumps with joblib and records the file's sha256 and ``info``;
    ``write_manifest()`` writes ``models/manifest.json`` signed with the local key.
    """

    def __init__(self, run_dir: Path, run_id: str):
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.entries: dict[str, dict] = {}

    def save(self, relpath: str, obj: Any, **info: Any) -> Path:
        import joblib

        path = self.run_dir / MODELS_DIR / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(obj, path, compress=3)
        self.entries[relpath] = {"sha256": sha256_file(path), **info}
        return path

    def write_manifest(self) -> Path:
        """The signed manifest: the models' sha256 and those of the run's ``RUN_FILES``."""
        run_files = {name: sha256_file(self.run_dir / name) for name in RUN_FILES}
        body = {"tool": "hte", "run_id": self.run_id, "files": self.entries, "run_files": run_files}
        body = round_floats(body)
        body["signature"] = _signature(body, _signing_key(create=True))
        path = self.run_dir / MODELS_DIR / MANIFEST_FILE
        path.write_text(json.dumps(body, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        return path


def read_manifest(run_dir: Path) -> dict:
    """The run folder's model manifest after checking its signature; ``ModelIntegrityError``
    (plain message) when it is missing, unreadable, unsigned or signed by another key."""
    run_dir = Path(run_dir)
    path = run_dir / MODELS_DIR / MANIFEST_FILE
    if not path.is_file():
        raise ModelIntegrityError(
            f"{run_dir} has no {MODELS_DIR}/{MANIFEST_FILE}: it is not a run folder written by "
            "`hte run` with models; refusing to load any model from it"
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        signature = body.pop("signature") if isinstance(body, dict) else None
    except (ValueError, KeyError, UnicodeDecodeError):
        signature = None
    if not isinstance(signature, str) or not isinstance(body.get("files"), dict):
        raise ModelIntegrityError(
            f"{path} is not a manifest written by hte (unreadable, not a JSON object, or without "
            "a signature); refusing to load models from this folder"
        )
    key = _signing_key(create=False)
    if key is None or not hmac.compare_digest(signature.encode(), _signature(body, key).encode()):
        raise ModelIntegrityError(
            f"{path} was not signed by hte for this user on this machine (or was edited): its "
            "models may not be what `hte run` wrote, so they are not loaded; rerun the experiment "
            "here to get models you can trust"
        )
    _check_run_files(run_dir, body)
    return body


def _check_run_files(run_dir: Path, manifest: dict) -> None:
    """The run's ``RUN_FILES`` are the ones the signed manifest names (this run's config and data
    fingerprint): ``ModelIntegrityError`` for models copied from another run or an edited file."""
    recorded = manifest.get("run_files")
    if not isinstance(recorded, dict):
        raise ModelIntegrityError(
            f"{run_dir / MODELS_DIR / MANIFEST_FILE} does not tie the models to this run's "
            f"{' and '.join(RUN_FILES)} (written by an older hte); rerun the experiment to get "
            "models you can use"
        )
    for name in RUN_FILES:
        path = run_dir / name
        if not path.is_file() or recorded.get(name) != sha256_file(path):
            raise ModelIntegrityError(
                f"{path} is not the file this run's models were signed with (edited, or the "
                f"models/ folder was copied from another run): the models, {' and '.join(RUN_FILES)} "
                "must come from the same `hte run`; refusing to use them (rerun the experiment)"
            )


def load_model(run_dir: Path, relpath: str, manifest: dict | None = None) -> Any:
    """Load ``models/<relpath>`` from a run folder, only if its sha256 matches the signed manifest
    (see the module docstring); otherwise ``ModelIntegrityError`` saying why."""
    import joblib

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir) if manifest is None else manifest
    entry = manifest["files"].get(relpath)
    path = run_dir / MODELS_DIR / relpath
    if entry is None:
        raise ModelIntegrityError(
            f"{path} is not listed in the run's model manifest: hte did not write it; refusing to "
            "load it (model files run code when loaded)"
        )
    if not path.is_file():
        raise ModelIntegrityError(f"{path} is listed in the manifest but missing")
    if sha256_file(path) != entry["sha256"]:
        raise ModelIntegrityError(
            f"{path} has changed since `hte run` wrote it (sha256 differs from the manifest); "
            "refusing to load it (model files run code when loaded)"
        )
    return joblib.load(path)
