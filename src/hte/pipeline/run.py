"""``run_experiment``: the stages chained, with a progress bar, a log and the run folder."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from hte.config import ExperimentConfig, check_output_root, preflight, resolved_config_dict
from hte.data.columns import CRS_GRADE
from hte.errors import STAGE_FAILURES
from hte.pipeline.explain import explain_fits
from hte.pipeline.figures import write_figures
from hte.pipeline.heldout_start import start_heldout_work
from hte.pipeline.heterogeneity import (
    all_heldout_effects,
    heldout_fold_nuisances,
    heterogeneity_tests,
)
from hte.pipeline.model_average import preferred_model
from hte.pipeline.model_choice import model_choices
from hte.pipeline.model_saving import BackgroundSaving
from hte.pipeline.parallel import warm_workers
from hte.pipeline.results import (
    decision_truth,
    effects_frame,
    estimator_summary,
    time_zero_comparison,
    truth_enabled,
    truth_summary,
)
from hte.pipeline.robustness import robustness_checks
from hte.pipeline.stages import (
    AnalysisData,
    FittedEffect,
    baseline_averages,
    data_rules,
    design_diagnostics,
    fit_analysis_nuisances,
    fit_estimators,
    prepare_analysis,
    prepare_cohort,
)
from hte.pipeline.subgroups import subgroup_evidence
from hte.pipeline.target_scores import target_scores_and_residuals
from hte.runs import (
    COHORT_SPEC_FILE,
    CONFIG_FILE,
    EFFECTS_FILE,
    FINGERPRINT_FILE,
    LOG_FILE,
    METRICS_FILE,
    SEEDS_FILE,
    TIMINGS_FILE,
    VERSIONS_FILE,
    AnalysisSummary,
    EstimatorSummary,
    ModelStore,
    RunSummary,
    config_hash,
    create_partial_run_dir,
    finish_run_dir,
    make_run_id,
    mark_run_failed,
    model_path,
    nuisances_path,
    package_versions,
    write_json,
)

log = logging.getLogger("hte.pipeline")


@dataclass(frozen=True)
class RunResult:
    """What ``run_experiment`` returns: the run folder (None when nothing was written), the
    metrics (JSON-ready, as in metrics.json), the per-patient effects table and the typed run
    summary metrics.json was written from."""

    run_dir: Path | None
    metrics: dict
    effects: pd.DataFrame
    summary: RunSummary | None = None


# --------------------------------------------------------------------------------------------------
# Progress and logging


_STOP = threading.Event()


def request_stop() -> None:
    """Ask the running experiment to stop at its next stage boundary.

    The CLI's Ctrl-C handler calls it before raising KeyboardInterrupt: Python drops an exception
    raised while a finalizer runs ("Exception ignored in ..."), so a Ctrl-C landing there would be
    lost; the flag still stops the run at the next stage, and before it is marked finished."""
    _STOP.set()


def _raise_if_stop_requested() -> None:
    if _STOP.is_set():
        raise KeyboardInterrupt("stop requested")


class _Stages:
    """A rich progress bar over the run's stages (or nothing, when ``enabled`` is False)."""

    def __init__(self, total: int, enabled: bool):
        self.enabled = enabled
        self.total = total
        self._progress = None
        self._task = None
        self._started = 0

    def __enter__(self) -> _Stages:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<48}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                transient=False,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("starting", total=self.total)
        return self

    def step(self, description: str) -> None:
        """Start a stage (the previous one is counted as done) and log it; stop here if a stop was
        requested (``request_stop``)."""
        _raise_if_stop_requested()
        log.info(description)
        if self._progress is not None:
            self._progress.update(self._task, description=description, completed=self._started)
        self._started += 1

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.total, description="done")
            self._progress.__exit__(*exc)


@contextmanager
def _run_log(path: Path | None) -> Iterator[None]:
    """Send hte's log records to ``path`` for the duration of the run."""
    logger = logging.getLogger("hte")
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


# --------------------------------------------------------------------------------------------------
# The whole run


def n_stages(config: ExperimentConfig, columns: tuple[str, ...], profile: bool = True) -> int:
    """Stages of a run, as ``_run`` steps through them: the cohort, per analysis three design
    stages, one per fit, the heterogeneity tests, subgroup rules and robustness checks (when on),
    one for SHAP attributions and one for the profile explorer's bundle (``profile``: when models
    are written), and the run folder."""
    fits = 0
    for spec in config.estimators:
        if spec.outcome == "os":
            fits += len(config.outcomes.os.targets())
        else:
            fits += len(config.outcomes.crs.outcomes(has_grade=CRS_GRADE in columns))
    per_analysis = (
        3
        + fits
        + 1  # design stages, fits, heterogeneity tests
        + (1 if config.explanation.subgroup_rules else 0)
        + (1 if config.evaluation.robustness else 0)
        + (1 if config.explanation.shap else 0)
        + (1 if profile else 0)
    )
    return 1 + len(config.time_zero) * per_analysis + 1


def run_experiment(
    config: ExperimentConfig,
    *,
    output_root: Path | None = None,
    progress: bool = True,
    write_models: bool = True,
) -> RunResult:
    """Run a whole experiment and write its run folder ``<root>/<name>/<run-id>/``.

    The pre-flight runs first (``ConfigError`` before anything is fitted). ``output_root``
    overrides ``config.output.root``; ``progress`` shows a rich progress bar of the stages;
    ``write_models=False`` skips saving fitted models (sweeps). Same config and seed give a
    byte-identical metrics.json.

    The run is written into ``<run-id>.partial`` and renamed to ``<run-id>`` after its last file
    (``complete.json``), so a folder with a run id is always a finished run (``hte.runs``). A run
    that fails keeps its partial folder with ``failed.json`` (the log helps); one interrupted
    (Ctrl-C) removes it.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    facts = preflight(config)
    timings["preflight"] = time.perf_counter() - clock
    resolved = resolved_config_dict(config)
    run_id = make_run_id(resolved)
    root = Path(output_root) if output_root is not None else Path(config.output.root)
    check_output_root(root, "output root" if output_root is not None else "output.root")
    partial = create_partial_run_dir(root, config.name, run_id)
    _STOP.clear()
    _warm_worker_processes()
    try:
        with (
            _run_log(partial / LOG_FILE),
            _Stages(n_stages(config, facts.columns, write_models), progress) as stages,
        ):
            log.info("run %s of %s (written in %s until it finishes)", run_id, config.name, partial)
            result = _run(config, facts, partial, run_id, resolved, stages, timings, write_models)
        timings["total"] = time.perf_counter() - clock
        write_json(partial / TIMINGS_FILE, timings)
        _raise_if_stop_requested()
    except KeyboardInterrupt:
        shutil.rmtree(partial, ignore_errors=True)  # interrupted: no trace
        raise
    except BaseException as exc:
        mark_run_failed(partial, f"{type(exc).__name__}: {exc}")
        raise
    run_dir = finish_run_dir(partial, {"run_id": run_id, "name": config.name})
    return dataclasses.replace(result, run_dir=run_dir)


def _warm_worker_processes() -> None:
    """Start the held-out, refutation and SHAP stages' worker processes in the background now
    (``hte.pipeline.parallel.warm_workers``): their imports then overlap the run's first stages."""
    from hte.pipeline import explain, heterogeneity, robustness

    warm_workers(max(heterogeneity.N_JOBS, robustness.PROCESSES, explain.N_JOBS))


def _run(config, facts, run_dir, run_id, resolved, stages, timings, write_models) -> RunResult:
    stages.step("cohort")
    clock = time.perf_counter()
    cohort, fingerprint = prepare_cohort(config, facts)
    timings["cohort"] = time.perf_counter() - clock
    _write_provenance(run_dir, config, resolved, fingerprint)
    if facts.extraction is not None:  # the cohort spec the OMOP extraction used, as it was
        shutil.copyfile(config.data.spec, run_dir / COHORT_SPEC_FILE)
    with_truth = truth_enabled(config, cohort)
    store = ModelStore(run_dir, run_id) if write_models else None
    analyses: dict[str, AnalysisSummary] = {}
    prepared: list[AnalysisData] = []
    all_fits: dict[str, list[FittedEffect]] = {}
    with BackgroundSaving(store) as saving:
        for analysis in config.time_zero:
            data, fits, analyses[str(analysis.label)], choices = _analyse(
                cohort, analysis, config, stages, timings, with_truth, saving.start
            )
            prepared.append(data)
            all_fits[data.label] = fits
            saving.wait(timings)  # the models are saved before this thread predicts with them
            if config.explanation.shap:
                _attach_attributions(run_dir, data, fits, config, analyses, stages, timings)
            if data.nuisances is not None:
                data.nuisances.save(run_dir / nuisances_path(data.label))
            if store is not None:
                _save_profile(store, data, fits, config, stages, timings, choices)
    stages.step("run folder: metrics, effects, figures")
    clock = time.perf_counter()
    summary = _summary(config, resolved, fingerprint, cohort, analyses, all_fits, with_truth)
    if facts.extraction is not None:  # cohort built from an OMOP database: its attrition
        summary.cohort_extraction = facts.extraction
    metrics_text = summary.to_json()
    (run_dir / METRICS_FILE).write_text(metrics_text, encoding="utf-8")
    effects = pd.concat(
        [effects_frame(data, all_fits[data.label]) for data in prepared], ignore_index=True
    )
    effects.to_parquet(run_dir / EFFECTS_FILE, index=False)
    write_figures(run_dir, prepared, all_fits)
    if store is not None:
        store.write_manifest()
    timings["outputs"] = time.perf_counter() - clock
    return RunResult(
        run_dir=run_dir, metrics=json.loads(metrics_text), effects=effects, summary=summary
    )


def _write_provenance(run_dir: Path, config, resolved: dict, fingerprint: dict) -> None:
    """config.resolved.yaml, fingerprint.json, versions.json, seeds.json."""
    (run_dir / CONFIG_FILE).write_text(yaml.safe_dump(resolved, sort_keys=False), "utf-8")
    write_json(run_dir / FINGERPRINT_FILE, fingerprint)
    write_json(run_dir / VERSIONS_FILE, package_versions())
    seed = config.seed
    write_json(
        run_dir / SEEDS_FILE,
        {
            "global": seed,
            "data": getattr(config.data, "seed", None),
            "estimators": seed,
            "folds": seed,
            "bootstrap": seed,
        },
    )


def _analyse(cohort, analysis, config, stages, timings, with_truth, on_fitted=None):
    """One time-zero analysis: design, diagnostics, baselines, fits; returns the prepared data,
    the fits, the analysis's metrics and the chosen model per target. ``on_fitted(data, fits)``
    is called once the fits are summarized (the run starts saving the models then)."""
    label = str(analysis.label)
    stages.step(f"{label}: time zero and design")
    clock = time.perf_counter()
    data = prepare_analysis(cohort, analysis)
    stages.step(f"{label}: cross-fitted nuisances, overlap, balance")
    timings[f"{label}/design"] = time.perf_counter() - clock
    clock_nuisances = time.perf_counter()
    fit_analysis_nuisances(data, config)
    timings[f"{label}/nuisances"] = time.perf_counter() - clock_nuisances
    clock = time.perf_counter()
    diagnostics = design_diagnostics(data, config.seed)
    stages.step(f"{label}: IPTW baselines")
    baselines = baseline_averages(data, config)
    timings[f"{label}/design_and_baselines"] = (
        time.perf_counter() - clock + timings.pop(f"{label}/design")
    )
    n_folds = config.evaluation.heldout_folds
    # held-out work that needs no fitted model: the workers start it beside the fits
    started, started_refits = start_heldout_work(config, data, n_folds)
    fits = fit_estimators(data, config, on_fit=stages.step)
    estimators: dict[str, dict[str, EstimatorSummary]] = {}
    for fit in fits:
        timings[f"{label}/{fit.key}"] = fit.seconds
        summary = estimator_summary(fit, config.evaluation.alpha, data.X)
        truth = truth_summary(fit, data.cohort) if with_truth else None
        if truth is not None:
            summary.truth = truth
        estimators.setdefault(fit.estimator, {})[fit.target] = summary
    if on_fitted is not None:
        on_fitted(data, fits)
    stages.step(f"{label}: held-out RATE, TOC and BLP tests")
    clock = time.perf_counter()
    # once: tests, subgroups, model choice (DR scores), and the R-loss residuals beside them
    scores, residuals = target_scores_and_residuals(data, fits, config.seed)
    tested = [f for f in fits if f.target in scores]
    clock_folds = time.perf_counter()  # the wait for them: they started beside the fits
    folds = heldout_fold_nuisances(tested, data, config.seed, n_folds, started)
    timings[f"{label}/heldout_nuisances"] = time.perf_counter() - clock_folds
    refits = all_heldout_effects(tested, data, config.seed, folds, n_folds, started_refits)
    tests, score_sources = heterogeneity_tests(
        data, fits, config.evaluation.alpha, config.seed, scores, refits, n_folds
    )
    choice_metrics, choices = model_choices(
        data,
        fits,
        scores,
        refits,
        config.evaluation.alpha,
        config.seed,
        residuals=residuals,
        loss=config.evaluation.model_choice_loss,
        gate=config.evaluation.model_choice_gate,
        preferred=preferred_model(config),
    )
    timings[f"{label}/heterogeneity_tests"] = time.perf_counter() - clock
    for estimator, by_target in tests.items():
        for target, result in by_target.items():
            estimators[estimator][target].heterogeneity = result
    extras = _evidence(data, fits, scores, baselines, config, stages, timings)
    summary = AnalysisSummary(
        mode=data.mode,
        description=data.description,
        n_analysed=len(data.cohort),
        n_by_arm={"cart": int(data.treatment.sum()), "tec": int((1 - data.treatment).sum())},
        n_excluded_by_reason=data.n_excluded_by_reason,
        design={"features": data.design.feature_names, "missing": data.design.describe_missing()},
        **diagnostics,
        baselines=baselines,
        heterogeneity_scores=score_sources,
        model_choice=choice_metrics,
        estimators=estimators,
        **extras,
    )
    return data, fits, summary, choices


def _evidence(data, fits, scores, baselines, config, stages, timings) -> dict:
    """Subgroup rules and policy trees, and refutations with E-values, when the config asks for
    them. Optional extras: a failure is recorded in metrics and the run goes on."""
    out: dict[str, Any] = {}
    label = data.label
    if config.explanation.subgroup_rules:
        stages.step(f"{label}: subgroup rules and policy trees")
        clock = time.perf_counter()
        try:
            out["subgroups"] = subgroup_evidence(
                data,
                fits,
                scores,
                max_depth=config.explanation.max_rule_depth,
                alpha=config.evaluation.alpha,
                seed=config.seed,
            )
        except STAGE_FAILURES as exc:
            log.exception("subgroup rules failed for %s", label)
            out["subgroups"] = {"error": f"{type(exc).__name__}: {exc}"}
        timings[f"{label}/subgroups"] = time.perf_counter() - clock
    if config.evaluation.robustness:
        stages.step(f"{label}: refutations and E-values")
        clock = time.perf_counter()
        try:
            out["robustness"] = robustness_checks(data, baselines, config, config.seed)
        except STAGE_FAILURES as exc:
            log.exception("robustness checks failed for %s", label)
            out["robustness"] = {"error": f"{type(exc).__name__}: {exc}"}
        timings[f"{label}/robustness"] = time.perf_counter() - clock
    return out


def _summary(config, resolved, fingerprint, cohort, analyses, all_fits, with_truth) -> RunSummary:
    """The run summary written as metrics.json: deterministic content only (no timings, no paths
    of this run)."""
    metrics: dict[str, Any] = {
        "experiment": {
            "name": config.name,
            "config_sha256": config_hash(resolved),
            "seed": config.seed,
            "alpha": config.evaluation.alpha,
        },
        "data": fingerprint,
        "data_rules": data_rules(config, cohort),
        "analyses": analyses,
        "truth_metrics": with_truth,
        "failures": [
            f"{label}/{f.key}: {f.error} (fix: {f.fix})"
            for label, fs in all_fits.items()
            for f in fs
            if f.error
        ],
    }
    if with_truth:
        truth = decision_truth(cohort, config)
        metrics["decision_truth"] = truth
        if len(config.time_zero) > 1 or config.time_zero[0].mode != "decision":
            metrics["time_zero_comparison"] = time_zero_comparison(analyses, truth)
    if config.explanation.shap or config.explanation.subgroup_rules:
        metrics["explanation"] = {
            "shap": (
                f"run: per estimator/target under analyses.<analysis>.estimators (attributions on "
                f"at most {config.explanation.n_patients_shap} patients)"
                if config.explanation.shap
                else "not run: explanation.shap is false"
            ),
            "subgroup_rules": (
                "run: rule trees, policy trees and prespecified subgroups under "
                "analyses.<analysis>.subgroups"
                if config.explanation.subgroup_rules
                else "not run: explanation.subgroup_rules is false"
            ),
        }
    return RunSummary(**metrics)


def _attach_attributions(run_dir, data, fits, config, analyses, stages, timings) -> None:
    """SHAP attributions of one analysis's fits: files in the run folder, summaries in the
    analysis's metrics under ``estimators.<estimator>.<target>.attributions``."""
    stages.step(f"{data.label}: SHAP attributions")
    clock = time.perf_counter()
    summaries = explain_fits(run_dir, data, fits, config.explanation.n_patients_shap, config.seed)
    timings[f"{data.label}/attributions"] = time.perf_counter() - clock
    estimators = analyses[data.label].estimators
    for estimator, by_target in summaries.items():
        for target, summary in by_target.items():
            estimators[estimator][target].attributions = summary


def _save_profile(store, data, fits, config, stages, timings, choices=None) -> None:
    """The profile explorer's bundle of one analysis (hte.pipeline.profile), saved beside the
    models; a failure is logged and the run goes on (the explorer then asks for a rerun)."""
    from hte.pipeline.profile import fit_profile_bundle

    stages.step(f"{data.label}: profile explorer")
    clock = time.perf_counter()
    try:
        bundle = fit_profile_bundle(data, fits, config, config.seed, choices=choices)
    except STAGE_FAILURES:
        log.exception("no profile explorer bundle for %s", data.label)
        return
    store.save(model_path(data.label, "profile"), bundle, role="profile", analysis=data.label)
    timings[f"{data.label}/profile"] = time.perf_counter() - clock
