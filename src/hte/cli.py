"""The `hte` command line: a thin face on the library (no modelling code here)."""

from __future__ import annotations

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


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet).")],
    n: Annotated[int, typer.Option(help="Number of patients.", min=1)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same file.")] = 0,
    scenario: Annotated[
        str,
        typer.Option(
            help="Named scenario: default, null_effect, strong_confounding, poor_overlap, "
            "heavy_censoring, no_manufacturing_delay."
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
        Path | None, typer.Option(help="Column map YAML: renames, treatment codes, time unit.")
    ] = None,
) -> None:
    """Check a cohort file against the schema; print a summary, or every problem found."""
    from rich.markup import escape

    from hte.data.column_map import ColumnMap, ColumnMapError
    from hte.data.load import CohortFileError, load_cohort
    from hte.data.schema import CohortValidationError
    from hte.data.summary import render_problems, render_summary, summarize_cohort

    try:
        column_map = ColumnMap.from_yaml(columns) if columns is not None else None
    except ColumnMapError as exc:
        err_console.print(f"[red]bad column map[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    try:
        cohort = load_cohort(file, column_map=column_map)
    except CohortFileError as exc:
        err_console.print(f"[red]cannot read {escape(str(file))}[/red]: {escape(str(exc))}")
        raise typer.Exit(1) from None
    except CohortValidationError as exc:
        err_console.print(render_problems(exc.problems, source=str(file)))
        raise typer.Exit(1) from None
    console.print("[green]ok[/green]")
    console.print(render_summary(summarize_cohort(cohort)))


@app.command()
def calibrate(
    n: Annotated[int, typer.Option(help="Size of the default cohort to draw.", min=500)] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sources: Annotated[bool, typer.Option(help="Show each figure's published source.")] = False,
) -> None:
    """Compare a large default synthetic cohort with the published calibration targets."""
    from hte.data.calibration import render_calibration, run_calibration

    report = run_calibration(n=n, seed=seed)
    console.print(render_calibration(report, show_sources=sources))
    if not report.all_pass:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
