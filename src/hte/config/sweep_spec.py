"""The ``sweep`` section of a config: the grid ``hte sweep`` runs against the truth."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from hte.config.base import MAX_PATIENTS, SCENARIOS, Seed, StrictModel, require_unique


class SweepSpec(StrictModel):
    """A grid of synthetic runs for ``hte sweep``: scenarios x sizes x estimators x seeds.

    Each cell draws its own cohort (scenario, size, seed) and fits one estimator seeded with the
    cell seed. ``estimators`` names entries of the config's ``estimators`` list (null: all of
    them); null ``scenarios``/``sizes``/``seeds`` use data.scenario, data.n and seeds.global.
    """

    scenarios: list[str] | None = Field(None, min_length=1)
    sizes: list[Annotated[int, Field(ge=50, le=MAX_PATIENTS)]] | None = Field(None, min_length=1)
    estimators: list[str] | None = Field(None, min_length=1)
    seeds: list[Seed] | None = Field(None, min_length=1)

    @field_validator("scenarios")
    @classmethod
    def _known_scenarios(cls, value: list[str] | None) -> list[str] | None:
        for i, name in enumerate(value or []):
            if name not in SCENARIOS:
                raise PydanticCustomError(
                    "unknown_sweep_item",
                    "unknown scenario {item}; choose from {choices}",
                    {"index": i, "item": repr(name), "choices": ", ".join(SCENARIOS)},
                )
        return value

    @field_validator("scenarios", "sizes", "estimators", "seeds")
    @classmethod
    def _no_repeats(cls, value: list | None, info: ValidationInfo) -> list | None:
        if value is not None:
            require_unique(value, f"sweep {info.field_name} entry", "list each once")
        return value

    @property
    def n_cells(self) -> int:
        """Cells in the grid (after the config has filled in the defaults)."""
        lists = (self.scenarios, self.sizes, self.estimators, self.seeds)
        return math.prod(len(x or []) for x in lists)
