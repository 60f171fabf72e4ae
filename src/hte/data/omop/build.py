"""Build an analysis cohort from an OMOP CDM database by emulating the target trial.

Time zero is the treatment decision: the first CAR-T apheresis (CAR-T arm) or the first teclistamab
dose (teclistamab arm). Covariates come from look-back windows that end at time zero: every SQL
filter on an event reads ``event date <= index date`` (prior therapy: ``<``), so nothing recorded
after time zero can enter a baseline value. Outcomes run from time zero: death, censoring at the
end of the observation period or the data cut; CRS coded within ``crs_window_days`` after the
infusion (CAR-T; never infused: no CRS) or the first dose (teclistamab); the infusion day.

The same SQL runs on DuckDB and PostgreSQL (``hte.data.omop.connection``). Every person is either
in the cohort or counted at the first eligibility criterion they fail (``Attrition``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hte.data.columns import DAYS_PER_MONTH
from hte.data.omop.attrition import Attrition
from hte.data.omop.cdm import DOMAINS
from hte.data.omop.connection import Database, OmopError, connect
from hte.data.omop.spec import (
    FLAG_MEASUREMENTS,
    LAB_COVARIATES,
    REQUIRED_SETS,
    CohortSpec,
    ConceptRef,
    load_spec,
)
from hte.data.omop.vocabulary import GENDER, RACE
from hte.data.schema import validate_cohort

DAYS_PER_YEAR = 365.25
SAME_DAY_DEATH_DAYS = 0.5  # follow-up of a death or censoring on the index day (> 0 for the schema)
MAX_LISTED = 5

# table -> columns the builder reads
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "person": ("person_id", "gender_concept_id", "year_of_birth", "month_of_birth",
               "day_of_birth", "birth_datetime", "race_concept_id", "person_source_value"),
    "observation_period": ("person_id", "observation_period_start_date",
                           "observation_period_end_date"),
    "condition_occurrence": ("person_id", "condition_concept_id", "condition_start_date"),
    "drug_exposure": ("person_id", "drug_concept_id", "drug_exposure_start_date",
                      "drug_exposure_end_date"),
    "procedure_occurrence": ("person_id", "procedure_concept_id", "procedure_date"),
    "measurement": ("person_id", "measurement_id", "measurement_concept_id", "measurement_date",
                    "value_as_number"),
    "death": ("person_id", "death_date"),
    "concept": ("concept_id", "concept_name", "vocabulary_id", "concept_code"),
}  # fmt: skip

CRITERIA = {
    "has_decision": "a treatment decision (apheresis or teclistamab dose)",
    "has_myeloma": "a myeloma diagnosis on or before time zero",
    "triple_class": "triple-class exposed before time zero (IMiD, PI, anti-CD38)",
    "adult": "of minimum age at time zero",
    "no_prior_cart_tec": "free of prior CAR-T and teclistamab",
    "observed": "observed at time zero (observation period, data cut)",
}
LINE_SETS = ("imid", "proteasome_inhibitor", "anti_cd38", "prior_bcma", "other_myeloma_drugs")


@dataclass
class ConceptReport:
    """Per concept of each set: the concept ids found and the rows they have in their table."""

    rows: list[dict] = field(default_factory=list)

    @property
    def unmatched(self) -> list[dict]:
        """Concepts with no concept row or no event rows (what the builder warns about)."""
        return [r for r in self.rows if r["n_rows"] == 0]


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
# Checks on the database


def check_tables(db: Database) -> dict[str, set[str]]:
    """Every table and column the builder reads exists; one error lists all that are missing.
    Returns every table of the schema with its columns."""
    present = db.table_columns()
    problems = []
    for table, cols in REQUIRED_COLUMNS.items():
        if table not in present:
            problems.append(f"table {db.table(table)} is missing")
            continue
        missing = [c for c in cols if c not in present[table]]
        if missing:
            problems.append(f"table {db.table(table)} lacks column(s) {', '.join(missing)}")
    if problems:
        raise OmopError(
            f"the database {db.url} is not an OMOP CDM v5.4 the builder can read:\n"
            + "\n".join(f"- {p}" for p in problems)
        )
    return present


def _ids_sql(ids: list[int]) -> str:
    """An SQL list of integer concept ids (never empty: -1 matches nothing)."""
    return ", ".join(str(int(i)) for i in ids) if ids else "-1"


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def resolve_concepts(
    db: Database, spec: CohortSpec, descendants: bool = False
) -> tuple[dict[str, list[int]], ConceptReport]:
    """Concept ids of every set (by vocabulary + code, or vocabulary + name; with ``descendants``
    also every descendant in concept_ancestor, e.g. the clinical drugs of an ingredient), and per
    concept the number of event rows in its domain's table."""
    refs = [(name, cs.domain, ref) for name, cs in spec.concept_sets.items() for ref in cs.concepts]
    conditions = []
    for _, _, ref in refs:
        if ref.code is not None:
            conditions.append(f"(vocabulary_id = {_text(ref.vocabulary)} AND "
                              f"concept_code = {_text(ref.code)})")  # fmt: skip
        else:
            conditions.append(f"(vocabulary_id = {_text(ref.vocabulary)} AND "
                              f"lower(concept_name) = {_text(ref.name.lower())})")  # fmt: skip
    found = db.query(
        f"SELECT concept_id, vocabulary_id, concept_code, lower(concept_name) AS name "
        f"FROM {db.table('concept')} WHERE " + " OR ".join(conditions)
    )
    ids: dict[str, list[int]] = {}
    per_ref: list[tuple[str, str, ConceptRef, list[int]]] = []
    for name, domain, ref in refs:
        if ref.code is not None:
            hit = found[
                (found["vocabulary_id"] == ref.vocabulary) & (found["concept_code"] == ref.code)
            ]
        else:
            hit = found[
                (found["vocabulary_id"] == ref.vocabulary) & (found["name"] == ref.name.lower())
            ]
        got = sorted(
            {int(i) for i in hit["concept_id"]} | ({ref.concept_id} if ref.concept_id else set())
        )
        per_ref.append((name, domain, ref, got))
    if descendants:
        per_ref = _with_descendants(db, per_ref)
    for name, _, _, got in per_ref:
        ids.setdefault(name, [])
        ids[name] = sorted(set(ids[name]) | set(got))
    counts: dict[int, int] = {}
    for domain_name, domain in DOMAINS.items():
        wanted = sorted({i for _, d, _, got in per_ref if d == domain_name for i in got})
        if not wanted:
            continue
        frame = db.query(
            f"SELECT {domain.concept_column} AS concept_id, COUNT(*) AS n "
            f"FROM {db.table(domain.table)} WHERE {domain.concept_column} IN ({_ids_sql(wanted)}) "
            f"GROUP BY {domain.concept_column}"
        )
        counts.update(
            {int(c): int(k) for c, k in zip(frame["concept_id"], frame["n"], strict=True)}
        )
    report = ConceptReport()
    for name, domain, ref, got in per_ref:
        report.rows.append(
            {
                "concept_set": name,
                "concept": ref.label,
                "table": DOMAINS[domain].table,
                "column": DOMAINS[domain].concept_column,
                "concept_ids": got,
                "n_rows": int(sum(counts.get(i, 0) for i in got)),
                "problem": None if got and sum(counts.get(i, 0) for i in got) else
                ("no concept with this code in the concept table" if not got else "no rows"),
            }
        )  # fmt: skip
    empty = []
    for name in REQUIRED_SETS:
        rows = [r for r in report.rows if r["concept_set"] == name]
        if sum(r["n_rows"] for r in rows) == 0:
            d = DOMAINS[spec.concept_sets[name].domain]
            codes = "; ".join(f"{r['concept']}: {r['problem']}" for r in rows)
            empty.append(f"concept set {name!r} matched no rows of {db.table(d.table)}."
                         f"{d.concept_column} ({codes})")  # fmt: skip
    if empty:
        raise OmopError(
            "required concept sets with no matches:\n" + "\n".join(f"- {e}" for e in empty)
        )
    return ids, report


def _with_descendants(db: Database, per_ref: list) -> list:
    """Each concept's ids plus their descendants (OMOP concept_ancestor)."""
    every = sorted({i for *_, got in per_ref for i in got})
    pairs = db.query(
        f"SELECT ancestor_concept_id AS a, descendant_concept_id AS d "
        f"FROM {db.table('concept_ancestor')} WHERE ancestor_concept_id IN ({_ids_sql(every)})"
    )
    below: dict[int, set[int]] = {}
    for a, d in zip(pairs["a"], pairs["d"], strict=True):
        below.setdefault(int(a), set()).add(int(d))
    return [
        (name, domain, ref, sorted(set(got).union(*(below.get(i, set()) for i in got))))
        for name, domain, ref, got in per_ref
    ]


def _persons_text(frame: pd.DataFrame, n: int | None = None) -> str:
    n = len(frame) if n is None else n
    shown = ", ".join(
        f"{int(r.person_id)} ({r.person_source_value})" for r in frame.head(MAX_LISTED).itertuples()
    )
    more = f" and {n - MAX_LISTED} more" if n > MAX_LISTED else ""
    return f"person_id {shown}{more}"


def _check_rows(db: Database, sql: str, message: str) -> None:
    bad = db.query(sql)
    if len(bad):
        total = int(bad["n_total"].iloc[0]) if "n_total" in bad.columns else len(bad)
        raise OmopError(f"{message}: {total} row(s), e.g. {_persons_text(bad, total)}")


def check_dates(db: Database) -> None:
    """Dates out of order, each an error naming table, column and persons."""
    t = db.table
    _check_rows(
        db,
        f"SELECT o.person_id, p.person_source_value, COUNT(*) OVER () AS n_total "
        f"FROM {t('observation_period')} o LEFT JOIN {t('person')} p ON p.person_id = o.person_id "
        f"WHERE o.observation_period_end_date < o.observation_period_start_date "
        f"ORDER BY o.person_id LIMIT {MAX_LISTED}",
        f"{t('observation_period')}.observation_period_end_date is before "
        "observation_period_start_date",
    )
    _check_rows(
        db,
        f"SELECT d.person_id, p.person_source_value, COUNT(*) OVER () AS n_total "
        f"FROM {t('death')} d JOIN {t('person')} p ON p.person_id = d.person_id "
        f"WHERE d.death_date < CAST(p.birth_datetime AS DATE) "
        f"   OR EXTRACT(YEAR FROM d.death_date) < p.year_of_birth "
        f"ORDER BY d.person_id LIMIT {MAX_LISTED}",
        f"{t('death')}.death_date is before the birth date in {t('person')}",
    )


# --------------------------------------------------------------------------------------------------
# Time zero


def build_index(db: Database, spec: CohortSpec, ids: dict[str, list[int]]) -> list[str]:
    """Temporary table hte_index (person_id, index_date, arm): each person's first decision.

    A person with decisions for both arms is an error (``two_decisions: error``) or takes the first
    (``first``; same-day decisions for both arms are always an error). Returns notes."""
    t = db.table
    db.execute("DROP TABLE IF EXISTS hte_decision")
    db.execute(
        f"""CREATE TEMPORARY TABLE hte_decision AS
        SELECT person_id, MIN(procedure_date) AS decision_date, 'cart' AS arm
        FROM {t("procedure_occurrence")}
        WHERE procedure_concept_id IN ({_ids_sql(ids["apheresis"])})
        GROUP BY person_id
        UNION ALL
        SELECT person_id, MIN(drug_exposure_start_date) AS decision_date, 'tec' AS arm
        FROM {t("drug_exposure")}
        WHERE drug_concept_id IN ({_ids_sql(ids["teclistamab"])})
        GROUP BY person_id"""
    )
    both = db.query(
        f"""SELECT c.person_id, p.person_source_value, c.decision_date AS apheresis_date,
               e.decision_date AS teclistamab_date
        FROM hte_decision c JOIN hte_decision e ON c.person_id = e.person_id
        LEFT JOIN {t("person")} p ON p.person_id = c.person_id
        WHERE c.arm = 'cart' AND e.arm = 'tec' ORDER BY c.person_id"""
    )
    notes = []
    same_day = both[both["apheresis_date"] == both["teclistamab_date"]]
    if len(both) and (spec.two_decisions == "error" or len(same_day)):
        bad = both if spec.two_decisions == "error" else same_day
        dates = "; ".join(
            f"{int(r.person_id)}: apheresis {r.apheresis_date}, teclistamab {r.teclistamab_date}"
            for r in bad.head(MAX_LISTED).itertuples()
        )
        raise OmopError(
            f"{len(bad)} person(s) have two treatment decisions "
            f"({t('procedure_occurrence')}.procedure_date of an apheresis and "
            f"{t('drug_exposure')}.drug_exposure_start_date of teclistamab"
            f"{', on the same day' if spec.two_decisions == 'first' else ''}): "
            f"{_persons_text(bad)} [{dates}]. Set two_decisions: first in the spec to take the "
            "earlier decision as time zero (ITT)"
        )
    if len(both):
        notes.append(f"{len(both)} person(s) had decisions for both arms; the earlier one is time "
                     "zero (intention to treat)")  # fmt: skip
    db.execute("DROP TABLE IF EXISTS hte_index")
    db.execute(
        """CREATE TEMPORARY TABLE hte_index AS
        SELECT person_id, decision_date AS index_date, arm FROM (
            SELECT person_id, decision_date, arm,
                   ROW_NUMBER() OVER (PARTITION BY person_id ORDER BY decision_date, arm) AS rn
            FROM hte_decision) d
        WHERE rn = 1"""
    )
    return notes


# --------------------------------------------------------------------------------------------------
# Per-person facts at time zero (every window ends at index_date)


def _person_facts(
    db: Database, spec: CohortSpec, ids: dict[str, list[int]], cut: str
) -> pd.DataFrame:
    t = db.table
    line_ids = sorted({i for s in LINE_SETS if s in ids for i in ids[s]})
    prior_ids = ids["cart_product"] + ids["teclistamab"]

    def exists_condition(set_name: str, lookback: int | None = None) -> str:
        if set_name not in ids:
            return "FALSE"
        window = f" AND c.condition_start_date >= i.index_date - {lookback}" if lookback else ""
        return (f"EXISTS (SELECT 1 FROM {t('condition_occurrence')} c WHERE c.person_id = i.person_id"
                f" AND c.condition_concept_id IN ({_ids_sql(ids[set_name])})"
                f" AND c.condition_start_date <= i.index_date{window})")  # fmt: skip

    sql = f"""
    WITH dx AS (
        SELECT c.person_id, MIN(c.condition_start_date) AS first_dx
        FROM {t("condition_occurrence")} c JOIN hte_index i ON c.person_id = i.person_id
        WHERE c.condition_concept_id IN ({_ids_sql(ids["myeloma"])})
          AND c.condition_start_date <= i.index_date
        GROUP BY c.person_id),
    prior AS (  -- prior therapy: started strictly before time zero
        SELECT d.person_id,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({_ids_sql(ids["imid"])}) THEN d.drug_concept_id END) AS n_imid,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({_ids_sql(ids["proteasome_inhibitor"])}) THEN d.drug_concept_id END) AS n_pi,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({_ids_sql(ids["anti_cd38"])}) THEN d.drug_concept_id END) AS n_cd38,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({_ids_sql(ids.get("prior_bcma", []))}) THEN d.drug_concept_id END) AS n_bcma,
            COUNT(DISTINCT d.drug_exposure_start_date) AS n_lines
        FROM {t("drug_exposure")} d JOIN hte_index i ON d.person_id = i.person_id
        WHERE d.drug_concept_id IN ({_ids_sql(line_ids)})
          AND d.drug_exposure_start_date < i.index_date
        GROUP BY d.person_id),
    obs AS (
        SELECT o.person_id, MAX(o.observation_period_end_date) AS obs_end
        FROM {t("observation_period")} o JOIN hte_index i ON o.person_id = i.person_id
        WHERE i.index_date BETWEEN o.observation_period_start_date AND o.observation_period_end_date
        GROUP BY o.person_id),
    infusion AS (  -- first CAR-T infusion on or after time zero
        SELECT p.person_id, MIN(p.procedure_date) AS infusion_date
        FROM {t("procedure_occurrence")} p JOIN hte_index i ON p.person_id = i.person_id
        WHERE p.procedure_concept_id IN ({_ids_sql(ids["cart_infusion"])})
          AND p.procedure_date >= i.index_date
        GROUP BY p.person_id),
    death AS (
        SELECT person_id, MIN(death_date) AS death_date FROM {t("death")} GROUP BY person_id)
    SELECT
        i.person_id, i.index_date, i.arm,
        p.person_source_value, p.gender_concept_id, p.race_concept_id,
        COALESCE(CAST(p.birth_datetime AS DATE),
                 make_date(p.year_of_birth, COALESCE(p.month_of_birth, 7),
                           COALESCE(p.day_of_birth, 1))) AS birth_date,
        dx.first_dx,
        COALESCE(pr.n_imid, 0) AS n_imid, COALESCE(pr.n_pi, 0) AS n_pi,
        COALESCE(pr.n_cd38, 0) AS n_cd38, COALESCE(pr.n_bcma, 0) AS n_bcma,
        COALESCE(pr.n_lines, 0) AS n_lines,
        EXISTS (SELECT 1 FROM {t("procedure_occurrence")} q WHERE q.person_id = i.person_id
                AND q.procedure_concept_id IN ({_ids_sql(ids["cart_infusion"])})
                AND q.procedure_date < i.index_date)
        OR EXISTS (SELECT 1 FROM {t("drug_exposure")} q WHERE q.person_id = i.person_id
                AND q.drug_concept_id IN ({_ids_sql(prior_ids)})
                AND q.drug_exposure_start_date < i.index_date) AS prior_cart_tec,
        obs.obs_end, inf.infusion_date, de.death_date,
        {exists_condition("extramedullary")} AS extramedullary,
        {exists_condition("rapid_progression", spec.lookback("rapid_progression"))} AS rapid_progression,
        EXISTS (SELECT 1 FROM {t("procedure_occurrence")} q WHERE q.person_id = i.person_id
                AND q.procedure_concept_id IN ({_ids_sql(ids.get("asct", []))})
                AND q.procedure_date < i.index_date) AS prior_asct,
        DATE '{cut}' AS data_cut
    FROM hte_index i
    JOIN {t("person")} p ON p.person_id = i.person_id
    LEFT JOIN dx ON dx.person_id = i.person_id
    LEFT JOIN prior pr ON pr.person_id = i.person_id
    LEFT JOIN obs ON obs.person_id = i.person_id
    LEFT JOIN infusion inf ON inf.person_id = i.person_id
    LEFT JOIN death de ON de.person_id = i.person_id
    ORDER BY i.person_id"""
    return db.query(sql)


def _crs(db: Database, spec: CohortSpec, ids: dict[str, list[int]]) -> pd.DataFrame:
    """First CRS code of each person within the window after the infusion (CAR-T) or the first
    dose (tec); whether it falls within follow-up is decided with the follow-up end."""
    t = db.table
    return db.query(
        f"""WITH ref AS (
            SELECT i.person_id,
                   CASE WHEN i.arm = 'tec' THEN i.index_date ELSE inf.infusion_date END AS ref_date
            FROM hte_index i LEFT JOIN (
                SELECT p.person_id, MIN(p.procedure_date) AS infusion_date
                FROM {t("procedure_occurrence")} p JOIN hte_index j ON p.person_id = j.person_id
                WHERE p.procedure_concept_id IN ({_ids_sql(ids["cart_infusion"])})
                  AND p.procedure_date >= j.index_date
                GROUP BY p.person_id) inf ON inf.person_id = i.person_id)
        SELECT r.person_id, MIN(c.condition_start_date) AS crs_date
        FROM ref r JOIN {t("condition_occurrence")} c ON c.person_id = r.person_id
        WHERE c.condition_concept_id IN ({_ids_sql(ids["crs"])})
          AND c.condition_start_date >= r.ref_date
          AND c.condition_start_date <= r.ref_date + {int(spec.crs_window_days)}
        GROUP BY r.person_id"""
    )


def _measurements(db: Database, spec: CohortSpec, ids: dict[str, list[int]]) -> pd.DataFrame:
    """Latest value of each measurement covariate within its look-back window (<= index date):
    one row per person and covariate."""
    names = [n for n in (*LAB_COVARIATES, *FLAG_MEASUREMENTS, "ldh") if ids.get(n)]
    if not names:
        return pd.DataFrame(columns=["person_id", "covariate", "value"])
    mapping = ", ".join(
        f"({cid}, {_text(name)}, {spec.lookback(name)})" for name in names for cid in ids[name]
    )
    return db.query(
        f"""SELECT person_id, covariate, value FROM (
            SELECT m.person_id, s.covariate, m.value_as_number AS value,
                   ROW_NUMBER() OVER (PARTITION BY m.person_id, s.covariate
                                      ORDER BY m.measurement_date DESC, m.measurement_id DESC) AS rn
            FROM {db.table("measurement")} m
            JOIN (VALUES {mapping}) AS s(concept_id, covariate, lookback)
              ON m.measurement_concept_id = s.concept_id
            JOIN hte_index i ON i.person_id = m.person_id
            WHERE m.value_as_number IS NOT NULL
              AND m.measurement_date <= i.index_date
              AND m.measurement_date >= i.index_date - s.lookback) latest
        WHERE rn = 1"""
    )


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
            f"{_persons_text(facts[dead_before])}"
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
            "patient_id": facts["person_source_value"].fillna(facts["person_id"].astype(str)).astype(str),
            "treatment": facts["arm"].to_numpy(),
            "os_months": days / DAYS_PER_MONTH,
            "death": died.to_numpy(),
            "crs": (crs_date.notna() & (crs_date <= end)).to_numpy(),  # coded while followed
            "infusion_day": np.where(infused, _days_between(infusion, index), np.nan),
            "age": np.round(_days_between(index, facts["birth_date"]) / DAYS_PER_YEAR, 1),
            "sex": facts["gender_concept_id"].map({GENDER["male"]: "male", GENDER["female"]: "female"}),
            "race": facts["race_concept_id"].map({v: k for k, v in RACE.items()}).fillna("other"),
            "prior_lines": facts["n_lines"].astype(int).to_numpy(),
            "extramedullary": facts["extramedullary"].astype(bool).to_numpy(),
            "prior_asct": facts["prior_asct"].astype(bool).to_numpy(),
            "penta_refractory": ((facts["n_imid"] >= 2) & (facts["n_pi"] >= 2) & (facts["n_cd38"] >= 1)).to_numpy(),
            "prior_bcma": (facts["n_bcma"] > 0).to_numpy(),
            "rapid_progression": facts["rapid_progression"].astype(bool).to_numpy(),
            "years_since_diagnosis": np.round(_days_between(index, facts["first_dx"]) / DAYS_PER_YEAR, 2),
        }
    )  # fmt: skip
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
    facts = _person_facts(db, spec, ids, cut)
    everyone = persons.merge(facts, on="person_id", how="left")
    index = pd.to_datetime(everyone["index_date"])
    age = _days_between(index, everyone["birth_date"]) / DAYS_PER_YEAR
    passes = pd.DataFrame(
        {
            "has_decision": everyone["index_date"].notna(),
            "has_myeloma": everyone["first_dx"].notna(),
            "triple_class": (everyone["n_imid"] >= 1) & (everyone["n_pi"] >= 1) & (everyone["n_cd38"] >= 1),
            "adult": pd.Series(age >= spec.min_age, index=everyone.index),
            "no_prior_cart_tec": ~everyone["prior_cart_tec"].fillna(True).astype(bool),
            "observed": everyone["obs_end"].notna() & (index <= pd.Timestamp(cut)),
        }
    )  # fmt: skip
    criteria = dict(CRITERIA)
    criteria["adult"] = f"aged {spec.min_age:g} or older at time zero"
    attrition, keep = Attrition.from_flags(passes, criteria, everyone["arm"])
    kept = everyone[keep.to_numpy()].reset_index(drop=True)
    _check_outcome_dates(kept, db)
    labs = _measurements(db, spec, ids)
    labs = labs[labs["person_id"].isin(kept["person_id"])]
    crs = _crs(db, spec, ids)
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
