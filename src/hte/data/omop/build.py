"""Build an analysis cohort from an OMOP CDM database by emulating the target trial.

Time zero is the treatment decision: the first CAR-T apheresis (CAR-T arm) or the first teclistamab
dose (teclistamab arm). Covariates come from look-back windows that end at time zero: every SQL
filter on an event reads ``event date <= index date`` (prior therapy: ``<``), so nothing recorded
after time zero can enter a baseline value. Outcomes run from time zero: death, censoring at the
end of the observation period or the data cut; CRS coded within ``crs_window_days`` after the
infusion (CAR-T; never infused: no CRS) or the first dose (teclistamab); the infusion day.

The same SQL runs on DuckDB and PostgreSQL (``hte.data.omop.connection``). Every person is either
in the cohort or counted at the first eligibility criterion they fail (``Attrition``).

The pieces: database checks (``checks``), concept sets (``concepts``), the SQL per person at time
zero (``extract``); this module turns the facts into the cohort and its attrition.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hte.data.columns import DAYS_PER_MONTH
from hte.data.omop.attrition import Attrition
from hte.data.omop.checks import check_dates, check_tables, persons_text
from hte.data.omop.concepts import ConceptReport, resolve_concepts
from hte.data.omop.connection import Database, OmopError, connect
from hte.data.omop.extract import build_index, crs_dates, latest_measurements, person_facts
from hte.data.omop.spec import FLAG_MEASUREMENTS, LAB_COVARIATES, CohortSpec, load_spec
from hte.data.omop.vocabulary import GENDER, RACE
from hte.data.schema import validate_cohort

DAYS_PER_YEAR = 365.25
SAME_DAY_DEATH_DAYS = 0.5  # follow-up of a death or censoring on the index day (> 0 for the schema)

CRITERIA = {
    "has_decision": "a treatment decision (apheresis or teclistamab dose)",
    "has_myeloma": "a myeloma diagnosis on or before time zero",
    "triple_class": "triple-class exposed before time zero (IMiD, PI, anti-CD38)",
    "adult": "of minimum age at time zero",
    "no_prior_cart_tec": "free of prior CAR-T and teclistamab",
    "observed": "observed at time zero (observation period, data cut)",
}


@dataclass
class BuildResult:
    cohort: pd.DataFrame
    attrition: Attrition
    concepts: ConceptReport
    data_cut: str
    spec_sha256: str
    notes: list[str]

    def summary(self) -> dict:
        """The JSON-ready record of the build (attrition, unmatched concepts, data cut, notes)."""
        return {
            "attrition": self.attrition.as_dict(),
            "data_cut": self.data_cut,
            "spec_sha256": self.spec_sha256,
            "unmatched_concepts": self.concepts.unmatched,
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------------
# From facts to the cohort


def _days_between(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.days.to_numpy(dtype=float)


def _check_outcome_dates(facts: pd.DataFrame, db: Database) -> None:
    dead_before = facts["death_date"].notna() & (
        pd.to_datetime(facts["death_date"]) < pd.to_datetime(facts["index_date"])
    )
    if dead_before.any():
        raise OmopError(
            f"{db.table('death')}.death_date is before time zero (the first apheresis or "
            f"teclistamab dose): {int(dead_before.sum())} person(s), e.g. "
            f"{persons_text(facts[dead_before])}"
        )


def _assemble(
    facts: pd.DataFrame, labs: pd.DataFrame, crs: pd.DataFrame, spec: CohortSpec
) -> pd.DataFrame:
    """One row per kept person in hte's cohort schema: outcomes from time zero to death or
    censoring (observation end or data cut), covariates as of time zero. Race concepts other than
    White, Black and Asian become "other"; a missing lab stays missing (never imputed here)."""
    index = facts["index_date"]
    cut = pd.to_datetime(facts["data_cut"])
    death = pd.to_datetime(facts["death_date"])
    died = death.notna() & (death <= cut)
    censor = pd.concat([pd.to_datetime(facts["obs_end"]), cut], axis=1).min(axis=1)
    end = death.where(died, censor)
    days = _days_between(end, index)
    days = np.where(days <= 0, SAME_DAY_DEATH_DAYS, days)
    crs_date = pd.to_datetime(facts["person_id"].map(crs.set_index("person_id")["crs_date"]))
    infusion = pd.to_datetime(facts["infusion_date"])
    infused = (facts["arm"] == "cart") & infusion.notna() & (infusion <= end)
    out = pd.DataFrame(
        {
            "patient_id": facts["person_source_value"]
            .fillna(facts["person_id"].astype(str))
            .astype(str),
            "treatment": facts["arm"].to_numpy(),
            "os_months": days / DAYS_PER_MONTH,
            "death": died.to_numpy(),
            "crs": (crs_date.notna() & (crs_date <= end)).to_numpy(),  # coded while followed
            "infusion_day": np.where(infused, _days_between(infusion, index), np.nan),
            "age": np.round(_days_between(index, facts["birth_date"]) / DAYS_PER_YEAR, 1),
            "sex": facts["gender_concept_id"].map(
                {GENDER["male"]: "male", GENDER["female"]: "female"}
            ),
            "race": facts["race_concept_id"].map({v: k for k, v in RACE.items()}).fillna("other"),
            "prior_lines": facts["n_lines"].astype(int).to_numpy(),
            "extramedullary": facts["extramedullary"].astype(bool).to_numpy(),
            "prior_asct": facts["prior_asct"].astype(bool).to_numpy(),
            "penta_refractory": (
                (facts["n_imid"] >= 2) & (facts["n_pi"] >= 2) & (facts["n_cd38"] >= 1)
            ).to_numpy(),
            "prior_bcma": (facts["n_bcma"] > 0).to_numpy(),
            "rapid_progression": facts["rapid_progression"].astype(bool).to_numpy(),
            "years_since_diagnosis": np.round(
                _days_between(index, facts["first_dx"]) / DAYS_PER_YEAR, 2
            ),
        }
    )
    wide = labs.pivot(index="person_id", columns="covariate", values="value") if len(labs) else None
    for name in (*LAB_COVARIATES, *FLAG_MEASUREMENTS, "ldh"):
        if name not in spec.concept_sets:
            continue
        values = wide[name] if wide is not None and name in wide.columns else pd.Series(dtype=float)
        col = facts["person_id"].map(values).astype(float).to_numpy()
        if name == "ldh":
            out["ldh_high"] = pd.array(
                np.where(np.isnan(col), None, col > spec.ldh_upper_limit), dtype="boolean"
            )
        elif name in FLAG_MEASUREMENTS:
            out[name] = pd.array(np.where(np.isnan(col), None, col >= 0.5), dtype="boolean")
        else:
            out[name] = col
    return out


def _spec_hash(path: Path | None, spec: CohortSpec) -> str:
    data = path.read_bytes() if path is not None else spec.model_dump_json().encode()
    return hashlib.sha256(data).hexdigest()


def build_cohort(db: Database | str, spec: CohortSpec | str | Path) -> BuildResult:
    """The analysis cohort (validated against hte's schema), its attrition and concept report."""
    spec_path = None if isinstance(spec, CohortSpec) else Path(spec)
    spec = spec if isinstance(spec, CohortSpec) else load_spec(spec)
    own = not isinstance(db, Database)
    conn = connect(db, read_only=True, schema=spec.cdm_schema) if own else db
    try:
        return _build(conn, spec, _spec_hash(spec_path, spec))
    finally:
        if own:
            conn.close()


def _build(db: Database, spec: CohortSpec, spec_sha: str) -> BuildResult:
    present = check_tables(db)
    check_dates(db)
    descendants = spec.include_descendants and "concept_ancestor" in present
    ids, report = resolve_concepts(db, spec, descendants)
    notes = build_index(db, spec, ids)
    if spec.include_descendants and not descendants:
        notes.append("no concept_ancestor table: concept sets match the listed concepts only")
    if spec.data_cut is not None:
        cut = spec.data_cut.isoformat()
    else:
        latest = db.query(
            f"SELECT MAX(observation_period_end_date) AS d FROM {db.table('observation_period')}"
        )
        cut = str(pd.Timestamp(latest["d"].iloc[0]).date())
    persons = db.query(f"SELECT person_id FROM {db.table('person')} ORDER BY person_id")
    facts = person_facts(db, spec, ids, cut)
    everyone = persons.merge(facts, on="person_id", how="left")
    index = pd.to_datetime(everyone["index_date"])
    age = _days_between(index, everyone["birth_date"]) / DAYS_PER_YEAR
    passes = pd.DataFrame(
        {
            "has_decision": everyone["index_date"].notna(),
            "has_myeloma": everyone["first_dx"].notna(),
            "triple_class": (everyone["n_imid"] >= 1)
            & (everyone["n_pi"] >= 1)
            & (everyone["n_cd38"] >= 1),
            "adult": pd.Series(age >= spec.min_age, index=everyone.index),
            "no_prior_cart_tec": ~everyone["prior_cart_tec"].fillna(True).astype(bool),
            "observed": everyone["obs_end"].notna() & (index <= pd.Timestamp(cut)),
        }
    )
    criteria = dict(CRITERIA)
    criteria["adult"] = f"aged {spec.min_age:g} or older at time zero"
    attrition, keep = Attrition.from_flags(passes, criteria, everyone["arm"])
    kept = everyone[keep.to_numpy()].reset_index(drop=True)
    _check_outcome_dates(kept, db)
    labs = latest_measurements(db, spec, ids)
    labs = labs[labs["person_id"].isin(kept["person_id"])]
    crs = crs_dates(db, spec, ids)
    cohort = validate_cohort(_assemble(kept, labs, crs, spec))
    for row in report.unmatched:
        notes.append(f"no rows for {row['concept_set']}: {row['concept']} ({row['problem']})")
    return BuildResult(cohort, attrition, report, cut, spec_sha, notes)


def write_build(result: BuildResult, out: str | Path) -> tuple[Path, Path]:
    """The cohort as Parquet/CSV and ``<stem>.attrition.json`` beside it."""
    from hte.data.simulate import write_cohort

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_cohort(result.cohort, out)
    summary = out.with_name(out.stem + ".attrition.json")
    summary.write_text(json.dumps(result.summary(), indent=2, sort_keys=True) + "\n", "utf-8")
    return out, summary
