"""Independent pipeline tasks in worker processes, without thread oversubscription.

A run's estimator fits, held-out refits and refutation re-estimates do not depend on each
other. ``map_tasks`` runs them in ``n_jobs`` loky worker processes (2 by default: the machine's
2 cores) and hands the results back in task order. Every task runs under threadpoolctl's limit
of one BLAS / OpenMP thread, in a worker or in this process alike (``n_jobs=1``), so the two
paths run the same computation and give the same numbers (same metrics.json); without the
limit each of the 2 processes would start a thread per core and they would fight over the cores.
In a worker, each task also hands its freed memory back to the system afterwards, and the
worker's last garbage collections skip its heap when the run ends (``in_worker``).
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger("hte.pipeline")

N_JOBS = 2
# caps the worker processes of every stage, e.g. on a machine whose cores are already busy (the
# test suite sets it to 1: its own 2 workers keep both cores busy)
MAX_PROCESSES_ENV = "HTE_MAX_PROCESSES"


def max_processes() -> int | None:
    """The cap from ``HTE_MAX_PROCESSES`` (a whole number >= 1), or None when it is unset."""
    raw = os.environ.get(MAX_PROCESSES_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{MAX_PROCESSES_ENV} must be a whole number >= 1; got {raw!r}")
    return int(raw)


def effective_jobs(n_jobs: int) -> int:
    """``n_jobs`` under the ``HTE_MAX_PROCESSES`` cap."""
    cap = max_processes()
    return int(n_jobs) if cap is None else min(int(n_jobs), cap)


# The worker processes cost about 10 s of imports when they start (econml, scikit-survival,
# pandas, statsmodels...). ``warm_workers`` pays it in the background at the start of a run, while
# the run prepares its data and fits in this process; ``map_tasks`` waits for it to finish.
WARM_MODULES = ("hte.pipeline.run",)
_warm_up: threading.Thread | None = None


def _import_modules(modules: tuple[str, ...]) -> None:
    import importlib

    for module in modules:
        importlib.import_module(module)


def _start_and_import(n_jobs: int, modules: tuple[str, ...]) -> None:
    from joblib import Parallel, delayed

    try:
        Parallel(n_jobs=n_jobs, backend="loky", batch_size=1)(
            delayed(_import_modules)(modules) for _ in range(n_jobs)
        )
    except Exception:  # a failed warm-up only costs the time it was meant to save
        log.warning("warming the worker processes failed", exc_info=True)


def warm_workers(n_jobs: int = N_JOBS, modules: tuple[str, ...] = WARM_MODULES) -> bool:
    """Start the ``n_jobs`` worker processes now, in a background thread, and import
    ``modules`` in each, so that the first stage that maps tasks to them does not wait for their
    imports. Nothing happens when one process is all there is to use (``n_jobs`` or the cap is
    1) or a warm-up is already under way. The numbers of a run are the same either way.
    Returns whether a warm-up started."""
    global _warm_up
    jobs = effective_jobs(n_jobs)
    if jobs < 2 or (_warm_up is not None and _warm_up.is_alive()):
        return False
    _warm_up = threading.Thread(
        target=_start_and_import, args=(jobs, tuple(modules)), name="hte-warm-workers", daemon=True
    )
    _warm_up.start()
    return True


def wait_for_warm_up() -> None:
    """Block until a warm-up started by ``warm_workers`` has finished (joblib's executor is then
    free for this thread)."""
    global _warm_up
    if _warm_up is not None:
        _warm_up.join()
        _warm_up = None


def single_threaded(fn: Callable[[Any], Any], item: Any) -> Any:
    """``fn(item)`` with BLAS and OpenMP limited to one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return fn(item)


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim: Callable[[int], int] | None = None


# How far a worker's resident memory may grow past its size after its first task before loky
# takes it for a leak and replaces it (loky's own allowance is 300 MB; ``allow_worker_growth``)
WORKER_GROWTH_ALLOWANCE = 1_000_000_000


def in_worker(fn: Callable[[Any], Any], item: Any) -> Any:
    """``single_threaded(fn, item)`` in a worker process, then the freed heap handed back to
    the system. Without that, a worker's resident memory only grows (big fits free their memory
    to the allocator, not the system), and loky replaces a worker that has grown by 300 MB
    since its first task as "leaking", with a warning and a new process that imports hte
    again; the default run lost both its workers that way. Trimming takes about 2 ms. The first
    task also registers the worker's exit step (``skip_final_collections_at_exit``) and widens
    loky's allowance (``allow_worker_growth``).

    The task also runs under joblib's sequential backend: the learners' own threads (the
    histogram forests' tree threads, scikit-learn's and scikit-survival's forests) stay at one,
    as BLAS does, since the other worker keeps the other core busy. Their trees are seeded each,
    so the numbers are the same (docs/speed.md)."""
    from joblib import parallel_config

    global _malloc_trim
    try:
        with parallel_config(backend="sequential"):
            return single_threaded(fn, item)
    finally:
        if _malloc_trim is None:  # the first task of this worker process
            _malloc_trim = _libc_malloc_trim() or (lambda pad: 0)
            skip_final_collections_at_exit()
            allow_worker_growth()
        _malloc_trim(0)


def allow_worker_growth(allowance: int = WORKER_GROWTH_ALLOWANCE) -> bool:
    """Let this worker process grow by ``allowance`` bytes past its size after its first task
    before loky replaces it as leaking (loky allows 300 MB). Even with the heap trimmed after
    every task, a default run's workers grow from about 250 to 450-580 MB: the learners import
    their libraries on first use (econml's forests, statsmodels, shap, stochtree: about 120 MB)
    and keep caches. A default run now and then lost a worker that way (1 of 9 runs on
    2026-12-08), printed joblib's "A worker stopped ... memory leak" warning and paid for a new
    process importing hte again. The workers live no longer than the executor (loky stops them
    after 300 s idle), so a real leak stays bounded. The allowance is loky's module setting,
    read in the worker at each check; returns False (nothing changed) where a joblib release no
    longer has it."""
    from joblib.externals.loky import process_executor

    if not hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):
        return False
    process_executor._MAX_MEMORY_LEAK_SIZE = int(allowance)
    return True


def skip_final_collections_at_exit() -> None:
    """Have this process freeze its heap when it exits (``_skip_the_final_collections``);
    registered once however often it is called. ``hte run`` calls it too: its own heap holds
    the run's fitted models."""
    atexit.unregister(_skip_the_final_collections)
    atexit.register(_skip_the_final_collections)


def _skip_the_final_collections() -> None:
    """An exit step: freeze the heap (``gc.freeze``) so that the interpreter's last garbage
    collections skip it. Those passes over a worker that had imported the learners and run
    their fits took about 1.3 s each, and ``hte run`` waited for both workers, then for its
    own heap, at its end. Every other exit step still runs (atexit handlers,
    ``weakref.finalize`` callbacks such as joblib's clean-up of memory-mapped inputs, module
    clean-up); only objects kept alive by reference cycles are left to the system."""
    gc.freeze()


def map_tasks(fn: Callable[[Any], Any], items: Iterable[Any], n_jobs: int = N_JOBS) -> Iterator:
    """``fn(item)`` for each item, lazily and in order: in ``n_jobs`` worker processes when
    ``n_jobs > 1`` and there is more than one item (``fn`` and the items must pickle), else in
    this process. Each call runs single-threaded (``single_threaded``). ``HTE_MAX_PROCESSES``
    caps ``n_jobs`` (same numbers either way)."""
    items = list(items)
    n_jobs = effective_jobs(n_jobs)
    if n_jobs > 1 and len(items) > 1:
        from joblib import Parallel, delayed

        wait_for_warm_up()

        # batch_size=1: joblib's automatic batching would queue a slow task behind a batch of
        # quick ones in one worker while the other worker idles
        run = Parallel(n_jobs=n_jobs, backend="loky", batch_size=1, return_as="generator")
        return iter(run(delayed(in_worker)(fn, item) for item in items))
    return (single_threaded(fn, item) for item in items)
