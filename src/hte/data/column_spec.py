"""What one known cohort column must look like (its kind, bounds, allowed values, unit); the
schema (``hte.data.schema.SPECS``) declares one per known column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "treatment", "float", "int", "bool", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """What one known column must look like. Bounds are inclusive unless ``min_exclusive``."""

    name: str
    kind: Kind
    nullable: bool = True
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    allowed: tuple[str, ...] | None = None
    unique: bool = False
    unit: str | None = None  # the unit values must be in (a column map converts others)

    def range_rule(self) -> str | None:
        """The range rule in words, e.g. "ecog must be 0-4", or None without bounds."""
        lo, hi = _fmt(self.minimum), _fmt(self.maximum)
        if self.minimum is not None and self.maximum is not None:
            return f"{self.name} must be {lo}-{hi}"
        if self.minimum is not None:
            return f"{self.name} must be {'>' if self.min_exclusive else '>='} {lo}"
        if self.maximum is not None:
            return f"{self.name} must be <= {hi}"
        return None


def _fmt(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))
