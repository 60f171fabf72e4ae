"""What the app keeps between requests: the launch run, the folders it reads configs from and
writes new runs to, and one cached view / profile explorer per run folder (loaded once, reused by
every request: a warm what-if query only evaluates the profile)."""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hte.app.run_view import RunFolderError, RunView


@dataclass
class AppContext:
    """The launch run folder, where configs are listed from and where new runs go."""

    run_dir: Path
    configs_dir: Path
    output_root: Path
    _views: dict[Path, RunView] = field(default_factory=dict, repr=False)
    _explorers: dict[Path, object] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    received_uploads: Callable[[], Iterable[str]] = field(default=lambda: (), repr=False)
    _serve_dir: Path | None = field(default=None, repr=False)

    @classmethod
    def create(
        cls,
        run_dir: str | Path,
        *,
        configs_dir: str | Path | None = None,
        output_root: str | Path | None = None,
    ) -> AppContext:
        """``output_root`` defaults to the launch run's output root (``<root>/<name>/<id>``)."""
        view = RunView.open(run_dir)
        root = Path(output_root) if output_root is not None else view.run_dir.parent.parent
        configs = Path(configs_dir) if configs_dir is not None else Path("configs")
        context = cls(view.run_dir, configs.resolve(), root.resolve())
        context._views[view.run_dir] = view
        return context

    def _key(self, run_dir: str | Path | None) -> Path:
        return Path(run_dir).resolve() if run_dir else self.run_dir

    def view(self, run_dir: str | Path | None = None) -> RunView:
        key = self._key(run_dir)
        with self._lock:
            if key not in self._views:
                self._views[key] = RunView.open(key)
            return self._views[key]

    def explorer(self, run_dir: str | Path | None = None):
        """The run's ``ProfileExplorer`` (models loaded once through the signed manifest)."""
        from hte.pipeline.profile import ProfileExplorer

        key = self._key(run_dir)
        with self._lock:
            if key not in self._explorers:
                if key not in self._views:
                    self._views[key] = RunView.open(key)
                self._explorers[key] = ProfileExplorer.from_run(key)
            return self._explorers[key]

    def servable(self, path: str | Path | None) -> str | None:
        """A private copy of a run-folder file for a component to show (the report, a figure).

        No run folder is an allowed path of the server, so nothing in one can be fetched by its
        path (``/gradio_api/file=<run>/effects.parquet`` is refused). A file the app shows is
        copied here into a private temporary folder, which Gradio copies into its cache under a
        content hash: only the session that asked is given that address.
        """
        if path is None:
            return None
        source = Path(path)
        with self._lock:
            if self._serve_dir is None:
                self._serve_dir = Path(tempfile.mkdtemp(prefix="hte-app-"))
                atexit.register(shutil.rmtree, self._serve_dir, ignore_errors=True)
            digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
            target = self._serve_dir / digest / source.name
            target.parent.mkdir(exist_ok=True)
            shutil.copyfile(source, target)
        return str(target)

    def config_choices(self) -> list[str]:
        """Config files a user may run on an upload (YAML in the configs folder)."""
        if not self.configs_dir.is_dir():
            return []
        return sorted(p.name for p in self.configs_dir.glob("*.yaml"))

    def config_path(self, name: str) -> Path:
        """A config of the configs folder by file name (no other path is accepted)."""
        if name not in self.config_choices():
            raise RunFolderError(f"unknown config {name!r}; choose one of the listed configs")
        return self.configs_dir / name
