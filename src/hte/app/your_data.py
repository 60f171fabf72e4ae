"""The "Your data" tab's work: check an uploaded cohort file (as data only: CSV or Parquet through
``hte.data.load``, never unpickled), summarize it, and run a config on it through the pipeline.

An upload must use hte's column names (``hte validate`` documents them); the chosen config supplies
the analysis (time zero, outcomes, estimators) and its ``data`` section is replaced by the upload.
A DuckDB file (``.duckdb``) is read as an OMOP CDM database: the cohort is built from it with the
configs folder's ``cohort_omop.yaml`` (``hte.data.omop``), and the attrition is shown with it.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hte.data.columns import CART, CRS, DEATH, OS_MONTHS, TEC
from hte.data.load import CohortFileError, read_table
from hte.data.schema import CohortValidationError, describe_rows, validate_cohort
from hte.data.summary import summarize_cohort
from hte.errors import HteError

OMOP_SUFFIXES = (".duckdb",)
OMOP_SPEC = "cohort_omop.yaml"  # looked up in the configs folder
_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of a DuckDB database file
MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
UPLOADS_DIR = "uploads"
PROBLEM_COLUMNS = ["column", "rule", "rows", "n_rows"]


class UploadRefused(HteError, ValueError):
    """A file the app did not receive as an upload (a caller-supplied server path)."""


def received_upload(
    path: str | Path, received: Iterable[str | Path], upload_dir: str | Path
) -> Path:
    """``path`` if it is a file Gradio itself received through its upload route (listed in
    ``received``, inside its upload folder ``upload_dir``); ``UploadRefused`` otherwise.

    The upload endpoints take a file reference from the client; without this rule a client could
    name any .csv/.parquet on the server and have it read, summarized and analysed. Gradio keeps
    each upload under a folder named by the sha256 of its bytes, so naming a received file takes
    knowing its contents.
    """
    resolved = Path(path).resolve()
    folder = Path(upload_dir).resolve()
    known = {Path(p).resolve() for p in received}
    if resolved not in known or not resolved.is_relative_to(folder) or not resolved.is_file():
        raise UploadRefused(
            f"refused: {Path(path).name!r} was not uploaded to this app (only files sent through "
            "the upload button or the upload route are read; server paths are not)"
        )
    return resolved


@dataclass(frozen=True)
class UploadCheck:
    """The outcome of checking an upload: ``ok``, a problems table (empty when ok) and a
    markdown summary (the cohort summary, or what went wrong in one sentence)."""

    ok: bool
    problems: pd.DataFrame
    message: str


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame(columns=PROBLEM_COLUMNS)


def _file_problem(rule: str) -> pd.DataFrame:
    return pd.DataFrame([{"column": "(file)", "rule": rule, "rows": "", "n_rows": 0}])


def _validation_check(exc: CohortValidationError) -> UploadCheck:
    rows = [
        {
            "column": p.column,
            "rule": f"{p.rule}; {p.hint}" if p.hint else p.rule,
            "rows": describe_rows(p.rows, p.n_rows) if p.n_rows else "",
            "n_rows": p.n_rows,
        }
        for p in exc.problems
    ]
    return UploadCheck(
        False,
        pd.DataFrame(rows, columns=PROBLEM_COLUMNS),
        f"**{len(rows)} problem(s)** in the cohort: nothing was dropped or changed; fix the "
        "file and upload it again (row 1 = the first row after the header).",
    )


def build_from_duckdb(path: Path, spec: Path):
    """The cohort built from a DuckDB OMOP database (read only), or ``OmopError``: a file that
    is not a DuckDB database is refused before DuckDB opens it."""
    from hte.data.omop.build import build_cohort
    from hte.data.omop.connection import OmopError

    with Path(path).open("rb") as fh:
        head = fh.read(12)
    if head[8:12] != _DUCKDB_MAGIC:
        raise OmopError("not a DuckDB database (no DUCK header); upload a .duckdb OMOP CDM file")
    return build_cohort(f"duckdb:///{Path(path).resolve()}", spec)


def _check_omop(path: Path, spec: Path) -> UploadCheck:
    from hte.data.omop.connection import OmopError

    try:
        result = build_from_duckdb(path, spec)
    except OmopError as exc:
        column = "(file)" if "DUCK header" in str(exc) else "(database)"
        problems = pd.DataFrame([{"column": column, "rule": str(exc), "rows": "", "n_rows": 0}])
        return UploadCheck(False, problems, f"**Cannot build a cohort from the database:** {exc}")
    except CohortValidationError as exc:
        return _validation_check(exc)
    flow = "\n".join(f"    {line}" for line in result.attrition.render().splitlines())
    notes = "".join(f"\n- {n}" for n in result.notes)
    return UploadCheck(
        True,
        _no_problems(),
        f"**Cohort built from the OMOP database** (spec {spec}):\n\n{flow}\n{notes}\n\n"
        + summary_markdown(result.cohort),
    )


def check_upload(path: str | Path | None, omop_spec: Path | None = None) -> UploadCheck:
    """Size limit, file type, readability, then the cohort schema; every problem listed. A .duckdb
    file is built into a cohort with ``omop_spec`` (default configs/cohort_omop.yaml)."""
    if path is None:
        return UploadCheck(
            False, _no_problems(), "Upload a cohort file (.csv or .parquet) or an OMOP .duckdb."
        )
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return UploadCheck(
            False,
            pd.DataFrame(
                [
                    {
                        "column": "(file)",
                        "rule": f"file is {size / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB} MB",
                        "rows": "",
                        "n_rows": 0,
                    }
                ]
            ),
            f"**Refused:** the file is larger than {MAX_UPLOAD_MB} MB.",
        )
    if path.suffix.lower() in OMOP_SUFFIXES:
        return _check_omop(path, omop_spec or Path("configs") / OMOP_SPEC)
    try:
        cohort = validate_cohort(read_table(path))
    except CohortFileError as exc:
        return UploadCheck(False, _file_problem(str(exc)), f"**Cannot read the file:** {exc}")
    except CohortValidationError as exc:
        return _validation_check(exc)
    return UploadCheck(True, _no_problems(), summary_markdown(cohort))


def summary_markdown(cohort: pd.DataFrame) -> str:
    """The cohort summary (as ``hte validate`` prints it) in markdown."""
    s = summarize_cohort(cohort)
    n_cart, n_tec = s.n_per_arm.get(CART, 0), s.n_per_arm.get(TEC, 0)
    lines = [
        f"**Valid cohort:** {s.n:,} patients, {n_cart:,} CAR-T and {n_tec:,} teclistamab.",
        "",
        "| | CAR-T | teclistamab |",
        "|---|---|---|",
        f"| patients | {n_cart:,} | {n_tec:,} |",
    ]
    if s.deaths_per_arm is not None:
        d = s.deaths_per_arm
        lines.append(f"| deaths | {d.get(CART, 0):,} | {d.get(TEC, 0):,} |")
    if s.median_followup_per_arm is not None:
        f = s.median_followup_per_arm
        lines.append(
            f"| median follow-up (months) | {_months(f.get(CART))} | {_months(f.get(TEC))} |"
        )
    if s.crs_per_arm is not None:
        c = s.crs_per_arm
        lines.append(f"| any-grade CRS | {c.get(CART, 0):,} | {c.get(TEC, 0):,} |")
    lines += [
        "",
        f"Outcomes: {', '.join(s.outcomes) or 'none'}. "
        f"Covariates ({len(s.covariates)}): {', '.join(s.covariates)}.",
    ]
    missing = {k: v for k, v in s.missing.items() if v[0] > 0}
    if missing:
        shown = ", ".join(f"{k} {v[1]:.0%}" for k, v in list(missing.items())[:12])
        lines.append(f"Missing values: {shown}.")
    return "\n".join(lines)


def _months(x: float | None) -> str:
    return "not reached" if x is None else f"{x:.1f}"


def keep_upload(path: str | Path, output_root: Path) -> Path:
    """Copy an accepted upload under ``<output_root>/uploads/<sha256[:12]><suffix>`` so the run's
    fingerprint points at a file that stays (Gradio's temporary copy is removed later)."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    target = Path(output_root) / UPLOADS_DIR / f"{digest}{path.suffix.lower()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copyfile(path, target)
    return target


def upload_config(
    config_path: Path, data_path: Path, columns: tuple[str, ...], omop_spec: Path | None = None
):
    """The chosen config with its data replaced by the upload (canonical column names; with
    ``omop_spec`` a DuckDB OMOP database and its cohort spec) and outcomes the file lacks switched
    off; the run is named ``upload_<config name>``."""
    from hte.config import load_config

    has_os = OS_MONTHS in columns and DEATH in columns
    data = (
        f"data={{source: file, path: '{data_path.as_posix()}'}}"
        if omop_spec is None
        else f"data={{source: omop, db: 'duckdb:///{data_path.resolve().as_posix()}', "
        f"spec: '{Path(omop_spec).as_posix()}'}}"
    )
    overrides = [
        data,
        f"outcomes.os.enabled={'true' if has_os else 'false'}",
        f"outcomes.crs.enabled={'true' if CRS in columns else 'false'}",
        "evaluation.truth_metrics=auto",
    ]
    config = load_config(config_path, overrides)
    return config.model_copy(update={"name": f"upload_{config.name}"})


class _StageReporter(logging.Handler):
    """Forwards the pipeline's stage log lines ("cohort", "<analysis>: ...") to a callback."""

    def __init__(self, callback: Callable[[str], None]):
        super().__init__(logging.INFO)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "hte.pipeline":
            self.callback(record.getMessage())


def run_on_upload(
    upload: str | Path,
    config_path: Path,
    output_root: Path,
    on_stage: Callable[[str], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Path:
    """Run ``config_path`` on an accepted upload into ``output_root`` and write its HTML report
    (as ``hte run`` does); returns the run folder.

    ``on_stage`` receives each stage's name as the pipeline starts it, ``on_total`` the number
    of stages first (for a progress display with the total and the time left).
    """
    from hte.pipeline import run_experiment

    omop_spec = None
    if Path(upload).suffix.lower() in OMOP_SUFFIXES:
        omop_spec = Path(config_path).parent / OMOP_SPEC
    check = check_upload(upload, omop_spec)
    if not check.ok:
        raise ValueError("the upload does not pass the cohort checks; see the problems table")
    kept = keep_upload(upload, output_root)
    if omop_spec is not None:
        columns = tuple(map(str, build_from_duckdb(kept, omop_spec).cohort.columns))
    else:
        columns = tuple(map(str, read_table(kept).columns))
    config = upload_config(Path(config_path), kept, columns, omop_spec)
    logger = logging.getLogger("hte.pipeline")
    handler = _StageReporter(on_stage) if on_stage is not None else None
    if handler is not None:
        logger.addHandler(handler)
    if on_total is not None:
        from hte.pipeline.run import n_stages  # the pipeline's own count of its stages

        on_total(n_stages(config, columns))
    try:
        result = run_experiment(config, output_root=output_root, progress=False)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
    try:  # every run writes its report, as `hte run` does; a report failure keeps the run
        from hte.report import write_report

        write_report(result.run_dir)
    except (HteError, OSError, ValueError) as exc:
        logging.getLogger("hte.app").warning("no report for %s: %s", result.run_dir, exc)
    return result.run_dir
