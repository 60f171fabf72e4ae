"""Saving a run's fitted models, in a background thread while the later stages run.

Pickling the default run's 18 fitted models takes about 25 s (the forests' trees and the Bayesian
causal forests' posterior draws), on one core. The held-out, subgroup and refutation stages that
follow the fits keep this process mostly waiting on its worker processes, so the models are saved
in a thread meanwhile (``BackgroundSaving``). Those stages read the fitted models (their settings,
to make unfitted copies) but never change them; the run waits for the saving before the SHAP and
profile stages predict with them. The files hold the same pickles of the same objects either
way.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

from hte.pipeline.stages import AnalysisData, FittedEffect
from hte.runs import ModelStore, model_path


def save_models(store: ModelStore, data: AnalysisData, fits: list[FittedEffect]) -> float:
    """The analysis's design encoder and fitted models in ``store``; returns the seconds taken."""
    clock = time.perf_counter()
    store.save(
        model_path(data.label, "encoder"),
        data.design.encoder,
        role="encoder",
        analysis=data.label,
        features=data.design.feature_names,
    )
    for fit in fits:
        if fit.model is None:
            continue
        store.save(
            model_path(data.label, fit.key),
            fit.model,
            role="estimator",
            analysis=data.label,
            estimator=fit.estimator,
            kind=fit.kind,
            outcome=fit.outcome,
            target=fit.target,
            horizon=fit.horizon,
        )
    return time.perf_counter() - clock


class BackgroundSaving:
    """``start(data, fits)`` saves an analysis's models in one background thread; ``wait``
    blocks until they are written (re-raising a failure) and records in ``timings`` how long the
    saving took in its thread and how long the run waited for it. A context manager: leaving it
    waits for a saving under way and drops one not yet started. ``store=None``: nothing is saved
    (a run without models)."""

    def __init__(self, store: ModelStore | None) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hte-save-models")
        self._pending: list[tuple[str, Future]] = []

    def start(self, data: AnalysisData, fits: list[FittedEffect]) -> None:
        if self.store is not None:
            future = self._executor.submit(save_models, self.store, data, fits)
            self._pending.append((data.label, future))

    def wait(self, timings: dict[str, float]) -> None:
        clock = time.perf_counter()
        pending, self._pending = self._pending, []
        for label, future in pending:
            timings[f"{label}/save_models (background)"] = future.result()
            timings[f"{label}/save_models_wait"] = time.perf_counter() - clock

    def __enter__(self) -> BackgroundSaving:
        return self

    def __exit__(self, *exc) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
