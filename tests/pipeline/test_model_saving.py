"""Saving the fitted models in the background gives the files a direct save gives, re-raises a
failure where the run waits for it, and saves nothing without a store."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from hte.pipeline.model_saving import BackgroundSaving, save_models
from hte.pipeline.stages import FittedEffect
from hte.runs import ModelStore


def _analysis(label: str = "decision"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    fits = []
    for target in ("survival", "rmst"):
        fit = FittedEffect("cox", "cox_interaction", "os", target, 12.0)
        fit.model = LinearRegression().fit(X, rng.normal(size=50))
        fits.append(fit)
    fits.append(FittedEffect("broken", "cox_interaction", "os", "survival", 12.0, error="x"))
    design = SimpleNamespace(encoder={"columns": ["a", "b", "c"]}, feature_names=["a", "b", "c"])
    return SimpleNamespace(label=label, design=design), fits


def _files(store: ModelStore) -> dict:
    return {path: entry["sha256"] for path, entry in store.entries.items()}


def test_background_saving_writes_what_a_direct_save_writes(tmp_path):
    data, fits = _analysis()
    direct = ModelStore(tmp_path / "direct", "run")
    save_models(direct, data, fits)
    background = ModelStore(tmp_path / "background", "run")
    timings: dict[str, float] = {}
    with BackgroundSaving(background) as saving:
        saving.start(data, fits)
        saving.wait(timings)
    assert _files(background) == _files(direct)
    assert sorted(_files(direct)) == [
        "decision/cox__rmst.joblib",
        "decision/cox__survival.joblib",
        "decision/encoder.joblib",
    ]
    assert set(timings) == {
        "decision/save_models (background)",
        "decision/save_models_wait",
    }


def test_the_models_are_saved_in_another_thread_and_a_failure_reaches_the_waiter(tmp_path):
    data, fits = _analysis()
    seen = []

    class Watching(ModelStore):
        def save(self, relpath, obj, **info):
            seen.append(threading.current_thread() is threading.main_thread())
            if relpath.endswith("rmst.joblib"):
                raise OSError("disk full")
            return super().save(relpath, obj, **info)

    with BackgroundSaving(Watching(tmp_path, "run")) as saving:
        saving.start(data, fits)
        with pytest.raises(OSError, match="disk full"):
            saving.wait({})
    assert seen and not any(seen)


def test_without_a_store_nothing_is_saved(tmp_path):
    data, fits = _analysis()
    timings: dict[str, float] = {}
    with BackgroundSaving(None) as saving:
        saving.start(data, fits)
        saving.wait(timings)
    assert timings == {}
    assert list(tmp_path.iterdir()) == []
