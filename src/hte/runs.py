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
    "create_run_dir",
    "fingerprint_file",
    "fingerprint_frame",
    "load_model",
    "make_run_id",
    "package_versions",
    "read_manifest",
    "round_floats",
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
SHAP_PREFIX = "shap__"  # attribution tables: one ``shap__<feature>`` column per feature


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


class ModelIntegrityError(RuntimeError):
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
        body = {"tool": "hte", "run_id": self.run_id, "files": self.entries}
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
        signature = body.pop("signature")
    except (ValueError, KeyError, AttributeError):
        raise ModelIntegrityError(
            f"{path} is not a manifest written by hte (unreadable or unsigned); refusing to load "
            "models from this folder"
        ) from None
    key = _signing_key(create=False)
    if key is None or not hmac.compare_digest(signature, _signature(body, key)):
        raise ModelIntegrityError(
            f"{path} was not signed by hte for this user on this machine (or was edited): its "
            "models may not be what `hte run` wrote, so they are not loaded; rerun the experiment "
            "here to get models you can trust"
        )
    return body


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
