"""The `hte` command line: a thin face on the library (no modelling code here)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="hte",
    help="Individualized effects of BCMA CAR-T vs teclistamab on survival and CRS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
# the report after a run draws its sections in the run's 2 worker processes, still running then
REPORT_JOBS = 2
INTERRUPTED = 130  # exit code after Ctrl-C (128 + SIGINT), as shells report it


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    n: Annotated[int, typer.Option(help="Number of patients.", min=1)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same file.")] = 0,
    scenario: Annotated[
        str,
        typer.Option(
            help="Named scenario: default, null_effect, strong_confounding, poor_overlap, "
            "heavy_censoring, no_manufacturing_delay, short_follow_up."
        ),
    ] = "default",
) -> None:
    """Draw a calibrated synthetic RRMM cohort with known true effects (`true_*` columns)."""
    from hte.data.simulate import SCENARIOS, simulate_cohort, write_cohort

    if scenario not in SCENARIOS:
        err_console.print(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        err_console.print(f"cannot write {out}: use a .csv or .parquet file name")
        raise typer.Exit(2)
    cohort = simulate_cohort(n=n, seed=seed, scenario=scenario)
    write_cohort(cohort, out)
    console.print(f"wrote {len(cohort)} patients ({scenario}, seed {seed}) to {out}")


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Cohort file (.csv or .parquet).")],
    columns: Annotated[
        Path | None,
        typer.Option(
            help="Column map YAML: renames, treatment codes, time unit, value recoding, units, "
            "ranges, excluded columns."
        ),
    ] = None,
    max_file_mb: Annotated[
        float, typer.Option(help="Refuse files larger than this (MB) before reading.", min=0)
    ] = 100.0,
) -> None:
    """Check a cohort file against the schema; print a summary, or every problem found."""
    from rich.markup import escape

    from hte.data.column_map import ColumnMap, ColumnMapError
    from hte.data.load import CohortFileError, load_cohort
    from hte.data.schema import CohortValidationError, column_notes
    from hte.data.summary import render_problems, render_summary, summarize_cohort

    try:
        column_map = ColumnMap.from_yaml(columns) if columns is not None else None
    except ColumnMapError as exc:
        err_console.print(f"[red]bad column map[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    try:
        cohort = load_cohort(file, column_map=column_map, max_file_mb=max_file_mb)
    except CohortFileError as exc:
        err_console.print(f"[red]cannot read {escape(str(file))}[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    except CohortValidationError as exc:
        err_console.print(render_problems(exc.problems, source=str(file)))
        raise typer.Exit(1) from None
    console.print("[green]ok[/green]")
    console.print(render_summary(summarize_cohort(cohort)))
    for note in column_notes(cohort.columns, column_map):
        console.print(f"note: {escape(note)}", highlight=False)


@app.command()
def calibrate(
    n: Annotated[int, typer.Option(help="Size of the default cohort to draw.", min=500)] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sources: Annotated[bool, typer.Option(help="Show each figure's published source.")] = False,
) -> None:
    """Compare a large default synthetic cohort with the published calibration targets."""
    from hte.evaluation.cohort_calibration import render_calibration, run_calibration

    report = run_calibration(n=n, seed=seed)
    console.print(render_calibration(report, show_sources=sources))
    if not report.all_pass:
        raise typer.Exit(1)


@app.command()
def run(
    config: Annotated[
        Path, typer.Argument(help="Experiment config (YAML), e.g. configs/default.yaml.")
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set data.n=500 (repeatable)."),
    ] = None,
    output_root: Annotated[
        Path | None, typer.Option(help="Write run folders here instead of output.root.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar of the stages.")] = True,
    models: Annotated[bool, typer.Option(help="Save fitted models (for hte predict).")] = True,
) -> None:
    """Run an experiment end to end and write its run folder (checks the config first)."""
    from rich.markup import escape

    from hte.config import ConfigError, load_config
    from hte.pipeline.parallel import warm_workers

    def stop_on_ctrl_c(signum, frame):
        running = sys.modules.get("hte.pipeline.run")
        if running is not None:  # stops the run at its next stage even if this exception is lost
            running.request_stop()
        raise KeyboardInterrupt

    def quiet_lost_interrupt(unraisable):  # a Ctrl-C dropped inside a finalizer: no traceback
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            sys.__unraisablehook__(unraisable)

    previous = signal.signal(signal.SIGINT, stop_on_ctrl_c)
    sys.unraisablehook = quiet_lost_interrupt
    try:  # the config, then its pre-flight against the data, before anything is fitted
        # the worker processes of the later stages import hte while this process checks the
        # config and imports the pipeline (hte.pipeline.parallel)
        warm_workers()
        cfg = load_config(config, set_ or [])
        from hte.pipeline import run_experiment

        result = run_experiment(
            cfg, output_root=output_root, progress=progress, write_models=models
        )
    except ConfigError as exc:
        err_console.print(f"[red]config error[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: the run stopped and its unfinished folder was removed; "
            "no run folder was written",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(INTERRUPTED) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = sys.__unraisablehook__
    from hte.pipeline import render_summary

    console.print(render_summary(result.metrics))
    console.print(
        f"run folder: [bold]{escape(str(result.run_dir))}[/bold]", highlight=False, soft_wrap=True
    )
    if result.run_dir is not None:
        from hte.report import write_report

        path = write_report(result.run_dir, n_jobs=REPORT_JOBS)
        console.print(f"report: {escape(str(path))}", highlight=False, soft_wrap=True)
    from hte.pipeline.parallel import skip_final_collections_at_exit

    skip_final_collections_at_exit()  # the run is done: exit without collecting its models


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by hte run.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write the self-contained HTML report of a run folder (opens offline)."""
    from hte.report import write_report
    from hte.runs import RunFolderError

    try:
        path = write_report(run_dir, out)
    except (FileNotFoundError, RunFolderError) as exc:
        err_console.print(f"[red]error[/red]: {exc}", highlight=False)
        raise typer.Exit(1) from None
    console.print(str(path), highlight=False, soft_wrap=True)


@app.command("runs")
def runs_command(
    root: Annotated[
        Path, typer.Argument(help="Output root (or one experiment's folder) to list.")
    ] = Path("experiments"),
) -> None:
    """List run folders with their state: complete, incomplete (interrupted or running), failed."""
    from rich.markup import escape

    from hte.runs import FAILED_FILE, list_runs

    if not root.is_dir():
        err_console.print(f"[red]error[/red]: {escape(str(root))} is not a folder", highlight=False)
        raise typer.Exit(1)
    found = list_runs(root)
    for path, state in found:
        line = f"{state:<10}  {escape(str(path))}"
        if state == "failed":
            import json

            try:
                reason = json.loads((path / FAILED_FILE).read_text(encoding="utf-8"))["error"]
            except (OSError, ValueError, KeyError, TypeError):
                reason = "see its run.log"
            line += f"  ({escape(str(reason))[:160]})"
        console.print(line, highlight=False, soft_wrap=True)
    counts = {s: sum(1 for _, st in found if st == s) for s in ("complete", "incomplete", "failed")}
    console.print(
        f"{len(found)} run folder(s): " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        highlight=False,
    )


@app.command("app")
def app_command(
    run_dir: Annotated[
        Path | None,
        typer.Argument(help="Run folder (default: newest run of configs/default.yaml)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 7860,
    share: Annotated[bool, typer.Option(help="Also open a public Gradio share link.")] = False,
) -> None:
    """Launch the explorer in the browser (Gradio, localhost by default)."""
    from hte.app import main

    argv = ([str(run_dir)] if run_dir is not None else []) + ["--host", host, "--port", str(port)]
    raise typer.Exit(main(argv + (["--share"] if share else [])))


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="Run folder written by hte run.")],
    data: Annotated[Path, typer.Argument(help="New patients (.csv or .parquet).")],
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")] = Path(
        "effects.csv"
    ),
    analysis: Annotated[
        str | None, typer.Option(help="Time-zero analysis of the run (default: its first).")
    ] = None,
) -> None:
    """Score new patients with a run's fitted models: OS and CRS effects with intervals."""
    from rich.markup import escape

    from hte.pipeline import PredictError, predict_run
    from hte.pipeline.predict import write_effects
    from hte.runs import ModelIntegrityError, RunFolderError, effect_keys

    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        err_console.print(f"cannot write {escape(str(out))}: use a .csv or .parquet file name")
        raise typer.Exit(2)
    try:
        effects = predict_run(run_dir, data, analysis=analysis)
    except (PredictError, ModelIntegrityError, RunFolderError) as exc:
        err_console.print(f"[red]cannot predict[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    write_effects(effects, out)  # CSV cells that a spreadsheet would run as formulas are quoted
    n_models = len(effect_keys(effects.columns))
    console.print(f"wrote effects of {n_models} model(s) for {len(effects)} patients to {out}")


@app.command()
def sweep(
    config: Annotated[
        Path,
        typer.Argument(help="Experiment config with a sweep section, e.g. configs/bench.yaml."),
    ],
    workers: Annotated[
        int, typer.Option(help="Worker processes of the local dask cluster.", min=1)
    ] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Use a running dask scheduler instead: tcp://HOST:PORT."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Sweep folder (default: <output.root>/<name>/sweep)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a config key: --set sweep.seeds=[1,2] (repeatable)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar of cells.")] = True,
) -> None:
    """Run a grid (scenarios x sizes x estimators x seeds) on dask; skip cells already done."""
    import shlex

    from rich.markup import escape

    from hte.config import ConfigError, load_config
    from hte.sweep import SweepError, render_sweep_summary, run_sweep

    try:
        cfg = load_config(config, set_ or [])
    except ConfigError as exc:
        err_console.print(f"[red]config error[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    if cfg.sweep is None:
        err_console.print(
            f"[red]config error[/red]: {escape(str(config))} has no sweep section "
            "(see configs/sweep_small.yaml)",
            highlight=False,
        )
        raise typer.Exit(1)
    words = ["hte", "sweep", str(config), "--workers", str(workers)]
    words += ["--scheduler", scheduler] if scheduler else []
    words += ["--out", str(out)] if out is not None else []
    words += [w for item in set_ or [] for w in ("--set", item)]
    try:
        result = run_sweep(
            cfg,
            workers=workers,
            scheduler_address=scheduler,
            out_dir=out,
            progress=progress,
            command=shlex.join(words),
        )
    except SweepError as exc:
        err_console.print(f"[red]cannot sweep[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        err_console.print(
            "interrupted: finished cells are kept in cells_done.jsonl; run the "
            "same command again to do only the rest",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(INTERRUPTED) from None
    console.print(render_sweep_summary(result))
    console.print(
        f"{result.n_cells} cells: {result.n_run} run, {result.n_skipped} already done, "
        f"{result.n_failed} failed (retried on a rerun)"
    )
    console.print(f"sweep folder: [bold]{escape(str(result.out_dir))}[/bold]", highlight=False)


# --------------------------------------------------------------------------------------------------
# OMOP CDM: a synthetic EHR database, and cohorts built from one (hte.data.omop)

omop_app = typer.Typer(help="OMOP CDM databases: a synthetic EHR.", no_args_is_help=True)
cohort_app = typer.Typer(help="Build analysis cohorts from an OMOP database.", no_args_is_help=True)
app.add_typer(omop_app, name="omop")
app.add_typer(cohort_app, name="cohort")


@omop_app.command("synthesize")
def omop_synthesize(
    out: Annotated[str, typer.Option(help="A .duckdb file, or a postgresql:// URL.")],
    n: Annotated[int, typer.Option(help="Number of patients (as hte simulate).", min=1)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (as hte simulate).")] = 0,
    scenario: Annotated[str, typer.Option(help="Named scenario (as hte simulate).")] = "default",
    truth: Annotated[
        Path | None, typer.Option(help="True effects by person_id (default: <out>.truth.parquet).")
    ] = None,
) -> None:
    """Render `hte simulate`'s cohort as OMOP CDM v5.4 tables, as an EHR holds them."""
    from rich.markup import escape

    from hte.data.omop.connection import OmopError
    from hte.data.omop.synthesize import synthesize
    from hte.data.simulate import SCENARIOS

    if scenario not in SCENARIOS:
        err_console.print(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        raise typer.Exit(2)
    try:
        result = synthesize(n, seed, scenario, out, truth_path=truth)
    except OmopError as exc:
        err_console.print(f"[red]cannot write[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    rows = ", ".join(f"{k} {v:,}" for k, v in result.rows.items())
    console.print(
        f"wrote {n} patients (+{sum(result.n_ineligible.values())} ineligible) to "
        f"{escape(str(out))}: {rows}",
        highlight=False,
        soft_wrap=True,
    )
    if result.truth_path:
        console.print(f"true effects: {escape(result.truth_path)}", highlight=False)


@cohort_app.command("build")
def cohort_build(
    db: Annotated[str, typer.Option(help="duckdb:///ehr.duckdb or postgresql://user@host/db.")],
    out: Annotated[Path, typer.Option(help="Cohort file (.parquet or .csv).")],
    spec: Annotated[Path, typer.Option(help="Cohort spec YAML (concept sets, windows).")] = Path(
        "configs/cohort_omop.yaml"
    ),
) -> None:
    """Emulate the target trial: eligibility, time zero, look-back covariates, outcomes, attrition."""
    from rich.markup import escape

    from hte.data.omop.build import build_cohort, write_build
    from hte.data.omop.connection import OmopError
    from hte.data.schema import CohortValidationError

    if out.suffix.lower() not in (".csv", ".parquet", ".pq"):
        err_console.print(f"cannot write {escape(str(out))}: use a .csv or .parquet file name")
        raise typer.Exit(2)
    try:
        result = build_cohort(db, spec)
    except (OmopError, CohortValidationError) as exc:
        err_console.print(
            f"[red]cannot build the cohort[/red]: {escape(str(exc))}", highlight=False
        )
        raise typer.Exit(1) from None
    cohort_path, summary = write_build(result, out)
    console.print(result.attrition.render(), highlight=False)
    for note in result.notes:
        console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    console.print(f"wrote {escape(str(cohort_path))} and {escape(str(summary))}", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
