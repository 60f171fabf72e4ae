"""The vocabulary of the synthetic EHR: every concept its tables use, as rows of the concept table.

Codes and vocabularies are the real ones (SNOMED, ICD10CM, RxNorm ingredient names, LOINC, CPT4),
so a concept set written for a database with the OHDSI (Athena) vocabulary resolves the same way
here: the builder looks concepts up by vocabulary and code (or by name for RxNorm ingredients).
Concept ids are the standard OMOP ids where we state them with confidence (gender, race,
ethnicity, the EHR type concept, multiple myeloma); every other concept gets a site-local id above
2,000,000,000, the range the CDM reserves for local concepts. Measurements with no single standard
code (bone-marrow plasma cells, ISS stage, cytogenetic risk, a rapid-progression flag) use the local
vocabulary ``HTE`` and must be mapped to a site's own codes in the concept-set YAML. RxNorm
ingredients are found by name (RxNorm ingredient names are unique); where we do not state an RxCUI
with confidence the synthetic concept_code is a placeholder ``local-<name>``, never a guessed RxCUI.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

LOCAL_ID_START = 2_000_000_001
EHR_TYPE = 32817  # Type Concept "EHR": the record came from an electronic health record
GENDER = {"male": 8507, "female": 8532}
RACE = {"white": 8527, "black": 8516, "asian": 8515}  # anything else: 0 (no matching concept)
NOT_HISPANIC = 38003564


@dataclass(frozen=True)
class Concept:
    """One row of the concept table."""

    key: str  # how hte's code refers to it
    name: str
    domain: str  # OMOP domain_id
    vocabulary: str
    concept_class: str
    code: str
    concept_id: int | None = None  # None: a local id is assigned in order


_CONCEPTS: tuple[Concept, ...] = (
    Concept("male", "MALE", "Gender", "Gender", "Gender", "M", GENDER["male"]),
    Concept("female", "FEMALE", "Gender", "Gender", "Gender", "F", GENDER["female"]),
    Concept("white", "White", "Race", "Race", "Race", "5", RACE["white"]),
    Concept("black", "Black or African American", "Race", "Race", "Race", "3", RACE["black"]),
    Concept("asian", "Asian", "Race", "Race", "Race", "2", RACE["asian"]),
    Concept(
        "not_hispanic",
        "Not Hispanic or Latino",
        "Ethnicity",
        "Ethnicity",
        "Ethnicity",
        "Not Hispanic",
        NOT_HISPANIC,
    ),
    Concept("ehr", "EHR", "Type Concept", "Type Concept", "Type Concept", "OMOP4976890", EHR_TYPE),
    # conditions
    Concept(
        "myeloma",
        "Multiple myeloma",
        "Condition",
        "SNOMED",
        "Clinical Finding",
        "109989006",
        437233,
    ),
    Concept(
        "emd",
        "Extramedullary plasmacytoma not having achieved remission",
        "Condition",
        "ICD10CM",
        "5-char billing code",
        "C90.20",
    ),
    Concept(
        "crs",
        "Cytokine release syndrome, grade unspecified",
        "Condition",
        "ICD10CM",
        "6-char billing code",
        "D89.839",
    ),
    Concept(
        "rapid_progression",
        "Rapidly progressive myeloma (local flag)",
        "Condition",
        "HTE",
        "Clinical Finding",
        "RAPID_PROGRESSION",
    ),
    # procedures
    Concept(
        "apheresis",
        "CAR-T: harvesting of blood-derived T lymphocytes",
        "Procedure",
        "CPT4",
        "CPT4",
        "0537T",
    ),
    Concept(
        "cart_infusion",
        "CAR-T: administration of autologous CAR-T cells",
        "Procedure",
        "CPT4",
        "CPT4",
        "0540T",
    ),
    Concept(
        "asct",
        "Autologous hematopoietic progenitor cell transplantation",
        "Procedure",
        "CPT4",
        "CPT4",
        "38241",
    ),
    # drugs (RxNorm ingredients; codes are RxCUIs where we give them)
    Concept("lenalidomide", "lenalidomide", "Drug", "RxNorm", "Ingredient", "342369"),
    Concept("pomalidomide", "pomalidomide", "Drug", "RxNorm", "Ingredient", "1369713"),
    Concept("thalidomide", "thalidomide", "Drug", "RxNorm", "Ingredient", "10432"),
    Concept("bortezomib", "bortezomib", "Drug", "RxNorm", "Ingredient", "358258"),
    Concept("carfilzomib", "carfilzomib", "Drug", "RxNorm", "Ingredient", "1302966"),
    Concept("ixazomib", "ixazomib", "Drug", "RxNorm", "Ingredient", "local-ixazomib"),
    Concept("daratumumab", "daratumumab", "Drug", "RxNorm", "Ingredient", "local-daratumumab"),
    Concept("isatuximab", "isatuximab", "Drug", "RxNorm", "Ingredient", "local-isatuximab"),
    Concept("elotuzumab", "elotuzumab", "Drug", "RxNorm", "Ingredient", "local-elotuzumab"),
    Concept("selinexor", "selinexor", "Drug", "RxNorm", "Ingredient", "local-selinexor"),
    Concept("cyclophosphamide", "cyclophosphamide", "Drug", "RxNorm", "Ingredient", "3002"),
    Concept(
        "belantamab", "belantamab mafodotin", "Drug", "RxNorm", "Ingredient", "local-belantamab"
    ),
    Concept(
        "cilta_cel", "ciltacabtagene autoleucel", "Drug", "RxNorm", "Ingredient", "local-cilta-cel"
    ),
    Concept("ide_cel", "idecabtagene vicleucel", "Drug", "RxNorm", "Ingredient", "local-ide-cel"),
    Concept("teclistamab", "teclistamab", "Drug", "RxNorm", "Ingredient", "local-teclistamab"),
    # measurements
    Concept(
        "ferritin",
        "Ferritin [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "2276-4",
    ),
    Concept(
        "crp",
        "C reactive protein [Mass/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "1988-5",
    ),
    Concept(
        "crcl",
        "Creatinine renal clearance in 24 hour Urine and Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "2164-2",
    ),
    Concept(
        "ldh",
        "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma",
        "Measurement",
        "LOINC",
        "Lab Test",
        "2532-0",
    ),
    Concept("ecog", "ECOG performance status score", "Measurement", "LOINC", "Survey", "89247-1"),
    Concept(
        "bm_plasma_pct",
        "Plasma cells/100 cells in Bone marrow (local)",
        "Measurement",
        "HTE",
        "Lab Test",
        "BM_PLASMA_PCT",
    ),
    Concept(
        "iss_stage",
        "International Staging System stage (local)",
        "Measurement",
        "HTE",
        "Clinical Observation",
        "ISS_STAGE",
    ),
    Concept(
        "high_risk_cytogenetics",
        "High-risk cytogenetics by FISH (local)",
        "Measurement",
        "HTE",
        "Lab Test",
        "CYTO_HIGH_RISK",
    ),
    Concept(
        "gain_1q",
        "Gain or amplification of 1q by FISH (local)",
        "Measurement",
        "HTE",
        "Lab Test",
        "GAIN_1Q",
    ),
)


def concept_ids() -> dict[str, int]:
    """hte key -> concept_id of every concept of the synthetic EHR (local ids in a fixed order)."""
    out, next_local = {}, LOCAL_ID_START
    for c in _CONCEPTS:
        if c.concept_id is None:
            out[c.key] = next_local
            next_local += 1
        else:
            out[c.key] = c.concept_id
    return out


def concept_table() -> pd.DataFrame:
    """The concept table rows of the synthetic EHR (standard_concept 'S' for all but local ones)."""
    ids = concept_ids()
    return pd.DataFrame(
        {
            "concept_id": [ids[c.key] for c in _CONCEPTS],
            "concept_name": [c.name for c in _CONCEPTS],
            "domain_id": [c.domain for c in _CONCEPTS],
            "vocabulary_id": [c.vocabulary for c in _CONCEPTS],
            "concept_class_id": [c.concept_class for c in _CONCEPTS],
            "standard_concept": [None if c.vocabulary == "HTE" else "S" for c in _CONCEPTS],
            "concept_code": [c.code for c in _CONCEPTS],
            "valid_start_date": pd.Timestamp("1970-01-01").date(),
            "valid_end_date": pd.Timestamp("2099-12-31").date(),
            "invalid_reason": None,
        }
    )


def concept(key: str) -> Concept:
    """The concept of an hte key."""
    for c in _CONCEPTS:
        if c.key == key:
            return c
    raise KeyError(key)
