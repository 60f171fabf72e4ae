"""``build_report`` / ``write_report``: one self-contained HTML file from a run folder alone.

Reads metrics.json, config.resolved.yaml, fingerprint.json, versions.json, seeds.json,
effects.parquet, the attribution parquet files, figures and the log; refits nothing. Figures are
embedded as base64 PNG and the CSS is inlined, so the file opens offline (no CDN, fonts or JS).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import jinja2

from hte.report.loader import RunFolder, load_run_folder
from hte.report.sections import SECTIONS, order_estimators
from hte.runs import REPORT_FILE

log = logging.getLogger("hte.report")

_TEMPLATE = "report.html.j2"


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("hte.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def _section(index: int, run: RunFolder) -> dict:
    """Section ``index`` of ``SECTIONS`` built from ``run`` (module-level: runs in a worker)."""
    return SECTIONS[index](run)


def build_report(run_dir: Path, n_jobs: int = 1) -> str:
    """The HTML report of ``run_dir`` as a string (sections: summary, cohort, averages, cate,
    benefit-harm, subgroups, heterogeneity, robustness, attributions, provenance).

    ``n_jobs`` > 1 draws the sections in that many worker processes (``hte.pipeline.parallel``;
    the same HTML). Worth it where the workers are already running: ``hte run`` passes 2 right
    after its run; a process of its own draws them here (starting workers costs more)."""
    run = load_run_folder(Path(run_dir))
    order_estimators(run)
    if n_jobs > 1:
        from hte.pipeline.parallel import map_tasks

        task = partial(_section, run=run)
        sections = list(map_tasks(task, range(len(SECTIONS)), n_jobs))
    else:
        sections = [make(run) for make in SECTIONS]
    env = _environment()
    css = env.loader.get_source(env, "report.css")[0]
    name = run.summary.experiment.name
    return env.get_template(_TEMPLATE).render(
        title=f"hte report: {name} · {run.run_id}",
        experiment=name,
        run_id=run.run_id,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sections=sections,
        css=css,
    )


def write_report(run_dir: Path, out: Path | None = None, n_jobs: int = 1) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``); returns the
    path written. ``n_jobs``: as in ``build_report``."""
    run_dir = Path(run_dir)
    out = run_dir / REPORT_FILE if out is None else Path(out)
    html = build_report(run_dir, n_jobs=n_jobs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    log.info("report written to %s", out)
    return out
