"""What the app keeps between requests: the launch run, the folders it reads configs from and
writes new runs to, and one cached view / profile explorer per run folder (loaded once, reused by
every request: a warm what-if query only evaluates the profile)."""

from __future__ import annotations

import threading
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

    def config_choices(self) -> list[str]:
        """Config files a user may run on an upload (YAML in the configs folder)."""
        if not self.configs_dir.is_dir():
            return []
        return sorted(p.name for p in self.configs_dir.glob("*.yaml"))

    def upload_run_roots(self) -> list[Path]:
        """Where runs on uploads go: ``<output_root>/upload_<config name>`` per listed config."""
        import yaml

        roots = []
        for file in self.config_choices():
            try:
                name = (yaml.safe_load((self.configs_dir / file).read_text("utf-8")) or {})["name"]
            except (OSError, yaml.YAMLError, KeyError, TypeError):
                continue
            roots.append(self.output_root / f"upload_{name}")
        return roots

    def config_path(self, name: str) -> Path:
        """A config of the configs folder by file name (no other path is accepted)."""
        if name not in self.config_choices():
            raise RunFolderError(f"unknown config {name!r}; choose one of the listed configs")
        return self.configs_dir / name
