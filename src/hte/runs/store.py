"""Fitted models saved with a signed hash manifest.

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
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hte.errors import HteError
from hte.runs.folders import round_floats, sha256_file
from hte.runs.layout import MANIFEST_FILE, MODELS_DIR, RUN_FILES


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
