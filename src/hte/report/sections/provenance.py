"""The Provenance section: run and data fingerprint, seeds, versions, config, timings, log."""

from __future__ import annotations

from hte.report import blocks as b
from hte.report.format import DASH, is_number, num
from hte.report.loader import RunFolder
from hte.report.sections.common import section


def provenance_section(run: RunFolder) -> dict:
    exp = run.summary.experiment
    fp = run.fingerprint or run.summary.data.model_dump(exclude_unset=True)
    blocks: list[dict] = []
    rows = [
        ["run id", run.run_id],
        ["run folder", str(run.path)],
        ["experiment", exp.name],
        ["config sha256", exp.config_sha256],
        ["data sha256", str(fp.get("sha256", DASH))],
        ["what was hashed", str(fp.get("hashed", DASH))],
        ["patients in the data", str(fp.get("n", DASH))],
        [
            "columns",
            str(len(fp.get("columns") or []))
            + (": " + ", ".join(fp["columns"]) if fp.get("columns") else ""),
        ],
    ]
    if fp.get("path"):
        rows.append(["data file", str(fp["path"])])
    blocks.append(b.h3("Run and data fingerprint"))
    blocks.append(b.table(["", ""], rows, numeric_from=99, compact=True))
    blocks.append(b.h3("Seeds and package versions"))
    seeds = (
        b.table(
            ["seed", "value"],
            [[k, str(v)] for k, v in run.seeds.items()],
            numeric_from=99,
            compact=True,
        )
        if run.seeds
        else b.missing("seeds.json")
    )
    versions = (
        b.table(
            ["package", "version"],
            [[k, str(v)] for k, v in run.versions.items()],
            numeric_from=99,
            compact=True,
        )
        if run.versions
        else b.missing("versions.json")
    )
    blocks.append(b.row(seeds, versions))
    blocks.append(b.h3("Resolved config"))
    blocks.append(b.pre(run.config_text) if run.config_text else b.missing("config.resolved.yaml"))
    blocks.append(b.h3("Timings and log"))
    if run.timings:
        total = run.timings.get("total")
        blocks.append(
            b.pre(
                "\n".join(f"{k:<48} {v:9.2f} s" for k, v in run.timings.items() if is_number(v)),
                summary=f"seconds per stage (total {num(total, 1)} s)",
            )
        )
    else:
        blocks.append(b.missing("timings.json"))
    blocks.append(b.pre(run.log_text, summary="run.log") if run.log_text else b.missing("run.log"))
    return section(
        "provenance",
        "Provenance",
        "Everything needed to reproduce this run: the exact resolved config, the data "
        "fingerprint, seeds and package versions.",
        blocks,
    )
