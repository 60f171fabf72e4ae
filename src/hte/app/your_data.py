"""The "Your data" tab's work: check an uploaded cohort file (as data only: CSV or Parquet through
``hte.data.load``, never unpickled), summarize it, and run a config on it through the pipeline.

An upload must use hte's column names (``hte validate`` documents them); the chosen config supplies
the analysis (time zero, outcomes, estimators) and its ``data`` section is replaced by the upload.
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

MAX_UPLOAD_MB = 50
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
UPLOADS_DIR = "uploads"
PROBLEM_COLUMNS = ["column", "rule", "rows", "n_rows"]


class UploadRefused(ValueError):
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


def check_upload(path: str | Path | None) -> UploadCheck:
    """Size limit, file type, readability, then the cohort schema; every problem listed."""
    if path is None:
        return UploadCheck(False, _no_problems(), "Upload a cohort file (.csv or .parquet).")
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        return UploadCheck(
            False,
            pd.DataFrame([{"column": "(file)", "rule": f"file is {size / 2**20:.1f} MB; "
                           f"the limit is {MAX_UPLOAD_MB} MB", "rows": "", "n_rows": 0}]),
            f"**Refused:** the file is larger than {MAX_UPLOAD_MB} MB.",
        )  # fmt: skip
    try:
        cohort = validate_cohort(read_table(path))
    except CohortFileError as exc:
        problems = pd.DataFrame([{"column": "(file)", "rule": str(exc), "rows": "", "n_rows": 0}])
        return UploadCheck(False, problems, f"**Cannot read the file:** {exc}")
    except CohortValidationError as exc:
        rows = [
            {"column": p.column, "rule": p.rule,
             "rows": describe_rows(p.rows, p.n_rows) if p.n_rows else "", "n_rows": p.n_rows}
            for p in exc.problems
        ]  # fmt: skip
        return UploadCheck(
            False,
            pd.DataFrame(rows, columns=PROBLEM_COLUMNS),
            f"**{len(rows)} problem(s)** in the cohort: nothing was dropped or changed; fix the "
            "file and upload it again (row 1 = the first row after the header).",
        )
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
    lines += ["", f"Outcomes: {', '.join(s.outcomes) or 'none'}. "
              f"Covariates ({len(s.covariates)}): {', '.join(s.covariates)}."]  # fmt: skip
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


def upload_config(config_path: Path, data_path: Path, columns: tuple[str, ...]):
    """The chosen config with its data replaced by the upload (canonical column names) and
    outcomes the file lacks switched off; the run is named ``upload_<config name>``."""
    from hte.config import load_config

    has_os = OS_MONTHS in columns and DEATH in columns
    overrides = [
        f"data={{source: file, path: '{data_path.as_posix()}'}}",
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
) -> Path:
    """Run ``config_path`` on an accepted upload into ``output_root``; returns the run folder.

    ``on_stage`` receives each stage's name as the pipeline starts it (for a progress display).
    """
    from hte.pipeline import run_experiment

    check = check_upload(upload)
    if not check.ok:
        raise ValueError("the upload does not pass the cohort checks; see the problems table")
    kept = keep_upload(upload, output_root)
    columns = tuple(map(str, read_table(kept).columns))
    config = upload_config(Path(config_path), kept, columns)
    logger = logging.getLogger("hte.pipeline")
    handler = _StageReporter(on_stage) if on_stage is not None else None
    if handler is not None:
        logger.addHandler(handler)
    try:
        result = run_experiment(config, output_root=output_root, progress=False)
    finally:
        if handler is not None:
            logger.removeHandler(handler)
    return result.run_dir
