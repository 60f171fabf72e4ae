"""The ``data`` section of a config: the embedded synthetic cohort, a user's file with its column
map, or a cohort built from an OMOP database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from hte.config.base import MAX_PATIENTS, SCENARIOS, Seed, StrictModel
from hte.data.column_map import ColumnMap, ColumnMapError
from hte.data.load import MAX_FILE_MB


class SyntheticData(StrictModel):
    """The embedded synthetic cohort: a named scenario, a size and a seed (default: seeds.global)."""

    source: Literal["synthetic"] = "synthetic"
    scenario: str = "default"
    n: int = Field(2000, ge=50, le=MAX_PATIENTS, description="number of patients to draw")
    seed: Seed | None = Field(None, description="draw seed; null uses seeds.global")

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, value: str) -> str:
        if value not in SCENARIOS:
            raise PydanticCustomError(
                "unknown_scenario",
                "unknown scenario {scenario}; choose one of {choices}",
                {"scenario": repr(value), "choices": ", ".join(SCENARIOS)},
            )
        return value


class FileData(StrictModel):
    """A user's cohort file (.csv/.parquet) and its column map (inline, or a path to a YAML file)."""

    source: Literal["file"]
    path: Path
    columns: ColumnMap = ColumnMap()
    max_file_mb: float | None = Field(
        MAX_FILE_MB, gt=0, description="refuse larger files before reading (null: no limit)"
    )

    @field_validator("columns", mode="before")
    @classmethod
    def _map_from_file(cls, value: object) -> object:
        """A string is the path of a column-map YAML file (see hte.data.column_map)."""
        if isinstance(value, str | Path):
            try:
                return ColumnMap.from_yaml(value)
            except ColumnMapError as exc:
                raise PydanticCustomError(
                    "column_map_file", "{problem}", {"problem": str(exc)}
                ) from None
        return {} if value is None else value


class OmopData(StrictModel):
    """A cohort built from an OMOP CDM database by target-trial emulation (hte.data.omop): the
    connection (duckdb:///file.duckdb or postgresql://user@host/db) and the cohort spec YAML."""

    source: Literal["omop"]
    db: str = Field(description="duckdb:///ehr.duckdb or postgresql://user@host:port/dbname")
    spec: Path = Path("configs/cohort_omop.yaml")


DataConfig = Annotated[SyntheticData | FileData | OmopData, Field(discriminator="source")]
