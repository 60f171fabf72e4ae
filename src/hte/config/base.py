"""What every config section shares: the error type, the strict base model, seeds and names, the
limits, and the helpers for messages ("did you mean ...?") and unique lists."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from hte.data.simulation_params import SCENARIO_DESCRIPTIONS
from hte.errors import HteError

SCENARIOS: tuple[str, ...] = tuple(SCENARIO_DESCRIPTIONS)  # the synthetic cohort's named scenarios

DEFAULT_SEED = 2024
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"  # usable as a folder name
MAX_NAME_LENGTH = 100  # folder names (the run id and the file system add to it)
MAX_SEED = 2**32 - 1  # numpy's legacy seed range, which scikit-learn's random_state takes
MAX_PATIENTS = 1_000_000  # synthetic draws and sweep sizes (100,000 takes ~15 min to fit)
# Seeds are whole numbers, never booleans (``true`` would silently become seed 1).
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]
Name = Annotated[str, Field(pattern=_NAME_PATTERN, max_length=MAX_NAME_LENGTH)]


class ConfigError(HteError, ValueError):
    """A config that cannot be used: the message names the file, line and key of every problem."""


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, and defaults are validated too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


def did_you_mean(key: str, choices: Iterable[str]) -> str:
    """ "; did you mean ...?" with the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(str(key), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def require_unique(names: list, what: str, fix: str) -> None:
    """Refuse a list that names something twice: "<what> x appears more than once; <fix>"."""
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise ValueError(f"{what} {', '.join(map(str, doubled))} appears more than once; {fix}")
