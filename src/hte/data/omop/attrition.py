"""The attrition table of a target-trial cohort: persons in, excluded at each criterion, persons out.

Criteria are applied in order and each person is counted once, at the first criterion they fail,
so ``n_in - sum(excluded) == n_out`` holds exactly (checked on construction).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd


@dataclass(frozen=True)
class AttritionStep:
    criterion: str  # the rule a person must meet to stay
    excluded: int  # persons who failed it (and every earlier one passed)
    remaining: int


@dataclass(frozen=True)
class Attrition:
    n_in: int
    steps: tuple[AttritionStep, ...]
    n_out: int
    n_by_arm: dict[str, int]

    def __post_init__(self) -> None:
        excluded = sum(s.excluded for s in self.steps)
        if self.n_in - excluded != self.n_out or sum(self.n_by_arm.values()) != self.n_out:
            raise AssertionError(
                f"attrition does not add up: {self.n_in} in - {excluded} excluded != "
                f"{self.n_out} out (by arm {self.n_by_arm})"
            )

    @classmethod
    def from_flags(
        cls, passes: pd.DataFrame, criteria: dict[str, str], arm: pd.Series
    ) -> tuple[Attrition, pd.Series]:
        """Apply boolean columns of ``passes`` (one row per person) in the order of ``criteria``
        (column -> rule in words); returns the table and the mask of persons kept."""
        keep = pd.Series(True, index=passes.index)
        steps = []
        for column, rule in criteria.items():
            fails = keep & ~passes[column].fillna(False).astype(bool)
            keep &= ~fails
            steps.append(AttritionStep(rule, int(fails.sum()), int(keep.sum())))
        by_arm = arm[keep].value_counts().to_dict()
        n_by_arm = {k: int(by_arm.get(k, 0)) for k in ("cart", "tec")}
        return cls(len(passes), tuple(steps), int(keep.sum()), n_by_arm), keep

    def as_dict(self) -> dict:
        return {
            "n_in": self.n_in,
            "steps": [asdict(s) for s in self.steps],
            "n_out": self.n_out,
            "n_by_arm": dict(self.n_by_arm),
        }

    def table(self) -> pd.DataFrame:
        """One row per line of the flow: persons in, each exclusion, persons out."""
        rows = [{"step": "persons in the database", "excluded": None, "remaining": self.n_in}]
        rows += [
            {
                "step": f"excluded: not {s.criterion}",
                "excluded": s.excluded,
                "remaining": s.remaining,
            }
            for s in self.steps
        ]
        arms = ", ".join(f"{k} {v}" for k, v in self.n_by_arm.items())
        rows.append({"step": f"in the cohort ({arms})", "excluded": None, "remaining": self.n_out})
        return pd.DataFrame(rows)

    def render(self) -> str:
        """Plain-text flow for the terminal."""
        lines = [f"{self.n_in:>9,}  persons in the database"]
        for s in self.steps:
            lines.append(f"{-s.excluded:>9,}  not {s.criterion}")
        arms = ", ".join(f"{k} {v:,}" for k, v in self.n_by_arm.items())
        lines.append(f"{self.n_out:>9,}  in the cohort ({arms})")
        return "\n".join(lines)
