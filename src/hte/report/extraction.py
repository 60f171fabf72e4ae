"""The report's account of a cohort extracted from an OMOP database: the attrition flow."""

from __future__ import annotations

from hte.data.omop.connection import hide_password
from hte.report import blocks as b
from hte.report.loader import RunFolder


def omop_source(data: dict) -> str:
    """The summary's "data" line for a cohort built from an OMOP database (no password shown)."""
    return f"OMOP database {hide_password(str(data.get('db')))}, cohort spec {data.get('spec')}"


def extraction_blocks(run: RunFolder) -> list[dict]:
    """Blocks for ``metrics.cohort_extraction`` (none when the cohort did not come from a database):
    persons in, excluded at each criterion in order, persons out, unmatched concepts."""
    ext = run.metrics.get("cohort_extraction")
    if not isinstance(ext, dict):
        return []
    att = ext.get("attrition") or {}
    rows = [["persons in the database", "", f"{att.get('n_in', 0):,}"]]
    for step in att.get("steps") or []:
        rows.append(
            [
                f"\u2193 excluded: not {step.get('criterion')}",
                f"\u2212{step.get('excluded', 0):,}",
                f"{step.get('remaining', 0):,}",
            ]
        )
    arms = att.get("n_by_arm") or {}
    rows.append(
        [
            f"in the cohort (CAR-T {arms.get('cart', 0):,}, teclistamab {arms.get('tec', 0):,})",
            "",
            f"{att.get('n_out', 0):,}",
        ]
    )
    out = [
        b.h3("Cohort from the database (target-trial emulation)", anchor="attrition"),
        b.text(
            f"Built from an OMOP CDM database with the cohort spec {ext.get('spec', '?')} "
            f"(sha256 {str(ext.get('spec_sha256', ''))[:12]}, copied to cohort_spec.yaml), data cut "
            f"{ext.get('data_cut', '?')}. Time zero is the treatment decision; covariates come "
            "from look-back windows that end at time zero."
        ),
        b.table(
            ["step", "excluded", "persons"],
            rows,
            reading="Each person is counted once, at the first criterion they fail; the "
            "exclusions add up to the difference between persons in and persons out.",
        ),
    ]
    unmatched = ext.get("unmatched_concepts") or []
    if unmatched:
        listing = "; ".join(f"{u.get('concept_set')}: {u.get('concept')}" for u in unmatched)
        out.append(
            b.caution(f"Concepts with no rows in the database ({len(unmatched)}): {listing}.")
        )
    for note in ext.get("notes") or []:
        if not str(note).startswith("no rows for"):
            out.append(b.text(str(note), muted=True))
    return out
