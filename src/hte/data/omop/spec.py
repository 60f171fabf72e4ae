"""The cohort spec: concept sets (codes with their meaning) and the target-trial settings, from YAML.

``configs/cohort_omop.yaml`` is the editable default. A concept is found in the database's concept
table by vocabulary and code, or (no code given) by vocabulary and exact name, case-insensitively,
which is how RxNorm ingredients are best found. ``concept_id`` may be given directly as well.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hte.data.omop.connection import OmopError

Domain = Literal["condition", "drug", "procedure", "measurement"]

# concept set -> the domain it must be in; the builder cannot work without these
REQUIRED_SETS: dict[str, str] = {
    "myeloma": "condition",
    "apheresis": "procedure",
    "teclistamab": "drug",
    "cart_infusion": "procedure",
    "cart_product": "drug",
    "imid": "drug",
    "proteasome_inhibitor": "drug",
    "anti_cd38": "drug",
    "crs": "condition",
}
# covariate -> (concept set, domain) of the optional covariates the builder derives
LAB_COVARIATES = ("ferritin", "crp", "crcl", "ecog", "bm_plasma_pct", "iss_stage")
FLAG_MEASUREMENTS = ("high_risk_cytogenetics", "gain_1q")
OPTIONAL_SETS: dict[str, str] = {
    **{name: "measurement" for name in (*LAB_COVARIATES, *FLAG_MEASUREMENTS, "ldh")},
    "extramedullary": "condition",
    "rapid_progression": "condition",
    "asct": "procedure",
    "prior_bcma": "drug",
    "other_myeloma_drugs": "drug",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConceptRef(_Strict):
    """One concept of a set: where to find it and what it means."""

    vocabulary: str
    name: str = Field(description="the concept's meaning (matched when no code is given)")
    code: str | None = None
    concept_id: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _code_as_text(cls, value: object) -> object:
        if isinstance(value, dict) and isinstance(value.get("code"), int | float):
            value = {**value, "code": str(value["code"])}
        return value

    @property
    def label(self) -> str:
        return f"{self.vocabulary} {self.code or repr(self.name)} ({self.name})"


class ConceptSet(_Strict):
    domain: Domain
    description: str = ""
    concepts: list[ConceptRef] = Field(min_length=1)


class CohortSpec(_Strict):
    """Target-trial settings and concept sets (see configs/cohort_omop.yaml for each key's meaning)."""

    cdm_schema: str | None = None
    data_cut: dt.date | None = None
    min_age: float = Field(18.0, ge=0)
    crs_window_days: int = Field(14, ge=1)
    two_decisions: Literal["error", "first"] = "error"
    include_descendants: bool = True  # expand concepts through concept_ancestor when it exists
    ldh_upper_limit: float = Field(250.0, gt=0)
    lookback_days: dict[str, int] = Field(default_factory=dict)
    concept_sets: dict[str, ConceptSet]

    @model_validator(mode="after")
    def _sets_present(self) -> CohortSpec:
        problems = []
        for name, domain in REQUIRED_SETS.items():
            if name not in self.concept_sets:
                problems.append(f"concept_sets.{name}: required concept set is missing")
            elif self.concept_sets[name].domain != domain:
                problems.append(f"concept_sets.{name}.domain: must be {domain}")
        for name, domain in OPTIONAL_SETS.items():
            if name in self.concept_sets and self.concept_sets[name].domain != domain:
                problems.append(f"concept_sets.{name}.domain: must be {domain}")
        for key, days in self.lookback_days.items():
            if days < 0:
                problems.append(f"lookback_days.{key}: must be >= 0 days (got {days})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def lookback(self, covariate: str) -> int:
        """Days before time zero a value may come from (default 30; history-long ones 36500)."""
        return self.lookback_days.get(covariate, _DEFAULT_LOOKBACK.get(covariate, 30))


_DEFAULT_LOOKBACK = {
    "ecog": 60,
    "bm_plasma_pct": 90,
    "iss_stage": 36500,
    "high_risk_cytogenetics": 36500,
    "gain_1q": 36500,
    "rapid_progression": 60,
}


def load_spec(path: str | Path) -> CohortSpec:
    """Read and check a cohort spec; every problem in one ``OmopError`` naming the file and key."""
    path = Path(path)
    if not path.is_file():
        raise OmopError(f"no such cohort spec: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise OmopError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise OmopError(
            f"{path}: a cohort spec is a mapping of keys (see configs/cohort_omop.yaml)"
        )
    try:
        return CohortSpec.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"{path}: {key}: {err['msg'].removeprefix('Value error, ')}")
        raise OmopError("\n".join(lines)) from None
