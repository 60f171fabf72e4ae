"""The SQL that reads each person's facts at time zero from an OMOP database: the treatment
decision (time zero), look-back covariates, the infusion, death, CRS and the latest measurements.

Every window ends at time zero: each filter on an event reads ``event date <= index date`` (prior
therapy: ``<``), so nothing recorded after time zero can enter a baseline value.
"""

from __future__ import annotations

import pandas as pd

from hte.data.omop.checks import MAX_LISTED, persons_text
from hte.data.omop.connection import Database, OmopError, sql_ids, sql_text
from hte.data.omop.spec import FLAG_MEASUREMENTS, LAB_COVARIATES, CohortSpec

LINE_SETS = ("imid", "proteasome_inhibitor", "anti_cd38", "prior_bcma", "other_myeloma_drugs")

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
        WHERE procedure_concept_id IN ({sql_ids(ids["apheresis"])})
        GROUP BY person_id
        UNION ALL
        SELECT person_id, MIN(drug_exposure_start_date) AS decision_date, 'tec' AS arm
        FROM {t("drug_exposure")}
        WHERE drug_concept_id IN ({sql_ids(ids["teclistamab"])})
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
            f"{persons_text(bad)} [{dates}]. Set two_decisions: first in the spec to take the "
            "earlier decision as time zero (ITT)"
        )
    if len(both):
        notes.append(
            f"{len(both)} person(s) had decisions for both arms; the earlier one is time "
            "zero (intention to treat)"
        )
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


def person_facts(
    db: Database, spec: CohortSpec, ids: dict[str, list[int]], cut: str
) -> pd.DataFrame:
    t = db.table
    line_ids = sorted({i for s in LINE_SETS if s in ids for i in ids[s]})
    prior_ids = ids["cart_product"] + ids["teclistamab"]

    def exists_condition(set_name: str, lookback: int | None = None) -> str:
        if set_name not in ids:
            return "FALSE"
        window = f" AND c.condition_start_date >= i.index_date - {lookback}" if lookback else ""
        return (
            f"EXISTS (SELECT 1 FROM {t('condition_occurrence')} c WHERE c.person_id = i.person_id"
            f" AND c.condition_concept_id IN ({sql_ids(ids[set_name])})"
            f" AND c.condition_start_date <= i.index_date{window})"
        )

    sql = f"""
    WITH dx AS (
        SELECT c.person_id, MIN(c.condition_start_date) AS first_dx
        FROM {t("condition_occurrence")} c JOIN hte_index i ON c.person_id = i.person_id
        WHERE c.condition_concept_id IN ({sql_ids(ids["myeloma"])})
          AND c.condition_start_date <= i.index_date
        GROUP BY c.person_id),
    prior AS (  -- prior therapy: started strictly before time zero
        SELECT d.person_id,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({sql_ids(ids["imid"])}) THEN d.drug_concept_id END) AS n_imid,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({sql_ids(ids["proteasome_inhibitor"])}) THEN d.drug_concept_id END) AS n_pi,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({sql_ids(ids["anti_cd38"])}) THEN d.drug_concept_id END) AS n_cd38,
            COUNT(DISTINCT CASE WHEN d.drug_concept_id IN ({sql_ids(ids.get("prior_bcma", []))}) THEN d.drug_concept_id END) AS n_bcma,
            COUNT(DISTINCT d.drug_exposure_start_date) AS n_lines
        FROM {t("drug_exposure")} d JOIN hte_index i ON d.person_id = i.person_id
        WHERE d.drug_concept_id IN ({sql_ids(line_ids)})
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
        WHERE p.procedure_concept_id IN ({sql_ids(ids["cart_infusion"])})
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
                AND q.procedure_concept_id IN ({sql_ids(ids["cart_infusion"])})
                AND q.procedure_date < i.index_date)
        OR EXISTS (SELECT 1 FROM {t("drug_exposure")} q WHERE q.person_id = i.person_id
                AND q.drug_concept_id IN ({sql_ids(prior_ids)})
                AND q.drug_exposure_start_date < i.index_date) AS prior_cart_tec,
        obs.obs_end, inf.infusion_date, de.death_date,
        {exists_condition("extramedullary")} AS extramedullary,
        {exists_condition("rapid_progression", spec.lookback("rapid_progression"))} AS rapid_progression,
        EXISTS (SELECT 1 FROM {t("procedure_occurrence")} q WHERE q.person_id = i.person_id
                AND q.procedure_concept_id IN ({sql_ids(ids.get("asct", []))})
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


def crs_dates(db: Database, spec: CohortSpec, ids: dict[str, list[int]]) -> pd.DataFrame:
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
                WHERE p.procedure_concept_id IN ({sql_ids(ids["cart_infusion"])})
                  AND p.procedure_date >= j.index_date
                GROUP BY p.person_id) inf ON inf.person_id = i.person_id)
        SELECT r.person_id, MIN(c.condition_start_date) AS crs_date
        FROM ref r JOIN {t("condition_occurrence")} c ON c.person_id = r.person_id
        WHERE c.condition_concept_id IN ({sql_ids(ids["crs"])})
          AND c.condition_start_date >= r.ref_date
          AND c.condition_start_date <= r.ref_date + {int(spec.crs_window_days)}
        GROUP BY r.person_id"""
    )


def latest_measurements(db: Database, spec: CohortSpec, ids: dict[str, list[int]]) -> pd.DataFrame:
    """Latest value of each measurement covariate within its look-back window (<= index date):
    one row per person and covariate."""
    names = [n for n in (*LAB_COVARIATES, *FLAG_MEASUREMENTS, "ldh") if ids.get(n)]
    if not names:
        return pd.DataFrame(columns=["person_id", "covariate", "value"])
    mapping = ", ".join(
        f"({cid}, {sql_text(name)}, {spec.lookback(name)})" for name in names for cid in ids[name]
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
