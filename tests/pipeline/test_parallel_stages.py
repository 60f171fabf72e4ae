"""The stages that run independent tasks in worker processes (estimator fits, refutations, SHAP
attributions; hte.pipeline.parallel) give exactly what they give in this process, keep the
config's order, and record a failure in a worker as in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hte.pipeline.explain as explain
import hte.pipeline.parallel as parallel
import hte.pipeline.robustness as robustness
from hte.config import load_config
from hte.pipeline.parallel import map_tasks
from hte.pipeline.stages import (
    baseline_averages,
    fit_estimators,
)
from tests.pipeline.prepared import prepared_analysis

CONFIG = """\
name: parallel
data: {source: synthetic, n: 300}
time_zero: [decision]
outcomes:
  os: {survival_horizon: 12, rmst_horizon: 24}
  crs: {any_grade: true, grade3: auto}
estimators:
  - {name: causal_survival_forest, kind: causal_survival_forest, params: {n_estimators: 40}}
  - {name: cox, kind: cox_interaction}
  - {name: crs_causal_forest, kind: crs_causal_forest, params: {n_estimators: 40}}
  - {name: logistic, kind: logistic_interaction, params: {penalty: 1.0}}
  - {name: broken, kind: crs_causal_forest, params: {n_estimators: 41}}
seeds: {global: 5}
"""


@pytest.fixture(autouse=True)
def _processes_allowed(monkeypatch):
    """This file checks the worker-process path itself: lift the suite's cap."""
    monkeypatch.delenv("HTE_MAX_PROCESSES", raising=False)


def test_the_process_cap_applies_and_a_bad_value_is_named(monkeypatch):
    from hte.pipeline.parallel import max_processes

    monkeypatch.setenv("HTE_MAX_PROCESSES", "1")
    assert max_processes() == 1
    assert list(map_tasks(_square, range(3), n_jobs=2)) == [0, 1, 4]
    monkeypatch.setenv("HTE_MAX_PROCESSES", "zero")
    with pytest.raises(
        ValueError, match="HTE_MAX_PROCESSES must be a whole number >= 1; got 'zero'"
    ):
        max_processes()


@pytest.fixture(scope="module")
def analysis(tmp_path_factory):
    return prepared_analysis(tmp_path_factory.mktemp("parallel") / "parallel.yaml", CONFIG)


def _square(x: int) -> int:
    return x * x


WARM_PROBE = "xml.dom.minidom"  # a module neither hte nor this file imports


def _worker_state(_: int) -> tuple[int, bool]:
    import os
    import sys

    return os.getpid(), WARM_PROBE in sys.modules


def test_warm_up_imports_in_the_workers_the_next_stage_uses(monkeypatch):
    from hte.pipeline import parallel

    monkeypatch.setenv("HTE_MAX_PROCESSES", "1")
    assert parallel.warm_workers(2, (WARM_PROBE,)) is False  # one process: nothing to warm
    monkeypatch.delenv("HTE_MAX_PROCESSES")
    assert parallel.warm_workers(2, (WARM_PROBE,)) is True
    states = list(map_tasks(_worker_state, range(8), n_jobs=2))
    assert parallel._warm_up is None  # map_tasks waited for the warm-up before its own tasks
    assert any(imported for _, imported in states)  # they ran in the warmed workers


def _fails(x):
    raise ValueError(f"bad item {x}")


def test_a_worker_task_hands_freed_memory_back_even_when_it_fails(monkeypatch):
    trims = []
    monkeypatch.setattr(parallel, "_malloc_trim", trims.append)
    assert parallel.in_worker(_square, 3) == 9
    with pytest.raises(ValueError, match="bad item 4"):
        parallel.in_worker(_fails, 4)
    assert trims == [0, 0]


def test_a_worker_freezes_its_heap_at_exit_and_registers_that_once(monkeypatch):
    registered, frozen = [], []
    monkeypatch.setattr(parallel, "_malloc_trim", None)
    monkeypatch.setattr(parallel, "_libc_malloc_trim", lambda: None)
    monkeypatch.setattr(parallel.atexit, "register", registered.append)
    assert [parallel.in_worker(_square, x) for x in (1, 2, 3)] == [1, 4, 9]
    assert registered == [parallel._skip_the_final_collections]  # at the first task only
    monkeypatch.setattr(parallel.gc, "freeze", lambda: frozen.append(True))
    parallel._skip_the_final_collections()
    assert frozen == [True]


def test_map_tasks_keeps_the_order_in_and_out_of_process():
    assert list(map_tasks(_square, range(7), n_jobs=1)) == [x * x for x in range(7)]
    assert list(map_tasks(_square, range(7), n_jobs=2)) == [x * x for x in range(7)]


def test_fits_in_processes_equal_fits_in_this_process(analysis):
    data, config = analysis
    seen: list[str] = []
    here = fit_estimators(data, config, n_jobs=1)
    there = fit_estimators(data, config, on_fit=seen.append, n_jobs=2)
    assert [f.key for f in there] == [f.key for f in here]
    # each fit reported once (the ones run here first, then the workers')
    assert sorted(seen) == sorted(f"decision: {f.estimator} ({f.target})" for f in here)
    for a, b in zip(here, there, strict=True):
        assert a.error == b.error
        if a.error is not None:  # the failing fit is recorded, the others went on
            assert a.estimator == "broken" and b.model is None
            continue
        # bit for bit: forests predict in one thread (hte.estimators.serial_prediction)
        for name in ("effect", "lower", "upper"):
            got, want = getattr(b.estimate, name), getattr(a.estimate, name)
            np.testing.assert_array_equal(got, want, err_msg=a.key)
        assert a.arms.keys() == b.arms.keys()
        for arm in a.arms:
            np.testing.assert_array_equal(b.arms[arm], a.arms[arm])
    assert sum(f.error is not None for f in there) == 2  # both CRS outcomes of "broken"
    assert all("multiple of 4" in f.error for f in there if f.error)


def test_every_fit_goes_to_the_workers_but_the_ones_sent_slowly(analysis, tmp_path):
    from hte.pipeline.stages import fit_placement, fit_tasks

    data, config = analysis
    tasks = fit_tasks(config, data.cohort)
    # Cox serves both OS targets from one fit: one task; the others one task per target
    assert [(spec.name, [t for t, _ in targets]) for spec, targets in tasks] == [
        ("causal_survival_forest", ["survival"]),
        ("causal_survival_forest", ["rmst"]),
        ("cox", ["survival", "rmst"]),
        ("crs_causal_forest", ["crs"]),
        ("crs_causal_forest", ["crs_g3"]),
        ("logistic", ["crs"]),
        ("logistic", ["crs_g3"]),
        ("broken", ["crs"]),
        ("broken", ["crs_g3"]),
    ]
    assert all(fit_placement(tasks, config, 2))  # side by side in the two workers
    assert not any(fit_placement(tasks, config, 1))  # one process: every fit here
    assert not any(fit_placement(tasks[:1], config, 2))  # a lone fit: here, with its threads
    # a Bayesian causal forest's sampler crosses back as JSON about as slowly as it fits: the
    # BCFs fit here while the others fit in the workers
    path = tmp_path / "with_bcf.yaml"
    path.write_text(
        CONFIG.replace(
            "seeds:",
            "  - {name: bcf, kind: bcf, params: {num_mcmc: 20}}\n"
            "  - {name: crs_bcf, kind: crs_bcf, params: {num_mcmc: 20}}\nseeds:",
        ),
        encoding="utf-8",
    )
    with_bcf = load_config(path)
    placed = dict(
        zip(
            [(spec.name, targets[0][0]) for spec, targets in fit_tasks(with_bcf, data.cohort)],
            fit_placement(fit_tasks(with_bcf, data.cohort), with_bcf, 2),
            strict=True,
        )
    )
    assert [key for key, away in placed.items() if not away] == [
        ("bcf", "survival"),
        ("bcf", "rmst"),
        ("crs_bcf", "crs"),
        ("crs_bcf", "crs_g3"),
    ]


def test_refutations_in_processes_equal_refutations_in_this_process(analysis, monkeypatch):
    data, config = analysis
    baselines = baseline_averages(data, config)
    monkeypatch.setattr(robustness, "N_SUBSETS", 2)  # read in this process, sent to the workers
    monkeypatch.setattr(robustness, "PROCESSES", 1)
    here = robustness.robustness_checks(data, baselines, config, config.seed)
    monkeypatch.setattr(robustness, "PROCESSES", 2)
    there = robustness.robustness_checks(data, baselines, config, config.seed)
    assert json.dumps(here, sort_keys=True) == json.dumps(there, sort_keys=True)
    subsets = [r for r in there["refutations"] if r["refuter"] == "data_subsets"]
    assert subsets and all("2 random subsets" in r["description"] for r in subsets)


def test_attributions_in_processes_equal_attributions_in_this_process(
    analysis, tmp_path, monkeypatch
):
    data, config = analysis
    fits = [f for f in fit_estimators(data, config, n_jobs=1) if f.estimator != "broken"]
    monkeypatch.setattr(explain, "N_JOBS", 1)
    here = explain.explain_fits(None, data, fits, 60, config.seed)
    monkeypatch.setattr(explain, "N_JOBS", 2)
    (tmp_path / "figures").mkdir()
    there = explain.explain_fits(tmp_path, data, fits, 60, config.seed)
    assert json.dumps(here, sort_keys=True) == json.dumps(there, sort_keys=True)
    assert set(here) == {"causal_survival_forest", "cox", "crs_causal_forest", "logistic"}
    assert "arms" in here["cox"]["survival"] and "arms" not in here["crs_causal_forest"]["crs"]
    assert len(list((tmp_path / "attributions").glob("*.parquet"))) > len(fits)
    assert len(list((tmp_path / "figures").glob("shap_*.png"))) == len(fits)


def test_profile_surrogates_in_processes_equal_surrogates_in_this_process(analysis, monkeypatch):
    # the profile bundle fits its SHAP surrogates in the workers while this process fits the
    # curves and risks: the same surrogates, fidelity and predictions
    import hte.pipeline.profile_bundle as profile_bundle

    data, config = analysis
    fits = [f for f in fit_estimators(data, config, n_jobs=1) if f.estimator != "broken"]
    monkeypatch.setattr(profile_bundle, "N_JOBS", 1)
    here = profile_bundle.fit_profile_bundle(data, fits, config, config.seed)
    monkeypatch.setattr(profile_bundle, "N_JOBS", 2)
    there = profile_bundle.fit_profile_bundle(data, fits, config, config.seed)
    assert set(here.surrogates) == set(there.surrogates) == set(here.sources)
    assert len(here.surrogates) == 4  # survival, RMST, CRS and grade >= 3 CRS
    X = data.X.to_numpy(dtype=float)
    for target, a in here.surrogates.items():
        b = there.surrogates[target]
        assert (a.r2_cv, a.r2_in_sample, a.n) == (b.r2_cv, b.r2_in_sample, b.n)
        np.testing.assert_array_equal(a.model.predict(X), b.model.predict(X), err_msg=target)


def test_policy_trees_in_processes_equal_policy_trees_in_this_process(analysis, monkeypatch):
    import hte.pipeline.subgroups as subgroups
    from hte.pipeline.target_scores import target_scores

    data, config = analysis
    fits = [f for f in fit_estimators(data, config, n_jobs=1) if f.estimator != "broken"]
    scores = target_scores(data, fits, config.seed)
    monkeypatch.setattr(subgroups, "N_JOBS", 1)
    here = subgroups.subgroup_evidence(data, fits, scores, seed=config.seed)
    monkeypatch.setattr(subgroups, "N_JOBS", 2)
    there = subgroups.subgroup_evidence(data, fits, scores, seed=config.seed)
    assert json.dumps(here, sort_keys=True) == json.dumps(there, sort_keys=True)
    weights = [tree["crs_weight"] for tree in there["policy"]["trees"]]
    assert weights == list(subgroups.CRS_WEIGHTS)  # one tree per weight, in order


def test_fold_nuisances_started_beside_the_fits_equal_the_ones_fitted_after(analysis):
    # the held-out folds' nuisances need no fit: the run starts them in the workers before its
    # fits; they are the folds and numbers the held-out stage would fit itself
    from hte.pipeline.heldout_start import start_heldout_fold_nuisances
    from hte.pipeline.heterogeneity import fold_nuisances, heldout_fold_nuisances

    data, config = analysis
    started = start_heldout_fold_nuisances(config, data, 3)
    assert started is not None  # the causal survival forest reads the shared nuisances
    fits = fit_estimators(data, config, n_jobs=1)
    early = heldout_fold_nuisances(fits, data, config.seed, 3, started)
    late = fold_nuisances(data, config.seed, data.nuisances.horizons, 3)
    assert len(early) == len(late) == 3
    for a, b in zip(early, late, strict=True):
        np.testing.assert_array_equal(a.train, b.train)
        np.testing.assert_array_equal(a.test, b.test)
        np.testing.assert_array_equal(a.nuisances.propensity, b.nuisances.propensity)
        np.testing.assert_array_equal(a.nuisances.survival.surv, b.nuisances.survival.surv)
        np.testing.assert_array_equal(a.nuisances.survival.cens, b.nuisances.survival.cens)
    # no OS estimator reads them (Cox fits its own curves): nothing is started
    cox_only = config.model_copy(deep=True)
    cox_only.estimators = [s for s in cox_only.estimators if s.name == "cox"]
    assert start_heldout_fold_nuisances(cox_only, data, 3) is None


def test_refits_started_before_the_fits_equal_the_ones_made_after(analysis):
    # the estimators that read no fold nuisances (Cox, the CRS learners) are refitted in the
    # workers before the fits; the held-out stage takes those results: the same as refitting
    # every group after the fits
    from hte.pipeline.heldout_start import start_independent_refits
    from hte.pipeline.heterogeneity import all_heldout_effects, heldout_fold_nuisances

    data, config = analysis
    started = start_independent_refits(config, data, 3)
    assert started is not None
    assert sorted(started.keys) == [
        ("broken__crs",),
        ("broken__crs_g3",),
        ("cox__survival", "cox__rmst"),
        ("crs_causal_forest__crs",),
        ("crs_causal_forest__crs_g3",),
        ("logistic__crs",),
        ("logistic__crs_g3",),
    ]  # not the causal survival forest: it reads the folds' nuisances
    fits = fit_estimators(data, config, n_jobs=1)
    folds = heldout_fold_nuisances(fits, data, config.seed, 3)
    early = all_heldout_effects(fits, data, config.seed, folds, 3, started)
    late = all_heldout_effects(fits, data, config.seed, folds, 3)
    usable = {f.key for f in fits if f.error is None}
    assert set(early) == set(late) == usable  # the failed fits' early refits are dropped
    for key in usable:
        np.testing.assert_array_equal(early[key], late[key], err_msg=key)


class _ExitHooks:
    """Stands in for ``atexit``: the hooks in the order they would run last-in first-out."""

    def __init__(self):
        self.hooks = []

    def register(self, fn):
        self.hooks.append(fn)

    def unregister(self, fn):
        self.hooks = [h for h in self.hooks if h is not fn]


def test_the_exit_step_is_registered_once_however_often_it_is_asked_for(monkeypatch):
    hooks = _ExitHooks()
    monkeypatch.setattr(parallel, "atexit", hooks)
    for _ in range(3):
        parallel.skip_final_collections_at_exit()
    assert hooks.hooks == [parallel._skip_the_final_collections]


def _learner_threads(requested: int) -> int:
    from joblib import effective_n_jobs

    return effective_n_jobs(requested)


def test_a_worker_task_keeps_the_learners_own_threads_at_one(monkeypatch):
    monkeypatch.setattr(parallel, "_malloc_trim", lambda pad: 0)
    assert parallel.in_worker(_learner_threads, 2) == 1  # joblib's sequential backend
    assert parallel.single_threaded(_learner_threads, 2) == 2  # this process: as asked
    assert set(map_tasks(_learner_threads, [2, 2, 2], n_jobs=2)) == {1}


def test_the_first_worker_task_widens_lokys_memory_allowance(monkeypatch):
    from joblib.externals.loky import process_executor

    monkeypatch.setattr(process_executor, "_MAX_MEMORY_LEAK_SIZE", 300_000_000)
    monkeypatch.setattr(parallel, "_malloc_trim", None)
    monkeypatch.setattr(parallel, "skip_final_collections_at_exit", lambda: None)
    assert parallel.in_worker(_square, 2) == 4
    assert process_executor._MAX_MEMORY_LEAK_SIZE == parallel.WORKER_GROWTH_ALLOWANCE
    monkeypatch.delattr(process_executor, "_MAX_MEMORY_LEAK_SIZE")
    assert parallel.allow_worker_growth() is False  # a joblib without the setting: no change


HELD_BYTES = 400_000_000  # more than loky's own allowance (300 MB), less than ours


def _grow_then_wait(_: int) -> int:
    """Keep 400 MB alive in this worker from its first call of this function on (as a learner's
    imports and caches stay), then wait past loky's 1 s between memory checks."""
    import builtins
    import os
    import time

    if getattr(builtins, "_hte_test_held", None) is None:
        builtins._hte_test_held = np.ones(HELD_BYTES // 8)
    time.sleep(1.2)
    return os.getpid()


def test_a_worker_that_grows_past_lokys_allowance_is_kept():
    from joblib.externals.loky import get_reusable_executor

    try:
        list(map_tasks(_worker_state, range(4), n_jobs=2))  # workers past their first task
        pids = set(map_tasks(_grow_then_wait, range(6), n_jobs=2))
        # loky would replace each grown worker after its first such task ("memory leak"): the
        # six tasks would then run in three or more processes
        assert len(pids) <= 2
    finally:
        get_reusable_executor().shutdown(wait=True)  # the later tests' workers start small
